// Three nodes in an iBGP full mesh (the ToR only switches), agents on a real etcd, pods through
// the real CNI plugin: convergence, drift repair, a crash under traffic, live BGPPeer changes
// and node removal.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerStatusWithSource } from '../../../felix/bgp-controller.js';
import { agentGet, learnedRoutes, newLab, ping, pingFlood, pollUntil, threeNodes } from './lab-support.js';

const RESYNC_SECONDS = 5;
const lab = newLab('mesh', ['--route-resync-seconds', String(RESYNC_SECONDS)]);
const ips: Record<string, string> = {};

async function peersOf(node: string): Promise<PeerStatusWithSource[]> {
  return ((await lab.nodeStatus(node)) as { peers: PeerStatusWithSource[] }).peers;
}

describe('full mesh', () => {
  beforeAll(async () => {
    await lab.up(threeNodes({ bgp: { mode: 'mesh' } }));
    for (const node of ['node1', 'node2', 'node3']) {
      const pod = `p-${node}`;
      ips[pod] = (await lab.createPod({ namespace: 't', name: pod, node }, { server: false })).ip;
    }
    await lab.waitConverged(60_000);
  }, 240_000);

  afterAll(async () => {
    await lab.down();
  }, 60_000);

  it('every node peers with the two others and learns their blocks via their addresses', async () => {
    const addresses = { node1: '10.77.0.11', node2: '10.77.0.12', node3: '10.77.0.13' };
    for (const [node, self] of Object.entries(addresses)) {
      const peers = await peersOf(node);
      const others = Object.values(addresses).filter((a) => a !== self);
      expect(peers.map((p) => [p.address, p.state, p.type])).toEqual(
        others.map((a) => [a, 'Established', 'ibgp']),
      );
      const gateways = new Set((await lab.kernelRoutes(node, 92)).map((r) => r.gateway));
      expect([...gateways].sort()).toEqual(others);
    }
  });

  it('pods on different nodes ping each other', async () => {
    for (const from of Object.keys(ips)) {
      for (const [to, ip] of Object.entries(ips)) {
        if (to === from) continue;
        const r = await ping(lab, `t/${from}`, ip, ['-c', '2', '-i', '0.2', '-W', '2']);
        expect(r.received, `${from} → ${to}\n${r.output}`).toBe(2);
      }
    }
  });

  it('a running agent is live and ready, and its /metrics shows sessions, prefixes, route and CNI latency, IPAM usage', async () => {
    expect(await agentGet(lab, 'node1', '/livez')).toEqual({ status: 200, body: 'ok' });
    expect(await agentGet(lab, 'node1', '/readyz')).toEqual({ status: 200, body: 'ok' });
    const { body } = await agentGet(lab, 'node1', '/metrics');
    const value = (re: RegExp) => Number(re.exec(body)?.[1] ?? NaN);
    expect(value(/^tern_bgp_session_established\{peer="10\.77\.0\.12",source="node:node2"\} (\d+)/m)).toBe(1);
    expect(
      value(/^tern_bgp_prefixes_received\{peer="10\.77\.0\.12",source="node:node2"\} (\d+)/m),
    ).toBeGreaterThan(0);
    expect(value(/^tern_route_programming_seconds_count\{class="bgp"\} (\d+)/m)).toBeGreaterThan(0);
    expect(value(/^tern_cni_operation_seconds_count\{command="ADD",result="ok"\} (\d+)/m)).toBe(1);
    expect(value(/^tern_ipam_addresses_used\{pool="default-ipv4"\} (\d+)/m)).toBe(3);
    // Source validation is in the raw table (the agent installs it before its
    // CNI socket listens), and the pods' real traffic above was never counted as forged.
    for (const cmd of ['iptables-save', 'ip6tables-save']) {
      const raw = (await execa('ip', ['netns', 'exec', lab.netnsOf('node1'), cmd, '-t', 'raw'])).stdout;
      expect(raw).toContain('-A PREROUTING -j tern-PREROUTING');
      expect(raw).toContain('-A tern-PREROUTING -i tern+ -m rpfilter --invert -j tern-spoofed');
    }
    expect(body).not.toMatch(/^tern_spoofed_packets_dropped_total\{[^}]*\} [1-9]/m);
  });

  it('a tern route deleted by hand is back well within the resync period', async () => {
    const [route] = await lab.kernelRoutes('node1', 92);
    expect(route).toBeDefined();
    const netns = lab.netnsOf('node1');
    await execa('ip', ['-n', netns, 'route', 'del', route!.dst, 'proto', '92']);
    const { elapsedMs } = await pollUntil(
      `${route!.dst} back on node1`,
      async () =>
        (await lab.kernelRoutes('node1', 92)).some((r) => r.dst === route!.dst) ? true : undefined,
      RESYNC_SECONDS * 1000 + 5000,
      5,
    );
    console.log(
      `hand-deleted route ${route!.dst} restored after ${elapsedMs.toFixed(1)} ms (poll every 5 ms)`,
    );
    expect(elapsedMs).toBeLessThan((RESYNC_SECONDS + 5) * 1000);
  });

  it('kill -9 of an agent under a pod-to-pod ping flood loses no packet (graceful restart: routes stay everywhere)', async () => {
    const before = await lab.kernelRoutes('node2');
    const viaNode2Before = (await learnedRoutes(lab, 'node1')).filter((r) => r.endsWith('via 10.77.0.12'));
    expect(viaNode2Before.length).toBeGreaterThan(0);
    const flood = pingFlood(lab, 't/p-node1', ips['p-node2']!, 25);
    await new Promise((r) => setTimeout(r, 2000));
    const killedAt = performance.now();
    await lab.stopAgent('node2', 'SIGKILL');
    // The crashed agent's node keeps every route (pod, block, learned) while nothing runs there.
    expect((await lab.kernelRoutes('node2')).map((r) => r.dst).sort()).toEqual(
      before.map((r) => r.dst).sort(),
    );
    // ...and its peers keep its routes as stale (RFC 4724) instead of withdrawing them.
    await new Promise((r) => setTimeout(r, 300));
    expect((await learnedRoutes(lab, 'node1')).filter((r) => r.endsWith('via 10.77.0.12'))).toEqual(
      viaNode2Before,
    );
    await lab.startAgent('node2');
    const restartedAfterMs = performance.now() - killedAt;
    await lab.waitConverged(60_000);
    const result = await flood;
    const lost = result.transmitted - result.received;
    const window = result.lost.length ? ` (seq ${result.lost[0]}..${result.lost.at(-1)})` : '';
    console.log(
      `kill -9 under ping -i 0.01: ${lost} of ${result.transmitted} lost, outage ${result.outageMs.toFixed(0)} ms` +
        `${window}; agent serving again ${restartedAfterMs.toFixed(0)} ms after the kill`,
    );
    expect(result.transmitted).toBeGreaterThan(100);
    expect(result.lost).toEqual([]);
    const after = await ping(lab, 't/p-node1', ips['p-node2']!, ['-c', '50', '-i', '0.01', '-W', '1']);
    expect(after.received).toBe(50);
  }, 120_000);

  it('a BGPPeer added and removed live changes only its own session', async () => {
    const sinceBefore = new Map(
      (await Promise.all(['node1', 'node2', 'node3'].map(peersOf)))
        .flat()
        .map((p) => [p.address + p.since, p]),
    );
    const ds = await lab.datastore();
    const peer = {
      apiVersion: 'tern.network/v1',
      kind: 'BGPPeer',
      metadata: { name: 'extra' },
      spec: { peerIP: '10.77.0.99', asNumber: 65099, nodeSelector: { matchLabels: { 'extra-peer': 'yes' } } },
    };
    // Select node1 only: label it through the datastore as an operator would.
    const n1 = (await ds.get('Node', { name: 'node1' }))!;
    n1.metadata.labels = { ...n1.metadata.labels, 'extra-peer': 'yes' };
    await ds.update<'Node'>(n1);
    await lab.apply([peer]);
    await pollUntil(
      'node1 has the extra peer',
      async () => ((await peersOf('node1')).some((p) => p.address === '10.77.0.99') ? true : undefined),
      10_000,
    );
    const unchanged = async () => {
      for (const node of ['node1', 'node2', 'node3']) {
        for (const p of (await peersOf(node)).filter((x) => x.address !== '10.77.0.99')) {
          expect(p.state, `${node} → ${p.address}`).toBe('Established');
          expect(sinceBefore.has(p.address + p.since), `${node} → ${p.address} was not reset`).toBe(true);
        }
      }
    };
    expect((await peersOf('node1')).find((p) => p.address === '10.77.0.99')).toMatchObject({
      asn: 65099,
      type: 'ebgp',
      source: 'bgppeer:extra',
    });
    expect((await peersOf('node2')).some((p) => p.address === '10.77.0.99')).toBe(false);
    await unchanged();

    await lab.delete([peer]);
    await pollUntil(
      'node1 dropped the extra peer',
      async () => ((await peersOf('node1')).some((p) => p.address === '10.77.0.99') ? undefined : true),
      10_000,
    );
    await unchanged();
  });

  it('a removed node (agent stopped, Node deleted) disappears from every other node: sessions and routes', async () => {
    const gone = '10.77.0.13';
    expect((await learnedRoutes(lab, 'node1')).some((r) => r.endsWith(`via ${gone}`))).toBe(true);
    await lab.removeNode('node3');
    for (const node of ['node1', 'node2']) {
      await pollUntil(
        `${node} forgets node3`,
        async () => {
          const routes = await learnedRoutes(lab, node);
          const peers = await peersOf(node);
          return routes.some((r) => r.endsWith(`via ${gone}`)) || peers.some((p) => p.address === gone)
            ? undefined
            : true;
        },
        15_000,
      );
      expect((await peersOf(node)).map((p) => p.state)).toEqual(['Established']);
    }
    const r = await ping(lab, 't/p-node1', ips['p-node2']!, ['-c', '2', '-i', '0.2', '-W', '2']);
    expect(r.received).toBe(2);
  }, 60_000);
});
