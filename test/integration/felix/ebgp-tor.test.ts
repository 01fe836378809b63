// BIRD as the top-of-rack eBGP peer (its own AS), nodes in an iBGP mesh with one node in an
// AS of its own (AS per rack): the ToR receives every node's blocks, and every node learns
// and installs the prefix the ToR originates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerStatusWithSource } from '../../../felix/bgp-controller.js';
import { containsCidr, parseCidr } from '../../../model/index.js';
import { newLab, ping, pollUntil, threeNodes } from './lab-support.js';

const TOR_AS = 65001;
const EXTERNAL = '10.99.0.0/24';
const lab = newLab('ebgp');
const ips: Record<string, string> = {};
const peersOf = async (node: string) =>
  ((await lab.nodeStatus(node)) as { peers: PeerStatusWithSource[] }).peers;

describe('BIRD top-of-rack over eBGP', () => {
  beforeAll(async () => {
    await lab.up(
      threeNodes({
        tor: { kind: 'bird', asn: TOR_AS, originate: [EXTERNAL] },
        bgp: { mode: 'ebgp-tor' },
        nodes: [{ name: 'node1' }, { name: 'node2' }, { name: 'node3', asn: 64513 }],
      }),
    );
    for (const node of ['node1', 'node2', 'node3']) {
      const pod = `p-${node}`;
      ips[pod] = (await lab.createPod({ namespace: 't', name: pod, node }, { server: false })).ip;
    }
    await lab.waitConverged(90_000);
  }, 240_000);

  afterAll(async () => {
    await lab.down();
  }, 60_000);

  it('every node has an eBGP session to the ToR and sessions to the other nodes (eBGP across ASes)', async () => {
    const tor = await lab.torPeers();
    expect(tor.map((p) => [p.name, p.established])).toEqual([
      ['node1', true],
      ['node2', true],
      ['node3', true],
    ]);
    const n1 = await peersOf('node1');
    expect(n1.map((p) => [p.address, p.type, p.state])).toEqual([
      ['10.77.0.1', 'ebgp', 'Established'],
      ['10.77.0.12', 'ibgp', 'Established'],
      ['10.77.0.13', 'ebgp', 'Established'],
    ]);
  });

  it("the ToR's RIB holds every node's blocks, each via that node", async () => {
    const ds = await lab.datastore();
    const blocks = (await ds.list('IPAMBlock')).items.filter((b) => b.spec.affinity);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    const address: Record<string, string> = { node1: '10.77.0.11', node2: '10.77.0.12', node3: '10.77.0.13' };
    const { value: routes } = await pollUntil(
      'ToR has every block',
      async () => {
        const r = await lab.torRoutes();
        return blocks.every((b) => r.some((x) => containsCidr(parseCidr(x.prefix), parseCidr(b.spec.cidr))))
          ? r
          : undefined;
      },
      20_000,
      200,
    );
    for (const b of blocks) {
      const covering = routes.find((x) => containsCidr(parseCidr(x.prefix), parseCidr(b.spec.cidr)))!;
      expect(covering.nextHop, `${b.spec.cidr} on the ToR`).toBe(address[b.spec.affinity!]);
    }
  });

  it('every node installs the prefix the ToR originates, via the ToR, with tern’s BGP protocol', async () => {
    for (const node of ['node1', 'node2', 'node3']) {
      const { value: route } = await pollUntil(
        `${EXTERNAL} on ${node}`,
        async () => (await lab.kernelRoutes(node, 92)).find((r) => r.dst === EXTERNAL),
        20_000,
        200,
      );
      expect(route.gateway).toBe('10.77.0.1');
    }
  });

  it('pods reach each other across the two ASes', async () => {
    for (const from of Object.keys(ips)) {
      for (const [to, ip] of Object.entries(ips)) {
        if (to === from) continue;
        const r = await ping(lab, `t/${from}`, ip, ['-c', '2', '-i', '0.2', '-W', '2']);
        expect(r.received, `${from} → ${to}\n${r.output}`).toBe(2);
      }
    }
  });
});
