// The resource model: every kind tern stores, its scope, and validation at the edge.
import type { z } from 'zod';
import { ValidationError } from './errors.js';
import { namespaceSchema, networkPolicySchema, nodeSchema, podSchema } from './kube.js';
import type { Namespace, NetworkPolicy, NetworkPolicyPeer, Node, Pod } from './kube.js';
import { leaseSchema, type Lease } from './lease.js';
import { clusterNetworkPolicySchema, CNP_API_VERSION } from './cluster-network-policy.js';
import type { ClusterNetworkPolicy, CnpNamespacedPod } from './cluster-network-policy.js';
import { formatFieldPath } from './meta.js';
import { validateSelector, type LabelSelector } from './selector.js';
import { bgpConfigurationSchema, bgpPeerSchema, ipamBlockSchema, ipPoolSchema } from './tern.js';
import { ipReservationSchema } from './tern.js';
import type { BGPConfiguration, BGPPeer, IPAMBlock, IPPool, IPReservation } from './tern.js';

export * from './errors.js';
export * from './meta.js';
export * from './selector.js';
export * from './cidr.js';
export * from './kube.js';
export * from './tern.js';
export * from './lease.js';
export * from './cluster-network-policy.js';

export interface ResourceByKind {
  Pod: Pod;
  Namespace: Namespace;
  Node: Node;
  NetworkPolicy: NetworkPolicy;
  ClusterNetworkPolicy: ClusterNetworkPolicy;
  IPPool: IPPool;
  IPAMBlock: IPAMBlock;
  BGPPeer: BGPPeer;
  BGPConfiguration: BGPConfiguration;
  IPReservation: IPReservation;
  Lease: Lease;
}
export type Kind = keyof ResourceByKind;
export type AnyResource = ResourceByKind[Kind];

interface KindInfo {
  apiVersion: string;
  namespaced: boolean;
  schema: z.ZodType;
  /** Selectors inside the spec, checked for operator/value combinations the API rejects. */
  selectors?: (obj: never) => Array<[string, LabelSelector | undefined]>;
}

export const KINDS: { readonly [K in Kind]: KindInfo } = {
  Pod: { apiVersion: 'v1', namespaced: true, schema: podSchema },
  Namespace: { apiVersion: 'v1', namespaced: false, schema: namespaceSchema },
  Node: { apiVersion: 'v1', namespaced: false, schema: nodeSchema },
  NetworkPolicy: {
    apiVersion: 'networking.k8s.io/v1',
    namespaced: true,
    schema: networkPolicySchema,
    selectors: (p: NetworkPolicy) => {
      const out: Array<[string, LabelSelector | undefined]> = [['spec.podSelector', p.spec.podSelector]];
      const peers = (
        rules: Array<{ from?: NetworkPolicyPeer[]; to?: NetworkPolicyPeer[] }> | undefined,
        dir: string,
      ) =>
        (rules ?? []).forEach((r, i) =>
          (r.from ?? r.to ?? []).forEach((peer, j) => {
            const at = `spec.${dir}[${i}].${dir === 'ingress' ? 'from' : 'to'}[${j}]`;
            out.push(
              [`${at}.podSelector`, peer.podSelector],
              [`${at}.namespaceSelector`, peer.namespaceSelector],
            );
          }),
        );
      peers(p.spec.ingress, 'ingress');
      peers(p.spec.egress, 'egress');
      return out;
    },
  },
  ClusterNetworkPolicy: {
    apiVersion: CNP_API_VERSION,
    namespaced: false,
    schema: clusterNetworkPolicySchema,
    selectors: (p: ClusterNetworkPolicy) => {
      const out: Array<[string, LabelSelector | undefined]> = [];
      const pods = (at: string, pod: CnpNamespacedPod | undefined) =>
        out.push(
          [`${at}.namespaceSelector`, pod?.namespaceSelector],
          [`${at}.podSelector`, pod?.podSelector],
        );
      out.push(['spec.subject.namespaces', p.spec.subject.namespaces]);
      pods('spec.subject.pods', p.spec.subject.pods);
      for (const [dir, field] of [
        ['ingress', 'from'],
        ['egress', 'to'],
      ] as const) {
        const rules: ReadonlyArray<{ from?: unknown; to?: unknown }> = p.spec[dir] ?? [];
        rules.forEach((r, i) => {
          const peers = (r[field] ?? []) as Array<{
            namespaces?: LabelSelector;
            pods?: CnpNamespacedPod;
            nodes?: LabelSelector;
          }>;
          peers.forEach((peer, j) => {
            const at = `spec.${dir}[${i}].${field}[${j}]`;
            out.push([`${at}.namespaces`, peer.namespaces], [`${at}.nodes`, peer.nodes]);
            pods(`${at}.pods`, peer.pods);
          });
        });
      }
      return out;
    },
  },
  IPPool: {
    apiVersion: 'tern.network/v1',
    namespaced: false,
    schema: ipPoolSchema,
    selectors: (p: IPPool) => [['spec.nodeSelector', p.spec.nodeSelector]],
  },
  IPAMBlock: { apiVersion: 'tern.network/v1', namespaced: false, schema: ipamBlockSchema },
  BGPPeer: {
    apiVersion: 'tern.network/v1',
    namespaced: false,
    schema: bgpPeerSchema,
    selectors: (p: BGPPeer) => [['spec.nodeSelector', p.spec.nodeSelector]],
  },
  BGPConfiguration: {
    apiVersion: 'tern.network/v1',
    namespaced: false,
    schema: bgpConfigurationSchema,
    selectors: (c: BGPConfiguration) => [['spec.routeReflectorSelector', c.spec.routeReflectorSelector]],
  },
  IPReservation: { apiVersion: 'tern.network/v1', namespaced: true, schema: ipReservationSchema },
  Lease: { apiVersion: 'coordination.k8s.io/v1', namespaced: true, schema: leaseSchema },
};

export function isKind(k: unknown): k is Kind {
  return typeof k === 'string' && Object.prototype.hasOwnProperty.call(KINDS, k);
}

/**
 * Validates an untrusted object as a resource of `kind` (or of the kind it names when
 * `kind` is omitted). Throws ValidationError naming the first bad field.
 */
export function parseResource<K extends Kind>(input: unknown, kind?: K): ResourceByKind[K] {
  const named = (input as { kind?: unknown } | null)?.kind;
  const k = kind ?? named;
  if (!isKind(k)) throw new ValidationError('kind', `unknown kind ${JSON.stringify(named)}`);
  const info = KINDS[k];
  const result = info.schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ValidationError(formatFieldPath(issue.path), issue.message);
  }
  const obj = result.data as ResourceByKind[K];
  if (!info.namespaced && obj.metadata.namespace) {
    throw new ValidationError('metadata.namespace', `must be absent: ${k} is cluster-scoped`);
  }
  for (const [field, sel] of info.selectors?.(obj as never) ?? []) if (sel) validateSelector(sel, field);
  return obj;
}
export * from './routing.js';
