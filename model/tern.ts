// tern's own kinds, group tern.network, version v1.
import { z } from 'zod';
import { parseCidr } from './cidr.js';
import { TERN_API_VERSION, objectMetaSchema, type ObjectMeta } from './meta.js';
import { labelSelectorSchema, type LabelSelector } from './selector.js';

const asNumber = z
  .number({ error: 'must be an AS number' })
  .int('must be an integer')
  .min(1, 'must be between 1 and 4294967295')
  .max(4294967295, 'must be between 1 and 4294967295');

const cidrString = z.string().superRefine((v, ctx) => {
  try {
    parseCidr(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^cidr: /, '') });
  }
});

const ipString = z.string().superRefine((v, ctx) => {
  try {
    parseCidr(v.includes(':') ? `${v}/128` : `${v}/32`);
  } catch {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not an IP address` });
  }
});

const kindBase = <K extends string>(kind: K) => ({
  apiVersion: z.literal(TERN_API_VERSION),
  kind: z.literal(kind),
  metadata: objectMetaSchema,
});

// ---- IPPool (cluster-scoped) ----
/**
 * Smallest block prefix (largest block) IPAM accepts per family: at most 4096 addresses per
 * block, so a block object stays small and its allocations are addressed by a plain number.
 */
export const MIN_BLOCK_PREFIX = { 4: 20, 6: 116 } as const;

export const ipPoolSpecSchema = z
  .object({
    cidr: cidrString,
    /**
     * Prefix length of the blocks the pool is cut into; default 26 (IPv4) / 122 (IPv6), or
     * the pool's own prefix length when the pool is smaller than one default block.
     */
    blockSize: z.number().int().min(0).max(128).optional(),
    nodeSelector: labelSelectorSchema.optional(),
    disabled: z.boolean().optional(),
    /**
     * How long a sticky address (`tern.network/sticky-ip`) of this pool stays held for its pod
     * identity after the pod is deleted; default: the IPAM option (10 minutes).
     */
    stickyHoldSeconds: z.number().int().min(0).max(31_536_000).optional(),
  })
  .superRefine((spec, ctx) => {
    if (spec.blockSize === undefined) return;
    let c;
    try {
      c = parseCidr(spec.cidr);
    } catch {
      return;
    }
    const max = c.family === 4 ? 32 : 128;
    const min = Math.max(c.prefixLength, MIN_BLOCK_PREFIX[c.family]);
    if (spec.blockSize < min || spec.blockSize > max) {
      ctx.addIssue({
        code: 'custom',
        path: ['blockSize'],
        message: `must be between ${min} and ${max} for ${spec.cidr}`,
      });
    }
  });

export const ipPoolSchema = z.object({ ...kindBase('IPPool'), spec: ipPoolSpecSchema });
export type IPPool = {
  apiVersion: typeof TERN_API_VERSION;
  kind: 'IPPool';
  metadata: ObjectMeta;
  spec: z.infer<typeof ipPoolSpecSchema>;
};

// ---- IPAMBlock (cluster-scoped; name derived from the block CIDR) ----
export const allocationSchema = z.object({
  /** Who holds the address: `<namespace>/<pod>/<containerID>/<ifname>` for a CNI attachment. */
  handle: z.string().min(1),
  namespace: z.string().optional(),
  pod: z.string().optional(),
  containerID: z.string().optional(),
  interface: z.string().optional(),
  /** Node hosting the holder (differs from the block's affinity for borrowed addresses). */
  node: z.string().optional(),
  /**
   * `identity`: the address belongs to a pod identity (`identity`), not to one container. The
   * attachment fields and `node` are set while a pod of that identity holds it (in use), absent
   * while it is held after DEL (sticky, until `heldUntil`) or reserved (ordinal list,
   * IPReservation). Absent: bound to the attachment, freed by its DEL.
   */
  binding: z.literal('identity').optional(),
  /** `<namespace>/<pod name>` the address is bound to. */
  identity: z.string().min(3).optional(),
  /** What bound it: the ordinal-list annotation, an IPReservation, or the sticky annotation. */
  source: z.enum(['ordinal', 'reservation', 'sticky']).optional(),
  /** The binding's origin: `<namespace>/<set>` for an ordinal list, `<namespace>/<IPReservation>`. */
  owner: z.string().optional(),
  /** Sticky hold after DEL: free again after this instant (RFC 3339). */
  heldUntil: z.iso.datetime().optional(),
});
export type Allocation = z.infer<typeof allocationSchema>;

export const ipamBlockSpecSchema = z.object({
  cidr: cidrString,
  pool: z.string().min(1),
  /** Node that claimed the block; absent while unclaimed. */
  affinity: z.string().optional(),
  /** Allocated addresses of the block, keyed by their offset in the block (decimal string). */
  allocations: z.record(z.string().regex(/^\d+$/, 'keys must be address offsets'), allocationSchema),
});
export const ipamBlockSchema = z.object({ ...kindBase('IPAMBlock'), spec: ipamBlockSpecSchema });
export type IPAMBlock = {
  apiVersion: typeof TERN_API_VERSION;
  kind: 'IPAMBlock';
  metadata: ObjectMeta;
  spec: z.infer<typeof ipamBlockSpecSchema>;
};

// ---- IPReservation (namespaced) ----
/** One address, or one address per family (`["10.0.0.5", "fd00::5"]`). */
const addressSetSchema = z.union([ipString, z.array(ipString).min(1).max(2)]);
export const ipReservationSpecSchema = z.object({
  /** Pods by exact name and their addresses (at most one per family). */
  pods: z.array(z.object({ name: z.string().min(1), addresses: z.array(ipString).min(1).max(2) })).optional(),
  /**
   * StatefulSets by name: entry i of `addresses` is for the replica with ordinal i (an address
   * or an IPv4 + IPv6 pair), as with the `tern.network/ip-addrs-by-ordinal` annotation.
   */
  statefulSets: z
    .array(z.object({ name: z.string().min(1), addresses: z.array(addressSetSchema).min(1) }))
    .optional(),
});
export const ipReservationSchema = z.object({ ...kindBase('IPReservation'), spec: ipReservationSpecSchema });
export type IPReservation = {
  apiVersion: typeof TERN_API_VERSION;
  kind: 'IPReservation';
  metadata: ObjectMeta;
  spec: z.infer<typeof ipReservationSpecSchema>;
};

// ---- BGPPeer (cluster-scoped) ----
/** Longest TCP MD5 key the kernel takes (TCP_MD5SIG_MAXKEYLEN), in bytes. */
export const MD5_KEY_MAX_BYTES = 80;

export const bgpPeerSpecSchema = z.object({
  peerIP: ipString,
  asNumber,
  /** Nodes that peer with it; absent = every node. */
  nodeSelector: labelSelectorSchema.optional(),
  /** A single node that peers with it (instead of nodeSelector). */
  node: z.string().optional(),
  /** TCP MD5 key: 1..80 bytes of UTF-8, the kernel's limit (TCP_MD5SIG_MAXKEYLEN), as the speaker checks. */
  password: z
    .string()
    .refine(
      (v) => v.length > 0 && Buffer.byteLength(v, 'utf8') <= MD5_KEY_MAX_BYTES,
      `must be 1..${MD5_KEY_MAX_BYTES} bytes of UTF-8 (TCP MD5 key limit)`,
    )
    .optional(),
  holdTime: z
    .number()
    .int()
    .refine((v) => v === 0 || (v >= 3 && v <= 65535), 'must be 0 or 3..65535 seconds')
    .optional(),
  keepaliveTime: z.number().int().min(0).max(21845).optional(),
  /** BFD (RFC 5880/5881) to the peer: a BFD failure takes the BGP session down at once. */
  bfd: z
    .object({
      /** Milliseconds between our packets (10..60000, default 300). */
      desiredMinTxMs: z.number().int().min(10).max(60_000).optional(),
      /** Fastest rate we accept the peer's packets at, ms (10..60000, default 300). */
      requiredMinRxMs: z.number().int().min(10).max(60_000).optional(),
      /** Packets missed before the session is down (1..255, default 3). */
      multiplier: z.number().int().min(1).max(255).optional(),
    })
    .optional(),
  passive: z.boolean().optional(),
  /** GTSM (RFC 5082): the peer is at most this many hops away; packets arriving with a lower TTL are dropped. */
  ttlSecurity: z.number().int().min(1).max(254).optional(),
});
export const bgpPeerSchema = z.object({ ...kindBase('BGPPeer'), spec: bgpPeerSpecSchema });
export type BGPPeer = {
  apiVersion: typeof TERN_API_VERSION;
  kind: 'BGPPeer';
  metadata: ObjectMeta;
  spec: z.infer<typeof bgpPeerSpecSchema>;
};

// ---- BGPConfiguration (cluster-scoped; the one named "default" applies) ----
export const bgpConfigurationSpecSchema = z.object({
  /** AS of nodes that do not set their own; default 64512. */
  asNumber: asNumber.optional(),
  /** Full iBGP mesh among nodes; default true. */
  nodeToNodeMesh: z.boolean().optional(),
  /** Nodes matching this selector act as route reflectors when the mesh is off. */
  routeReflectorSelector: labelSelectorSchema.optional(),
  routeReflectorClusterID: ipString.optional(),
  listenPort: z.number().int().min(1).max(65535).optional(),
  holdTime: z.number().int().optional(),
  gracefulRestartTime: z.number().int().min(0).max(4095).optional(),
});
export const bgpConfigurationSchema = z.object({
  ...kindBase('BGPConfiguration'),
  spec: bgpConfigurationSpecSchema,
});
export type BGPConfiguration = {
  apiVersion: typeof TERN_API_VERSION;
  kind: 'BGPConfiguration';
  metadata: ObjectMeta;
  spec: z.infer<typeof bgpConfigurationSpecSchema>;
};

export type { LabelSelector };
export const DEFAULT_AS_NUMBER = 64512;
export const DEFAULT_BLOCK_SIZE = { 4: 26, 6: 122 } as const;
