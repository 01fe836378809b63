// coordination.k8s.io/v1 Lease: the object leader election is built on (namespaced). Stored in
// every backend like any other kind; in Kubernetes it is the API server's own Lease.
import { z } from 'zod';
import { objectMetaSchema, type ObjectMeta } from './meta.js';

export const LEASE_API_VERSION = 'coordination.k8s.io/v1';

// Kubernetes MicroTime: RFC 3339 with up to microseconds (`2026-11-22T03:04:05.123456Z`).
const microTime = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 time' });

export const leaseSpecSchema = z.looseObject({
  /** Identity of the current holder; absent or empty: nobody holds it. */
  holderIdentity: z.string().optional(),
  leaseDurationSeconds: z.number().int().min(1, 'must be at least 1').optional(),
  acquireTime: microTime.optional(),
  renewTime: microTime.optional(),
  leaseTransitions: z.number().int().min(0).optional(),
});

export const leaseSchema = z.looseObject({
  apiVersion: z.literal(LEASE_API_VERSION),
  kind: z.literal('Lease'),
  metadata: objectMetaSchema.extend({
    namespace: objectMetaSchema.shape.namespace.unwrap().min(1, 'must be set for a namespaced kind'),
  }),
  spec: leaseSpecSchema.optional(),
});

export type LeaseSpec = z.infer<typeof leaseSpecSchema>;
export type Lease = {
  apiVersion: typeof LEASE_API_VERSION;
  kind: 'Lease';
  metadata: ObjectMeta;
  spec?: LeaseSpec;
};

/** A time as Kubernetes writes MicroTime: RFC 3339, UTC, six fractional digits. */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
