// Route-reflector mode with one reflector *node* (the ToR only switches): the mesh is off,
// node1 reflects with a cluster ID, the others peer with it alone and still reach each other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerStatusWithSource } from '../../../felix/bgp-controller.js';
import { newLab, ping, threeNodes } from './lab-support.js';

const lab = newLab('rr');
const ips: Record<string, string> = {};
const peersOf = async (node: string) =>
  ((await lab.nodeStatus(node)) as { peers: PeerStatusWithSource[] }).peers;

describe('route reflector node', () => {
  beforeAll(async () => {
    await lab.up(
      threeNodes({
        bgp: { mode: 'node-reflector' },
        nodes: [{ name: 'node1', routeReflector: true }, { name: 'node2' }, { name: 'node3' }],
      }),
    );
    for (const node of ['node1', 'node2', 'node3']) {
      const pod = `p-${node}`;
      ips[pod] = (await lab.createPod({ namespace: 't', name: pod, node }, { server: false })).ip;
    }
    await lab.waitConverged(60_000);
  }, 240_000);

  afterAll(async () => {
    await lab.down();
  }, 60_000);

  it('the reflector peers with both clients; clients peer with the reflector only', async () => {
    expect((await peersOf('node1')).map((p) => [p.address, p.state, p.routeReflectorClient])).toEqual([
      ['10.77.0.12', 'Established', true],
      ['10.77.0.13', 'Established', true],
    ]);
    for (const node of ['node2', 'node3'])
      expect((await peersOf(node)).map((p) => [p.address, p.state])).toEqual([['10.77.0.11', 'Established']]);
    expect(await lab.torPeers()).toEqual([]);
  });

  it('a client learns the other client’s block with that client as next hop (reflected, not via the reflector)', async () => {
    const routes = await lab.kernelRoutes('node2', 92);
    expect(routes.map((r) => r.gateway).sort()).toEqual(['10.77.0.11', '10.77.0.13']);
  });

  it('pods on the two clients and on the reflector ping each other', async () => {
    for (const from of Object.keys(ips)) {
      for (const [to, ip] of Object.entries(ips)) {
        if (to === from) continue;
        const r = await ping(lab, `t/${from}`, ip, ['-c', '2', '-i', '0.2', '-W', '2']);
        expect(r.received, `${from} → ${to}\n${r.output}`).toBe(2);
      }
    }
  });
});
