// ClusterNetworkPolicy (policy.networking.k8s.io, kubernetes-sigs/network-policy-api v0.3.1,
// experimental channel): the schema carries the CRD's validation (deploy/kubernetes/network-policy-api/,
// generated from the module) so that what the API server refuses, `lab apply` and the etcd
// datastore refuse too, with the field named. v1alpha2 and v1beta1 have the same schema; objects
// are stored as v1beta1 (the CRD's storage version).
import { z } from 'zod';
import { parseCidr, formatCidr } from './cidr.js';
import { objectMetaSchema, type ObjectMeta } from './meta.js';
import { labelSelectorSchema } from './selector.js';

export const CNP_GROUP = 'policy.networking.k8s.io';
export const CNP_API_VERSION = `${CNP_GROUP}/v1beta1`;
export const CNP_MAX_RULES = 25;
export const CNP_MAX_PRIORITY = 1000;

/** Exactly one of `keys` is set (the CRD's minProperties/maxProperties 1 over known fields). */
function exactlyOne<T extends object>(what: string, keys: readonly (keyof T & string)[]) {
  return (v: T, ctx: z.RefinementCtx) => {
    const set = keys.filter((k) => v[k] !== undefined);
    if (set.length === 1) return;
    ctx.addIssue({
      code: 'custom',
      path: set.length > 1 ? [set[1]!] : [],
      message:
        set.length === 0
          ? `${what} must set exactly one of ${keys.join(', ')}`
          : `${what} must set exactly one of ${keys.join(', ')}, not ${set.join(' and ')}`,
    });
  };
}

const port = z.number().int().min(1).max(65535);

const portSchema = z
  .strictObject({
    number: port.optional(),
    range: z
      .strictObject({ start: port, end: port })
      .refine((r) => r.start < r.end, { message: 'Start port must be less than End port', path: ['end'] })
      .optional(),
  })
  .superRefine(exactlyOne('a destinationPort', ['number', 'range']));

// The CRD's minProperties 1 on tcp/udp/sctp: with one property, the port is required.
const protocolMatch = z.strictObject({ destinationPort: portSchema });

const protocolSchema = z
  .strictObject({
    tcp: protocolMatch.optional(),
    udp: protocolMatch.optional(),
    sctp: protocolMatch.optional(),
    destinationNamedPort: z.string().min(1).optional(),
  })
  .superRefine(exactlyOne('a protocol', ['tcp', 'udp', 'sctp', 'destinationNamedPort']));

const namespacedPodSchema = z.strictObject({
  namespaceSelector: labelSelectorSchema.optional(),
  podSelector: labelSelectorSchema,
});

/** A CIDR as the CRD's CEL rule wants it: `isCIDR(self) && cidr(self) == cidr(self).masked()`. */
const cidrSchema = z
  .string()
  .max(43)
  .superRefine((text, ctx) => {
    try {
      const c = parseCidr(text, 'cidr', true);
      if (formatCidr(c) !== text && !text.includes(':'))
        ctx.addIssue({ code: 'custom', message: `Invalid CIDR format provided: ${text}` });
    } catch {
      ctx.addIssue({ code: 'custom', message: `Invalid CIDR format provided: ${text}` });
    }
  });

const DOMAIN_NAME =
  /^(\*\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$/;

/** A `listType=set` list of 1..25 unique items. */
const setList = <T extends z.ZodType<string>>(item: T) =>
  z
    .array(item)
    .min(1)
    .max(25)
    .superRefine((items, ctx) => {
      items.forEach((v, i) => {
        if (items.indexOf(v) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate ${v}` });
      });
    });

const ingressPeerSchema = z
  .strictObject({ namespaces: labelSelectorSchema.optional(), pods: namespacedPodSchema.optional() })
  .superRefine(exactlyOne('a peer', ['namespaces', 'pods']));

const egressPeerSchema = z
  .strictObject({
    namespaces: labelSelectorSchema.optional(),
    pods: namespacedPodSchema.optional(),
    nodes: labelSelectorSchema.optional(),
    networks: setList(cidrSchema).optional(),
    domainNames: setList(
      z.string().regex(DOMAIN_NAME, 'must be a domain name, optionally *.-prefixed'),
    ).optional(),
  })
  .superRefine(exactlyOne('a peer', ['namespaces', 'pods', 'nodes', 'networks', 'domainNames']));

const action = z.enum(['Accept', 'Deny', 'Pass']);
const ruleName = z.string().max(100).optional();
const protocols = z.array(protocolSchema).min(1).max(25).optional();

const ingressRuleSchema = z.strictObject({
  name: ruleName,
  action,
  from: z.array(ingressPeerSchema).min(1).max(25),
  protocols,
});

const egressRuleSchema = z
  .strictObject({ name: ruleName, action, to: z.array(egressPeerSchema).min(1).max(25), protocols })
  .superRefine((r, ctx) => {
    const noNamedPorts = r.to.some((p) => p.networks || p.nodes || p.domainNames);
    if (noNamedPorts && r.protocols?.some((p) => p.destinationNamedPort !== undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['protocols'],
        message:
          'networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames',
      });
  });

const subjectSchema = z
  .strictObject({ namespaces: labelSelectorSchema.optional(), pods: namespacedPodSchema.optional() })
  .superRefine(exactlyOne('subject', ['namespaces', 'pods']));

export const clusterNetworkPolicySchema = z.looseObject({
  apiVersion: z
    .enum([`${CNP_GROUP}/v1alpha2`, CNP_API_VERSION])
    .transform((): typeof CNP_API_VERSION => CNP_API_VERSION),
  kind: z.literal('ClusterNetworkPolicy'),
  metadata: objectMetaSchema,
  spec: z.strictObject({
    tier: z.enum(['Admin', 'Baseline']),
    priority: z.number().int().min(0).max(CNP_MAX_PRIORITY),
    subject: subjectSchema,
    ingress: z.array(ingressRuleSchema).max(CNP_MAX_RULES).optional(),
    egress: z.array(egressRuleSchema).max(CNP_MAX_RULES).optional(),
  }),
  status: z
    .looseObject({
      conditions: z
        .array(
          z.looseObject({
            type: z.string(),
            status: z.enum(['True', 'False', 'Unknown']),
            reason: z.string(),
            message: z.string(),
          }),
        )
        .optional(),
    })
    .optional(),
});

export type ClusterNetworkPolicy = z.infer<typeof clusterNetworkPolicySchema> & { metadata: ObjectMeta };
export type ClusterNetworkPolicySpec = ClusterNetworkPolicy['spec'];
export type CnpIngressRule = NonNullable<ClusterNetworkPolicySpec['ingress']>[number];
export type CnpEgressRule = NonNullable<ClusterNetworkPolicySpec['egress']>[number];
export type CnpEgressPeer = CnpEgressRule['to'][number];
export type CnpProtocol = NonNullable<CnpEgressRule['protocols']>[number];
export type CnpNamespacedPod = z.infer<typeof namespacedPodSchema>;
