// IPv6 unicast (MP_REACH/MP_UNREACH) with BIRD over an IPv6 eBGP session, global + link-local next hop.
import { describe, expect, it } from 'vitest';
import { BgpLab, birdStatic } from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';

const T = 'fd00:77::1';
const D = 'fd00:77::2';

describe('tern-bgp ↔ BIRD over IPv6', () => {
  it('exchanges and withdraws IPv6 routes in MP_REACH/MP_UNREACH with next hops set', async () => {
    const lab = new BgpLab();
    try {
      await lab.init();
      const nsT = await lab.netns.add('t');
      const nsD = await lab.netns.add('d');
      await lab.lan([
        { ns: nsT, address: `${T}/64` },
        { ns: nsD, address: `${D}/64` },
      ]);
      const tern = await lab.tern(nsT, 't', {
        asn: 65001,
        routerId: '10.77.0.1',
        peers: [{ address: D, asn: 65002, connectRetryTime: 1 }],
        originate: ['fd00:101::/64'],
      });
      const bird = await lab.bird(
        nsD,
        'd',
        `router id 10.77.0.2;
protocol device { }
${birdStatic('fd00:102::/64')}
protocol bgp t6 { local ${D} as 65002; neighbor ${T} as 65001; connect retry time 1; ipv6 { import all; export all; }; }
`,
      );
      try {
        await waitFor('session', async () => (await tern.status())[0]?.state === 'Established', 30_000, 250);
        const atTern = await waitFor(
          'BIRD route at tern',
          async () => (await tern.rib()).find((e) => e.prefix === 'fd00:102::/64')?.paths[0],
          20_000,
          250,
        );
        expect(atTern).toMatchObject({ nextHop: D, asPath: [65002] });
        // BIRD adds its link-local address when the interface has one ready (DAD may still run).
        if (atTern.linkLocalNextHop) expect(atTern.linkLocalNextHop).toMatch(/^fe80:/);
        const atBird = await waitFor(
          'tern route at BIRD',
          async () => (await bird.routes()).find((r) => r.prefix === 'fd00:101::/64'),
          20_000,
          250,
        );
        expect(atBird).toMatchObject({ nextHop: T, asPath: [65001] });
        await tern.withdraw('fd00:101::/64');
        await waitFor(
          'withdrawal at BIRD',
          async () => !(await bird.routes()).some((r) => r.prefix === 'fd00:101::/64'),
          15_000,
          250,
        );
        await bird.withdraw('fd00:102::/64');
        await waitFor(
          'withdrawal at tern',
          async () => !(await tern.rib()).some((e) => e.prefix === 'fd00:102::/64'),
          15_000,
          250,
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
      }
    } finally {
      await lab.cleanup();
    }
  }, 60_000);
});
