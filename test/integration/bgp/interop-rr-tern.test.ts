// tern-bgp as route reflector for BIRD, FRR and GoBGP clients (iBGP, one LAN).
import { describe, expect, it } from 'vitest';
import { BgpLab, birdStatic, type DaemonHandle, type LearnedRoute } from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';

const RR = '10.78.0.10';
const CLUSTER = '10.78.0.250';
const CLIENTS = { bird: '10.78.0.1', frr: '10.78.0.2', gobgp: '10.78.0.3' } as const;
const PREFIX = { bird: '10.111.0.0/24', frr: '10.112.0.0/24', gobgp: '10.113.0.0/24' } as const;

describe('tern-bgp as route reflector', () => {
  it('reflects each client route to the other clients with next hop unchanged, ORIGINATOR_ID and CLUSTER_LIST set', async () => {
    const lab = new BgpLab();
    try {
      await lab.init();
      const ns = {
        rr: await lab.netns.add('rr'),
        bird: await lab.netns.add('bird'),
        frr: await lab.netns.add('frr'),
        gobgp: await lab.netns.add('gobgp'),
      };
      await lab.lan([
        { ns: ns.rr, address: `${RR}/24` },
        ...(['bird', 'frr', 'gobgp'] as const).map((k) => ({ ns: ns[k], address: `${CLIENTS[k]}/24` })),
      ]);
      const rr = await lab.tern(ns.rr, 'rr', {
        asn: 65000,
        routerId: RR,
        clusterId: CLUSTER,
        peers: Object.values(CLIENTS).map((address) => ({
          address,
          asn: 65000,
          routeReflectorClient: true,
          connectRetryTime: 1,
        })),
      });
      const clients: Record<keyof typeof CLIENTS, DaemonHandle> = {
        bird: await lab.bird(
          ns.bird,
          'bird',
          `router id ${CLIENTS.bird};
protocol device { }
${birdStatic(PREFIX.bird)}
protocol bgp to_rr { local ${CLIENTS.bird} as 65000; neighbor ${RR} as 65000; direct; connect retry time 1;
  ipv4 { import all; export where source = RTS_STATIC; gateway direct; }; }
`,
        ),
        frr: await lab.frr(
          ns.frr,
          'frr',
          `router bgp 65000
 bgp router-id ${CLIENTS.frr}
 no bgp network import-check
 neighbor ${RR} remote-as 65000
 neighbor ${RR} timers connect 1
 address-family ipv4 unicast
  network ${PREFIX.frr}
 exit-address-family
!
`,
        ),
        gobgp: await lab.gobgp(
          ns.gobgp,
          'gobgp',
          `[global.config]
  as = 65000
  router-id = "${CLIENTS.gobgp}"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${RR}"
    peer-as = 65000
  [neighbors.timers.config]
    connect-retry = 1
`,
        ),
      };
      await clients.gobgp.originate(PREFIX.gobgp);
      try {
        await waitFor(
          'all client sessions established',
          async () => (await rr.status()).every((p) => p.state === 'Established'),
          30_000,
          250,
        );
        for (const [name, client] of Object.entries(clients) as [keyof typeof CLIENTS, DaemonHandle][]) {
          for (const other of ['bird', 'frr', 'gobgp'] as const) {
            if (other === name) continue;
            const r: LearnedRoute = await waitFor(
              `${PREFIX[other]} reflected to ${name}`,
              async () => (await client.routes()).find((x) => x.prefix === PREFIX[other]),
              20_000,
              250,
            );
            expect(r.nextHop).toBe(CLIENTS[other]);
            expect(r.asPath).toEqual([]);
            // BIRD and GoBGP report the RFC 4456 attributes in their route output.
            if (name !== 'frr')
              expect(r).toMatchObject({ originatorId: CLIENTS[other], clusterList: [CLUSTER] });
          }
        }
        // The reflector itself has all three, each best from its originator.
        const ribAtRr = await rr.routes();
        for (const k of ['bird', 'frr', 'gobgp'] as const) {
          expect(ribAtRr.find((r) => r.prefix === PREFIX[k])?.nextHop).toBe(CLIENTS[k]);
        }
        // A withdrawal at one client is reflected too.
        await clients.frr.withdraw(PREFIX.frr);
        for (const k of ['bird', 'gobgp'] as const) {
          await waitFor(
            `${PREFIX.frr} withdrawn at ${k}`,
            async () => !(await clients[k].routes()).some((r) => r.prefix === PREFIX.frr),
            15_000,
            250,
          );
        }
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
      }
    } finally {
      await lab.cleanup();
    }
  }, 90_000);
});
