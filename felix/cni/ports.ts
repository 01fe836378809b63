// What the CNI handler needs from the rest of the agent, as small interfaces: an IPAM, a dataplane
// and the agent's hooks. The node agent wires real implementations; tests wire fakes.
import type { IpAddr, IpFamily } from '../../model/index.js';

/** One attachment (container interface) of one pod on one network. Also the IPAM handle's parts. */
export interface AttachmentRef {
  /** Netconf `name`: with Multus a pod can hold attachments of several tern networks. */
  network: string;
  containerId: string;
  ifname: string;
  /** Pod namespace and name (K8S_POD_*), or NON_K8S_NAMESPACE / container ID without Kubernetes. */
  namespace: string;
  pod: string;
}

export interface IpamAssignRequest {
  attachment: AttachmentRef;
  /** Pod annotations (tern.network/ip-addrs, tern.network/ipv4-pools, …) when known. */
  podAnnotations: Record<string, string>;
  /** Pod labels (the StatefulSet replica ordinal `apps.kubernetes.io/pod-index`), when known. */
  podLabels?: Record<string, string>;
  /** Annotations of the pod's namespace (pool choice), when known. */
  namespaceAnnotations: Record<string, string>;
  /** Addresses asked for through the `ips` capability or `args.cni.ips`; they win over the annotation. */
  requestedIps: IpAddr[];
  /** Pools named by the network config; used only when neither the pod nor its namespace names any. */
  configPools: { ipv4?: string[]; ipv6?: string[] };
  /** Families to allocate; absent: every family some selected pool serves. */
  families?: IpFamily[];
}

/**
 * The node's IPAM, bound to the node name. Errors are model errors: ValidationError (malformed
 * request/annotation), ExhaustedError (no address left), ConflictError / AlreadyExistsError (a
 * requested address is taken or outside every pool), UnavailableError (datastore unreachable).
 */
export interface IpamPort {
  /** Allocates this attachment's addresses; with the same (containerId, ifname) again, returns what it holds. */
  assign(req: IpamAssignRequest): Promise<IpAddr[]>;
  /** Frees everything held by (containerId, ifname) and nothing else. Idempotent. Returns what was freed. */
  release(attachment: AttachmentRef): Promise<IpAddr[]>;
  /** Addresses held by (containerId, ifname), possibly none. */
  addressesOf(attachment: AttachmentRef): Promise<IpAddr[]>;
  /** Frees every allocation held on this node by an attachment that `keep` rejects. Returns how many. */
  releaseUnless(keep: (a: { containerId: string; ifname: string }) => boolean): Promise<number>;
  /** Throws when an ADD could not be served now (no usable pool, datastore unreachable). */
  status(): Promise<void>;
}

/** The owner of a host veth, recorded on the link itself (its alias) so DEL/GC need no other state. */
export interface VethOwner {
  network: string;
  containerId: string;
  ifname: string;
}

export interface VethSpec {
  owner: VethOwner;
  hostVeth: string;
  /** CNI_NETNS: a path (/var/run/netns/X, /proc/PID/ns/net). */
  netns: string;
  ifname: string;
  mtu: number;
  ips: IpAddr[];
  /**
   * Give the pod its default routes through this attachment. True for the primary interface;
   * a Multus secondary (net1, …) gets addresses and host routes but must not fight eth0's defaults.
   */
  defaultRoute: boolean;
}

/** The veth to build, before its addresses are known (IPAM may still be working). */
export type VethPlan = Omit<VethSpec, 'ips'>;

export interface VethResult {
  hostMac: string;
  containerMac: string;
  mtu: number;
  /** The pod's IPv6 default gateway: the host end's link-local address. */
  ipv6Gateway: string;
}

export interface HostVeth {
  name: string;
  /** Undefined when the alias is missing or not tern's (e.g. a crash between create and label). */
  owner?: VethOwner;
}

export interface Dataplane {
  /** MTU for a new attachment: the node's default-route uplink, else 1500. */
  detectMtu(): Promise<number>;
  /**
   * Builds the point-to-point veth. The pair is created at once; `addresses` (IPAM's answer, which
   * may still be on its way) is awaited only to configure them, so the two overlap. A rejection of
   * `addresses` is rethrown as it is. On any failure throws, after removing whatever it made.
   */
  setUp(plan: VethPlan, addresses: Promise<IpAddr[]>): Promise<VethResult>;
  /**
   * Removes the host veth (the container end and every route through it go with it) when it is
   * owned by `owner` or carries no owner. Idempotent; never needs the pod's netns.
   * Returns false when a veth of that name exists but belongs to another attachment (left alone).
   */
  tearDown(hostVeth: string, owner: VethOwner): Promise<boolean>;
  /** Removes a stale host veth of that name whatever its owner (ADD after a crashed predecessor). */
  removeStale(hostVeth: string): Promise<void>;
  /** Problems found comparing the kernel with `spec` (and the expected container MAC); empty = healthy. */
  check(spec: VethSpec, containerMac?: string): Promise<string[]>;
  /** Every tern host veth on the node. */
  list(): Promise<HostVeth[]>;
}

/** A pod's attachment as the agent sees it once the plumbing is in place. */
export interface PodEndpoint {
  attachment: AttachmentRef;
  hostVeth: string;
  ips: IpAddr[];
  containerMac: string;
  netns: string;
  mtu: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface DetachedEndpoint {
  owner: VethOwner;
  hostVeth: string;
  ips: IpAddr[];
}

export interface PodInfo {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface NamespaceInfo {
  annotations: Record<string, string>;
}

/** The agent's side of the handler. Every hook is optional. */
export interface AgentHooks {
  /** Labels/annotations of a Kubernetes pod (annotations the runtime passed take precedence). */
  lookupPod?(namespace: string, name: string): Promise<PodInfo | undefined>;
  /** Annotations of a namespace (IPAM pool choice). */
  lookupNamespace?(name: string): Promise<NamespaceInfo | undefined>;
  /** The plumbing is in place (called before beforeReturnAdd). */
  onAttached?(endpoint: PodEndpoint): void | Promise<void>;
  /**
   * Awaited before ADD answers: the agent returns once policy for the pod is programmed and its
   * route is installed. Throwing fails the ADD (everything is rolled back).
   */
  beforeReturnAdd?(endpoint: PodEndpoint): Promise<void>;
  /** The attachment is gone (DEL, GC, or a rolled-back ADD). `ips` are what it held, when known. */
  onDetached?(detached: DetachedEndpoint): void | Promise<void>;
}
