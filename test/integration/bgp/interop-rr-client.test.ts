// tern-bgp as a route reflector client of BIRD and of FRR (iBGP, one LAN each).
import { describe, expect, it } from 'vitest';
import { BgpLab, birdStatic, type DaemonHandle } from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';

const TERN = '10.79.0.1';
const RR = '10.79.0.10';
const OTHER = '10.79.0.2';
const CLUSTER = '10.79.0.250';
const TERN_PREFIX = '10.121.0.0/24';
const OTHER_PREFIX = '10.122.0.0/24';

async function scenario(reflector: 'bird' | 'frr'): Promise<void> {
  const lab = new BgpLab();
  try {
    await lab.init();
    const nsTern = await lab.netns.add('tern');
    const nsRr = await lab.netns.add('rr');
    const nsOther = await lab.netns.add('other');
    await lab.lan([
      { ns: nsTern, address: `${TERN}/24` },
      { ns: nsRr, address: `${RR}/24` },
      { ns: nsOther, address: `${OTHER}/24` },
    ]);
    const tern = await lab.tern(nsTern, 'tern', {
      asn: 65000,
      routerId: TERN,
      peers: [{ address: RR, asn: 65000, connectRetryTime: 1 }],
      originate: [TERN_PREFIX],
    });
    let rr: DaemonHandle;
    let other: DaemonHandle;
    if (reflector === 'bird') {
      rr = await lab.bird(
        nsRr,
        'rr',
        `router id ${RR};
protocol device { }
template bgp c { local ${RR} as 65000; direct; rr client; rr cluster id ${CLUSTER}; connect retry time 1;
  ipv4 { import all; export all; gateway direct; }; }
protocol bgp to_tern from c { neighbor ${TERN} as 65000; }
protocol bgp to_other from c { neighbor ${OTHER} as 65000; }
`,
      );
      other = await lab.frr(
        nsOther,
        'other',
        `router bgp 65000
 bgp router-id ${OTHER}
 no bgp network import-check
 neighbor ${RR} remote-as 65000
 neighbor ${RR} timers connect 1
 address-family ipv4 unicast
  network ${OTHER_PREFIX}
 exit-address-family
!
`,
      );
    } else {
      rr = await lab.frr(
        nsRr,
        'rr',
        `router bgp 65000
 bgp router-id ${RR}
 bgp cluster-id ${CLUSTER}
 neighbor ${TERN} remote-as 65000
 neighbor ${TERN} timers connect 1
 neighbor ${OTHER} remote-as 65000
 neighbor ${OTHER} timers connect 1
 address-family ipv4 unicast
  neighbor ${TERN} route-reflector-client
  neighbor ${OTHER} route-reflector-client
 exit-address-family
!
`,
      );
      other = await lab.bird(
        nsOther,
        'other',
        `router id ${OTHER};
protocol device { }
${birdStatic(OTHER_PREFIX)}
protocol bgp to_rr { local ${OTHER} as 65000; neighbor ${RR} as 65000; direct; connect retry time 1;
  ipv4 { import all; export where source = RTS_STATIC; gateway direct; }; }
`,
      );
    }
    try {
      await waitFor(
        'tern session to the reflector',
        async () => (await tern.status())[0]?.state === 'Established',
        30_000,
        250,
      );
      await waitFor(
        'both reflector sessions',
        async () => (await rr.peers()).filter((p) => p.established).length === 2,
        30_000,
        250,
      );
      const learned = await waitFor(
        'other client route at tern',
        async () => (await tern.rib()).find((e) => e.prefix === OTHER_PREFIX)?.paths[0],
        20_000,
        250,
      );
      expect(learned).toMatchObject({
        source: 'ibgp',
        peer: RR,
        nextHop: OTHER,
        asPath: [],
        originatorId: OTHER,
        localPref: 100,
      });
      expect(learned.clusterList).toEqual([CLUSTER]);
      const atOther = await waitFor(
        'tern route at the other client',
        async () => (await other.routes()).find((r) => r.prefix === TERN_PREFIX),
        20_000,
        250,
      );
      expect(atOther.nextHop).toBe(TERN);
      // Withdrawal from tern reaches the other client through the reflector.
      await tern.withdraw(TERN_PREFIX);
      await waitFor(
        'withdrawal at the other client',
        async () => !(await other.routes()).some((r) => r.prefix === TERN_PREFIX),
        15_000,
        250,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
    }
  } finally {
    await lab.cleanup();
  }
}

describe('tern-bgp as route reflector client', () => {
  it('learns another (FRR) client route through a BIRD reflector, with ORIGINATOR_ID/CLUSTER_LIST and the next hop unchanged', async () => {
    await scenario('bird');
  }, 60_000);

  it('learns another (BIRD) client route through an FRR reflector, with ORIGINATOR_ID/CLUSTER_LIST and the next hop unchanged', async () => {
    await scenario('frr');
  }, 60_000);
});
