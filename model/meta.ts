import { z } from 'zod';

export const TERN_GROUP = 'tern.network';
export const TERN_API_VERSION = 'tern.network/v1';

// DNS-1123 subdomain, as Kubernetes names most objects.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// DNS-1123 label, as Kubernetes names namespaces.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const objectMetaSchema = z.object({
  name: z
    .string()
    .min(1, 'must not be empty')
    .max(253, 'must be at most 253 characters')
    .regex(DNS_SUBDOMAIN, 'must be a lowercase DNS-1123 subdomain'),
  namespace: z
    .string()
    .max(63, 'must be at most 63 characters')
    .regex(DNS_LABEL, 'must be a lowercase DNS-1123 label')
    .optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.union([z.string(), z.date()]).optional(),
  deletionTimestamp: z.union([z.string(), z.date()]).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export type ObjectMeta = z.infer<typeof objectMetaSchema>;

/** Identifies one stored object of a kind. `namespace` is absent for cluster-scoped kinds. */
export interface ObjectKey {
  namespace?: string;
  name: string;
}

export function keyOf(meta: { name: string; namespace?: string }): ObjectKey {
  return meta.namespace ? { namespace: meta.namespace, name: meta.name } : { name: meta.name };
}

export function keyString(key: ObjectKey): string {
  return key.namespace ? `${key.namespace}/${key.name}` : key.name;
}

/** Formats a validation path as the field name users write: `spec.ingress[0].from[1].podSelector`. */
export function formatFieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    '',
  );
}
