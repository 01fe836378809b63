// The node's own address. etcd mode: the source address of the interface that carries the
// default route (the uplink), else the first global address on any non-pod interface (route
// lookups only; no packet is sent). Kubernetes mode: from the Node object (nodeAddressFromNode).
import { execa } from 'execa';
import { HOST_VETH_PREFIX, NODE_ANNOTATIONS, parseIp, type Node } from '../model/index.js';

interface IpAddrJson {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; scope: string; prefixlen: number }>;
}

export async function detectNodeAddress(family: 4 | 6): Promise<string | undefined> {
  const flag = family === 4 ? '-4' : '-6';
  const routes = JSON.parse(
    (await execa('ip', ['-j', flag, 'route', 'show', 'default'])).stdout || '[]',
  ) as Array<{
    dev?: string;
    prefsrc?: string;
  }>;
  const addrs = JSON.parse((await execa('ip', ['-j', flag, 'addr', 'show'])).stdout || '[]') as IpAddrJson[];
  const globalOf = (ifname: string) =>
    addrs.find((a) => a.ifname === ifname)?.addr_info?.find((i) => i.scope === 'global')?.local;
  for (const r of routes) {
    if (r.prefsrc) return r.prefsrc;
    const a = r.dev ? globalOf(r.dev) : undefined;
    if (a) return a;
  }
  for (const a of addrs) {
    if (a.ifname === 'lo' || a.ifname.startsWith(HOST_VETH_PREFIX)) continue;
    const g = globalOf(a.ifname);
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
