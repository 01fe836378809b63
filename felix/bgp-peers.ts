// Which BGP sessions this node should have, computed from the datastore's Nodes, BGPPeers
// and BGPConfiguration. Pure: the agent diffs the result against the running speaker, so a
// node or peer added or removed touches only the sessions it concerns.
import {
  DEFAULT_AS_NUMBER,
  NODE_ANNOTATIONS,
  matches,
  parseIp,
  type BGPConfiguration,
  type BGPPeer,
  type Node,
} from '../model/index.js';

/** A node as BGP sees it. */
export interface BgpNode {
  name: string;
  ipv4?: string;
  ipv6?: string;
  asn: number;
  labels: Record<string, string>;
  /** Set when the node reflects routes (route-reflector mode). */
  routeReflectorClusterId?: string;
}

export interface DesiredPeer {
  address: string;
  asn: number;
  /** What brought the session about, for status output: `node:<name>` or `bgppeer:<name>`. */
  source: string;
  routeReflectorClient?: boolean;
  /** The peer's TCP port: nodes listen on the cluster's BGP port; external peers on 179. */
  port?: number;
  /** TCP MD5 key (RFC 2385). */
  password?: string;
  /** GTSM (RFC 5082): maximum hops to the peer. */
  ttlSecurity?: number;
  holdTime?: number;
  keepaliveTime?: number;
  passive?: boolean;
  /** BFD to the peer (BGPPeer.spec.bfd), passed to the speaker as PeerOptions.bfd. */
  bfd?: { desiredMinTxMs?: number; requiredMinRxMs?: number; multiplier?: number };
}

export interface ClusterBgpSettings {
  asn: number;
  mesh: boolean;
  isReflector: (n: BgpNode) => boolean;
  clusterId?: string;
  /** Port every node listens on (BGPConfiguration.listenPort); absent: the agent's own setting. */
  listenPort?: number;
  /** Hold time of node-to-node sessions (BGPConfiguration.holdTime); absent: the speaker's default. */
  holdTime?: number;
}

export function clusterSettings(config: BGPConfiguration | undefined): ClusterBgpSettings {
  const spec = config?.spec ?? {};
  const selector = spec.routeReflectorSelector;
  return {
    asn: spec.asNumber ?? DEFAULT_AS_NUMBER,
    mesh: spec.nodeToNodeMesh ?? true,
    // A node reflects when it matches the configured selector, or (without one) when it
    // carries a cluster ID annotation.
    isReflector: (n) => (selector ? matches(selector, n.labels) : n.routeReflectorClusterId !== undefined),
    clusterId: spec.routeReflectorClusterID,
    ...(spec.listenPort !== undefined ? { listenPort: spec.listenPort } : {}),
    ...(spec.holdTime !== undefined ? { holdTime: spec.holdTime } : {}),
  };
}

/** Reads a Node object's BGP identity; undefined when it has no usable address. */
export function bgpNodeOf(node: Node, defaultAsn: number): BgpNode | undefined {
  const a = node.metadata.annotations ?? {};
  const asText = a[NODE_ANNOTATIONS.asNumber];
  const asn = asText !== undefined && /^\d+$/.test(asText) ? Number(asText) : defaultAsn;
  const ipv4 = validIp(a[NODE_ANNOTATIONS.bgpIPv4], 4);
  const ipv6 = validIp(a[NODE_ANNOTATIONS.bgpIPv6], 6);
  if (!ipv4 && !ipv6) return undefined;
  return {
    name: node.metadata.name,
    ipv4,
    ipv6,
    asn,
    labels: node.metadata.labels ?? {},
    routeReflectorClusterId: a[NODE_ANNOTATIONS.routeReflectorClusterId],
  };
}

function validIp(text: string | undefined, family: 4 | 6): string | undefined {
  if (!text) return undefined;
  try {
    return parseIp(text).family === family ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Addresses of `other` this node can reach over the same families it has itself. */
function sessionAddresses(self: BgpNode, other: BgpNode): string[] {
  const out: string[] = [];
  if (self.ipv4 && other.ipv4) out.push(other.ipv4);
  if (self.ipv6 && other.ipv6) out.push(other.ipv6);
  return out;
}

export function desiredPeers(
  self: BgpNode,
  nodes: readonly BgpNode[],
  bgpPeers: readonly BGPPeer[],
  settings: ClusterBgpSettings,
): DesiredPeer[] {
  const byAddress = new Map<string, DesiredPeer>();
  const selfReflects = !settings.mesh && settings.isReflector(self);

  for (const other of nodes) {
    if (other.name === self.name) continue;
    let wanted: boolean;
    let client = false;
    if (settings.mesh) wanted = true;
    else if (selfReflects) {
      wanted = true;
      client = !settings.isReflector(other);
    } else wanted = settings.isReflector(other);
    if (!wanted) continue;
    for (const address of sessionAddresses(self, other)) {
      byAddress.set(address, {
        address,
        asn: other.asn,
        source: `node:${other.name}`,
        ...(client ? { routeReflectorClient: true } : {}),
        ...(settings.listenPort !== undefined && settings.listenPort !== 179
          ? { port: settings.listenPort }
          : {}),
        ...(settings.holdTime !== undefined ? { holdTime: settings.holdTime } : {}),
      });
    }
  }

  // Explicit peers win over node-derived sessions to the same address.
  for (const peer of bgpPeers) {
    const s = peer.spec;
    const applies = s.node
      ? s.node === self.name
      : s.nodeSelector
        ? matches(s.nodeSelector, self.labels)
        : true;
    if (!applies) continue;
    const family = parseIp(s.peerIP).family;
    if ((family === 4 && !self.ipv4) || (family === 6 && !self.ipv6)) continue;
    if (s.peerIP === self.ipv4 || s.peerIP === self.ipv6) continue;
    byAddress.set(s.peerIP, {
      address: s.peerIP,
      asn: s.asNumber,
      source: `bgppeer:${peer.metadata.name}`,
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.ttlSecurity !== undefined ? { ttlSecurity: s.ttlSecurity } : {}),
      ...(s.holdTime !== undefined ? { holdTime: s.holdTime } : {}),
      ...(s.keepaliveTime !== undefined ? { keepaliveTime: s.keepaliveTime } : {}),
      ...(s.passive !== undefined ? { passive: s.passive } : {}),
      ...(s.bfd !== undefined ? { bfd: s.bfd } : {}),
    });
  }
  return [...byAddress.values()].sort((a, b) => a.address.localeCompare(b.address));
}

export interface PeerDiff {
  add: DesiredPeer[];
  remove: string[];
  /** Peers whose settings changed: removed and added again (only these sessions reset). */
  change: DesiredPeer[];
}

export function diffPeers(
  current: ReadonlyMap<string, DesiredPeer>,
  desired: readonly DesiredPeer[],
): PeerDiff {
  const diff: PeerDiff = { add: [], remove: [], change: [] };
  const seen = new Set<string>();
  for (const d of desired) {
    seen.add(d.address);
    const c = current.get(d.address);
    if (!c) diff.add.push(d);
    else if (JSON.stringify(c) !== JSON.stringify(d)) diff.change.push(d);
  }
  for (const address of current.keys()) if (!seen.has(address)) diff.remove.push(address);
  return diff;
}
