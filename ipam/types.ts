// The public vocabulary of IPAM: who asks (an attachment), what it asks for, what it gets.
import type { IpFamily, Labels } from '../model/index.js';

/** Pod annotations (and namespace annotations, for the pool choice) IPAM reads. */
export const ANNOTATIONS = {
  /** JSON list of fixed addresses, at most one per family: `["10.0.3.7", "fd00::3:7"]`. */
  ipAddrs: 'tern.network/ip-addrs',
  /** JSON list of IPv4 pool names or CIDRs to allocate from. */
  ipv4Pools: 'tern.network/ipv4-pools',
  /** JSON list of IPv6 pool names or CIDRs to allocate from. */
  ipv6Pools: 'tern.network/ipv6-pools',
  /**
   * JSON list on a StatefulSet's pod template: entry i is the address (or the IPv4 + IPv6
   * pair) of the replica with ordinal i. Every listed address is reserved for the set.
   */
  ipAddrsByOrdinal: 'tern.network/ip-addrs-by-ordinal',
  /** "true" on a pod or its namespace: the pod's first addresses stay bound to its name. */
  stickyIp: 'tern.network/sticky-ip',
} as const;

/** The replica ordinal of a StatefulSet pod (Kubernetes ≥ 1.28 sets it). */
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

/** What bound an address to a pod identity. */
export type BindingSource = 'ordinal' | 'reservation' | 'sticky';

/** In use by a pod of the identity; held after DEL until a time (sticky); reserved (not held by a pod). */
export type BindingState = 'in use' | 'held' | 'reserved';

/** One network attachment of a pod: the unit that holds addresses (one per family). */
export interface Attachment {
  namespace: string;
  pod: string;
  containerID: string;
  /** CNI_IFNAME inside the pod (eth0, net1, …): a pod may have several attachments. */
  ifname: string;
}

/** What release and GC match on: exactly one attachment of one container. */
export type AttachmentKey = Pick<Attachment, 'containerID' | 'ifname'>;

export interface AssignRequest {
  attachment: Attachment;
  /** Node that hosts the pod. */
  node: string;
  /**
   * Labels of the node, matched against pools' nodeSelector. When absent IPAM reads the Node
   * object from the datastore (no Node object: no labels). The agent passes them from its
   * own watch to save that round trip.
   */
  nodeLabels?: Labels;
  podAnnotations?: Readonly<Record<string, string>>;
  /** Pod labels (the replica ordinal label `apps.kubernetes.io/pod-index`), when known. */
  podLabels?: Readonly<Record<string, string>>;
  namespaceAnnotations?: Readonly<Record<string, string>>;
  /** Pools named in the CNI network configuration (names or CIDRs). */
  configPools?: { ipv4?: readonly string[]; ipv6?: readonly string[] };
  /** Families to allocate; absent: every family for which some pool is selected (dual stack). */
  families?: readonly IpFamily[];
}

export interface AssignedAddress {
  family: IpFamily;
  /** The address alone: `10.0.3.7`. */
  address: string;
  /** The address as the pod carries it: `10.0.3.7/32`, `fd00::3:7/128`. */
  cidr: string;
  /** CIDR of the IPAMBlock that holds it. */
  block: string;
  pool: string;
  /** True when the block is not affine to the pod's node: that node announces a /32 (/128). */
  borrowed: boolean;
}

export interface AssignResult {
  /** IPv4 first, then IPv6. */
  addresses: AssignedAddress[];
}

/** One allocated address as IPAM reports it (queries, release, GC). */
export interface AllocationRecord {
  address: string;
  family: IpFamily;
  block: string;
  pool: string;
  /** Node the block is affine to; absent for an unclaimed block (fixed addresses). */
  blockAffinity?: string;
  handle: string;
  namespace?: string;
  pod?: string;
  containerID?: string;
  ifname?: string;
  /** Node hosting the holder. */
  node?: string;
  /** Set when the address is bound to a pod identity rather than to the attachment. */
  binding?: 'identity';
  /** `<namespace>/<pod>` of an identity-bound address. */
  identity?: string;
  source?: BindingSource;
  owner?: string;
  /** Sticky hold after DEL ends at this instant (RFC 3339). */
  heldUntil?: string;
}

/** One identity-bound address (`ternctl ipam show`). */
export interface BindingRecord {
  address: string;
  identity: string;
  source: BindingSource;
  /** `<namespace>/<set>` (ordinal list) or `<namespace>/<IPReservation>`. */
  owner?: string;
  state: BindingState;
  /** Node hosting the pod while in use. */
  node?: string;
  containerID?: string;
  ifname?: string;
  /** End of the hold (state held). */
  heldUntil?: string;
  block: string;
  pool: string;
}

export interface PoolUsage {
  pool: string;
  cidr: string;
  family: IpFamily;
  disabled: boolean;
  blockSize: number;
  blocks: {
    /** Blocks the pool is cut into (a float beyond 2^53: fine for display and metrics). */
    total: number;
    /** Blocks with an affinity to a node. */
    claimed: number;
    /** Blocks that exist without affinity (they hold fixed addresses). */
    unclaimed: number;
  };
  addresses: {
    total: number;
    used: number;
    free: number;
    /** Used addresses held for a pod on another node than the block's. */
    borrowed: number;
  };
}

export interface GcScope {
  /**
   * Only allocations held for pods on this node are considered (the CNI GC of one node, the
   * agent after a crash). Absent: every allocation in the cluster; `isValid` must then know
   * about every attachment of every node.
   */
  node?: string;
}

export interface GcResult {
  released: AllocationRecord[];
  /** CIDRs of empty blocks deleted (their affinity released). */
  deletedBlocks: string[];
}
