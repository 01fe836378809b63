// The node's own address. etcd mode: the source address of the interface that carries the
// default route (the uplink), else the first global address on any non-pod interface (route
// lookups only; no packet is sent). Kubernetes mode: from the Node object (nodeAddressFromNode).
import { readKernel } from '../kernel/netlink/snapshot.js';
import { RT_SCOPE, RT_TABLE_MAIN } from '../kernel/netlink/codec.js';
import { formatAddress } from '../kernel/routes/types.js';
import { HOST_VETH_PREFIX, NODE_ANNOTATIONS, parseIp, type Node } from '../model/index.js';

export async function detectNodeAddress(family: 4 | 6): Promise<string | undefined> {
  const { links, routes, addresses } = await readKernel(family);
  const format = (bytes: Buffer) => formatAddress(family, bytes);
  const globalOf = (index: number) => {
    const a = addresses.find((x) => x.index === index && x.scope === RT_SCOPE.UNIVERSE);
    return a && format(a.address);
  };
  // `ip route show default`: the main table's default routes, in the kernel's order.
  for (const r of routes) {
    if (r.dstLen !== 0 || r.table !== RT_TABLE_MAIN) continue;
    if (r.prefsrc) return format(r.prefsrc);
    const a = r.oif ? globalOf(r.oif) : undefined;
    if (a) return a;
  }
  // Links in index order, as `ip addr show` lists them.
  for (const l of [...links].sort((x, y) => x.index - y.index)) {
    if (l.name === 'lo' || l.name.startsWith(HOST_VETH_PREFIX)) continue;
    const g = globalOf(l.index);
    if (g) return g;
  }
  return undefined;
}

/**
 * Annotation in which the agent records the addresses it derived from the Node's InternalIP
 * and wrote into the BGP address annotations (comma-separated). An address annotation whose
 * value is listed there is the agent's own and is derived afresh at every start; any other
 * value was set by an operator and wins.
 */
export const DERIVED_ADDRESS_ANNOTATION = 'tern.network/bgp-address-derived';

export interface NodeAddressChoice {
  address: string;
  /** Where it came from: an operator's annotation, or the Node's InternalIP (kubelet). */
  source: 'annotation' | 'InternalIP';
}

/**
 * Kubernetes mode: the node's BGP address of one family, read from its Node object. The
 * annotation `tern.network/bgp-ipv4-address` (`-ipv6-`) when an operator set it, else the
 * kubelet-reported InternalIP of that family.
 */
export function nodeAddressFromNode(node: Node, family: 4 | 6): NodeAddressChoice | undefined {
  const annotations = node.metadata.annotations ?? {};
  const annotated = annotations[family === 4 ? NODE_ANNOTATIONS.bgpIPv4 : NODE_ANNOTATIONS.bgpIPv6];
  const derived = new Set((annotations[DERIVED_ADDRESS_ANNOTATION] ?? '').split(',').filter(Boolean));
  if (annotated && !derived.has(annotated) && familyOf(annotated) === family)
    return { address: annotated, source: 'annotation' };
  const internal = (node.status?.addresses ?? []).find(
    (a) => a.type === 'InternalIP' && familyOf(a.address) === family,
  );
  if (internal) return { address: internal.address, source: 'InternalIP' };
  // The InternalIP is gone (kubelet restarting?): keep what was derived before.
  if (annotated && familyOf(annotated) === family) return { address: annotated, source: 'InternalIP' };
  return undefined;
}

function familyOf(text: string): 4 | 6 | undefined {
  try {
    return parseIp(text).family;
  } catch {
    return undefined;
  }
}
