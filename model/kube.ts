// Kubernetes core kinds that tern reads. The types are those of @kubernetes/client-node,
// narrowed so that metadata.name is always present; the schemas validate the fields tern
// uses and keep every other field as it came.
import type { V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';
import { containsCidr, parseCidr, type Cidr } from './cidr.js';
import { objectMetaSchema, type ObjectMeta } from './meta.js';
import { labelSelectorSchema } from './selector.js';

type WithMeta<T> = Omit<T, 'metadata'> & { metadata: ObjectMeta };

export type Pod = WithMeta<V1Pod> & { apiVersion: 'v1'; kind: 'Pod' };
export type Namespace = WithMeta<V1Namespace> & { apiVersion: 'v1'; kind: 'Namespace' };
export type Node = WithMeta<V1Node> & { apiVersion: 'v1'; kind: 'Node' };

const namespacedMeta = objectMetaSchema.extend({
  namespace: objectMetaSchema.shape.namespace.unwrap().min(1, 'must be set for a namespaced kind'),
});

const containerPortSchema = z.looseObject({
  name: z.string().max(15, 'must be at most 15 characters').optional(),
  containerPort: z.number().int().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
});

export const podSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Pod'),
  metadata: namespacedMeta,
  spec: z
    .looseObject({
      nodeName: z.string().optional(),
      hostNetwork: z.boolean().optional(),
      containers: z.array(
        z.looseObject({ name: z.string(), ports: z.array(containerPortSchema).optional() }),
      ),
    })
    .optional(),
  status: z.looseObject({ podIP: z.string().optional(), phase: z.string().optional() }).optional(),
});

export const namespaceSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Namespace'),
  metadata: objectMetaSchema,
});

export const nodeSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Node'),
  metadata: objectMetaSchema,
  spec: z.looseObject({ podCIDR: z.string().optional() }).optional(),
  status: z
    .looseObject({ addresses: z.array(z.object({ type: z.string(), address: z.string() })).optional() })
    .optional(),
});

// A named port is an IANA_SVC_NAME: at most 15 lowercase alphanumerics or '-', with a letter,
// no leading, trailing or doubled '-'.
const portName = z
  .string()
  .regex(/^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*$/, 'must be a port number or an IANA service name')
  .max(15, 'must be at most 15 characters')
  .refine((v) => !v.endsWith('-'), 'must not end with "-"');
const portSchema = z.union([z.number().int().min(1).max(65535), portName]);

/** Parses a CIDR for a refinement, reporting its error on `ctx`; host bits allowed as the API server does. */
function refineCidr(text: string, ctx: z.RefinementCtx, path: PropertyKey[]): Cidr | undefined {
  try {
    return parseCidr(text, 'cidr', false);
  } catch (e) {
    ctx.addIssue({ code: 'custom', path, message: (e as Error).message.replace(/^cidr: /, '') });
    return undefined;
  }
}

const ipBlockSchema = z
  .object({ cidr: z.string(), except: z.array(z.string()).optional() })
  .superRefine((block, ctx) => {
    const cidr = refineCidr(block.cidr, ctx, ['cidr']);
    (block.except ?? []).forEach((text, i) => {
      const ex = refineCidr(text, ctx, ['except', i]);
      if (cidr && ex && !(containsCidr(cidr, ex) && ex.prefixLength > cidr.prefixLength)) {
        ctx.addIssue({
          code: 'custom',
          path: ['except', i],
          message: `must be a strict subset of ${block.cidr}`,
        });
      }
    });
  });

const peerSchema = z
  .object({
    podSelector: labelSelectorSchema.optional(),
    namespaceSelector: labelSelectorSchema.optional(),
    ipBlock: ipBlockSchema.optional(),
  })
  .superRefine((peer, ctx) => {
    // As the API server: a peer is selectors or an ipBlock, never both, never neither.
    if (peer.ipBlock && (peer.podSelector || peer.namespaceSelector)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ipBlock'],
        message: 'may not be combined with podSelector or namespaceSelector',
      });
    } else if (!peer.ipBlock && !peer.podSelector && !peer.namespaceSelector) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'must specify podSelector, namespaceSelector or ipBlock',
      });
    }
  });

const policyPortSchema = z
  .object({
    protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
    port: portSchema.optional(),
    endPort: z.number().int().min(1).max(65535).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.endPort === undefined) return;
    if (typeof p.port !== 'number') {
      ctx.addIssue({ code: 'custom', path: ['endPort'], message: 'requires a numeric port' });
    } else if (p.endPort < p.port) {
      ctx.addIssue({ code: 'custom', path: ['endPort'], message: `must be at least port (${p.port})` });
    }
  });

export const networkPolicySchema = z.looseObject({
  apiVersion: z.literal('networking.k8s.io/v1'),
  kind: z.literal('NetworkPolicy'),
  metadata: namespacedMeta,
  spec: z.object({
    podSelector: labelSelectorSchema,
    policyTypes: z.array(z.enum(['Ingress', 'Egress'])).optional(),
    ingress: z
      .array(z.object({ from: z.array(peerSchema).optional(), ports: z.array(policyPortSchema).optional() }))
      .optional(),
    egress: z
      .array(z.object({ to: z.array(peerSchema).optional(), ports: z.array(policyPortSchema).optional() }))
      .optional(),
  }),
});

// NetworkPolicy keeps the wire (JSON) shape: client-node's V1NetworkPolicy renames `from` to
// `_from`, which stored and user-written objects never have.
export type NetworkPolicy = z.infer<typeof networkPolicySchema> & { metadata: ObjectMeta };
export type NetworkPolicyPeer = z.infer<typeof peerSchema>;
export type NetworkPolicyPort = z.infer<typeof policyPortSchema>;

/** Annotations and labels by which tern reads per-node BGP settings from a Node object. */
export const NODE_ANNOTATIONS = {
  bgpIPv4: 'tern.network/bgp-ipv4-address',
  bgpIPv6: 'tern.network/bgp-ipv6-address',
  asNumber: 'tern.network/as-number',
  routeReflectorClusterId: 'tern.network/route-reflector-cluster-id',
} as const;

/** Pod / namespace annotations that steer IPAM. */
export const IPAM_ANNOTATIONS = {
  ipAddrs: 'tern.network/ip-addrs',
  ipv4Pools: 'tern.network/ipv4-pools',
  ipv6Pools: 'tern.network/ipv6-pools',
} as const;
