import { describe, expect, it } from 'vitest';
import {
  bgpNodeOf,
  clusterSettings,
  desiredPeers,
  diffPeers,
  type BgpNode,
} from '../../../felix/bgp-peers.js';
import type { BGPConfiguration, BGPPeer, Node } from '../../../model/index.js';

const node = (name: string, ipv4: string, extra: Partial<BgpNode> = {}): BgpNode => ({
  name,
  ipv4,
  asn: 64512,
  labels: {},
  ...extra,
});
const a = node('a', '10.0.0.1');
const b = node('b', '10.0.0.2', { labels: { rack: 'r1' } });
const c = node('c', '10.0.0.3', { labels: { rack: 'r2' } });
const rr = node('rr', '10.0.0.9', { labels: { 'tern.network/route-reflector': 'true' } });

const config = (spec: BGPConfiguration['spec']): BGPConfiguration => ({
  apiVersion: 'tern.network/v1',
  kind: 'BGPConfiguration',
  metadata: { name: 'default' },
  spec,
});
const peer = (name: string, spec: BGPPeer['spec']): BGPPeer => ({
  apiVersion: 'tern.network/v1',
  kind: 'BGPPeer',
  metadata: { name },
  spec,
});
const addrs = (ps: { address: string }[]) => ps.map((p) => p.address);

describe('desiredPeers', () => {
  it('full mesh by default: every other node, never itself', () => {
    const got = desiredPeers(a, [a, b, c], [], clusterSettings(undefined));
    expect(addrs(got)).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(got.every((p) => p.asn === 64512 && !p.routeReflectorClient)).toBe(true);
  });

  it('mesh off: a reflector peers with all, marking non-reflectors as clients', () => {
    const s = clusterSettings(
      config({
        nodeToNodeMesh: false,
        routeReflectorSelector: { matchLabels: { 'tern.network/route-reflector': 'true' } },
      }),
    );
    const fromRR = desiredPeers(rr, [a, b, rr], [], s);
    expect(addrs(fromRR)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(fromRR.every((p) => p.routeReflectorClient === true)).toBe(true);
    expect(addrs(desiredPeers(a, [a, b, rr], [], s))).toEqual(['10.0.0.9']);
  });

  it('mesh off without a selector: nodes with a cluster ID annotation reflect', () => {
    const rr2 = { ...rr, routeReflectorClusterId: '1.1.1.1' };
    const s = clusterSettings(config({ nodeToNodeMesh: false }));
    expect(addrs(desiredPeers(b, [a, b, rr2], [], s))).toEqual(['10.0.0.9']);
  });

  it('BGPPeer applies by node selector or node name, and carries its settings', () => {
    const peers = [
      peer('tor1', {
        peerIP: '10.1.0.1',
        asNumber: 65001,
        nodeSelector: { matchLabels: { rack: 'r1' } },
        password: 'x',
      }),
      peer('tor2', { peerIP: '10.2.0.1', asNumber: 65002, node: 'c' }),
      peer('all', { peerIP: '10.3.0.1', asNumber: 65003 }),
    ];
    const s = clusterSettings(config({ nodeToNodeMesh: false }));
    expect(desiredPeers(b, [a, b, c], peers, s)).toEqual([
      { address: '10.1.0.1', asn: 65001, source: 'bgppeer:tor1', password: 'x' },
      { address: '10.3.0.1', asn: 65003, source: 'bgppeer:all' },
    ]);
    expect(addrs(desiredPeers(c, [a, b, c], peers, s))).toEqual(['10.2.0.1', '10.3.0.1']);
  });

  it('an IPv6 BGPPeer is skipped by a node without IPv6', () => {
    const peers = [peer('v6', { peerIP: 'fd00::1', asNumber: 65001 })];
    expect(desiredPeers(a, [a], peers, clusterSettings(undefined))).toEqual([]);
  });

  it('per-node AS: a neighbour in another AS gets its own AS (eBGP)', () => {
    const other = node('x', '10.0.0.5', { asn: 65100 });
    expect(desiredPeers(a, [a, other], [], clusterSettings(undefined))[0]?.asn).toBe(65100);
  });
});

describe('cluster BGP settings', () => {
  it("BGPConfiguration's listen port and hold time apply to node sessions, not to BGPPeers", () => {
    const settings = clusterSettings(config({ listenPort: 1790, holdTime: 30 }));
    const got = desiredPeers(a, [a, b], [peer('tor', { peerIP: '10.0.0.254', asNumber: 65001 })], settings);
    expect(got.map((p) => [p.address, p.port, p.holdTime])).toEqual([
      ['10.0.0.2', 1790, 30],
      ['10.0.0.254', undefined, undefined],
    ]);
    const plain = desiredPeers(a, [a, b], [], clusterSettings(config({ listenPort: 179 })));
    expect(plain[0]).not.toHaveProperty('port');
  });
});

describe('bgpNodeOf', () => {
  const n = (annotations: Record<string, string>): Node => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', annotations, labels: { l: 'v' } },
  });
  it('reads address and AS from annotations, defaulting the AS', () => {
    expect(bgpNodeOf(n({ 'tern.network/bgp-ipv4-address': '10.0.0.7' }), 64512)).toMatchObject({
      ipv4: '10.0.0.7',
      asn: 64512,
      labels: { l: 'v' },
    });
    expect(
      bgpNodeOf(n({ 'tern.network/bgp-ipv4-address': '10.0.0.7', 'tern.network/as-number': '65001' }), 1)
        ?.asn,
    ).toBe(65001);
  });
  it('ignores a node without a valid address', () => {
    expect(bgpNodeOf(n({}), 1)).toBeUndefined();
    expect(bgpNodeOf(n({ 'tern.network/bgp-ipv4-address': 'fd00::1' }), 1)).toBeUndefined();
  });
});

describe('diffPeers', () => {
  it('adds new, removes gone, changes only altered sessions', () => {
    const current = new Map([
      ['10.0.0.2', { address: '10.0.0.2', asn: 64512, source: 'node:b' }],
      ['10.0.0.3', { address: '10.0.0.3', asn: 64512, source: 'node:c' }],
    ]);
    const d = diffPeers(current, [
      { address: '10.0.0.2', asn: 64512, source: 'node:b' },
      { address: '10.0.0.3', asn: 65000, source: 'node:c' },
      { address: '10.0.0.4', asn: 64512, source: 'node:d' },
    ]);
    expect(addrs(d.add)).toEqual(['10.0.0.4']);
    expect(addrs(d.change)).toEqual(['10.0.0.3']);
    expect(d.remove).toEqual([]);
    expect(diffPeers(current, []).remove.sort()).toEqual(['10.0.0.2', '10.0.0.3']);
  });
});
