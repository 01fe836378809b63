// IPv6 unicast through MP_REACH/MP_UNREACH between two tern speakers over loopback.
import { afterEach, describe, expect, it } from 'vitest';
import { BgpSpeaker } from '../../../bgp/speaker.js';
import { waitFor } from '../../support/netns.js';

const speakers: BgpSpeaker[] = [];
afterEach(async () => {
  await Promise.all(speakers.splice(0).map((s) => s.stop()));
});

async function pair(host: string, aAddr: string, bAddr: string, asnB: number, nextHops?: { ipv6: string }) {
  const a = new BgpSpeaker({
    asn: 65001,
    routerId: '10.0.0.1',
    listen: false,
    ...(nextHops ? { nextHops } : {}),
  });
  const b = new BgpSpeaker({ asn: asnB, routerId: '10.0.0.2', listen: { host, port: 0 } });
  speakers.push(a, b);
  await b.start();
  await a.start();
  b.addPeer({ address: aAddr, asn: 65001, passive: true });
  a.addPeer({ address: bAddr, asn: asnB, port: b.listenPort!, localAddress: aAddr, connectRetryTime: 1 });
  await waitFor('established', () => b.peers()[0]?.state === 'Established', 10_000);
  return { a, b };
}

describe('IPv6 unicast', () => {
  it('carries IPv6 routes over an IPv6 session with the session address as next hop, and withdraws them', async () => {
    const { a, b } = await pair('::1', '::1', '::1', 65002);
    a.originate('fd00:1::/64');
    const r = await waitFor('IPv6 route at b', () => b.rib({ prefix: 'fd00:1::/64' })[0]);
    expect(r.paths[0]).toMatchObject({ nextHop: '::1', asPath: [65001], source: 'ebgp' });
    a.withdraw('fd00:1::/64');
    await waitFor('IPv6 withdrawal at b', () => b.rib().length === 0);
  });

  it('carries IPv6 routes over an IPv4 iBGP session: explicit next hop kept, next-hop-self the configured IPv6 address', async () => {
    const { a, b } = await pair('127.0.14.2', '127.0.14.1', '127.0.14.2', 65001, { ipv6: 'fd00::14:1' });
    a.originate('fd00:2::/64', { nextHop: 'fd00::1' });
    a.originate('10.2.0.0/24');
    a.originate('fd00:3::/64');
    await waitFor('three routes at b', () => b.ribSize === 3);
    expect(b.rib({ prefix: 'fd00:2::/64' })[0]?.paths[0]).toMatchObject({
      nextHop: 'fd00::1',
      localPref: 100,
      source: 'ibgp',
    });
    expect(b.rib({ prefix: '10.2.0.0/24' })[0]?.paths[0]?.nextHop).toBe('127.0.14.1');
    expect(b.rib({ prefix: 'fd00:3::/64' })[0]?.paths[0]?.nextHop).toBe('fd00::14:1');
  });

  it('falls back to the IPv4-mapped session address as IPv6 next hop when the node has no IPv6 address', async () => {
    const { a, b } = await pair('127.0.15.2', '127.0.15.1', '127.0.15.2', 65002);
    a.originate('fd00:4::/64');
    a.originate('10.4.0.0/24');
    await waitFor('both routes at b', () => b.ribSize === 2);
    expect(b.rib({ prefix: 'fd00:4::/64' })[0]?.paths[0]).toMatchObject({
      nextHop: '::ffff:7f00:f01', // ::ffff:127.0.15.1 in RFC 5952 hex form
      asPath: [65001],
    });
    expect(b.rib({ prefix: '10.4.0.0/24' })[0]?.paths[0]?.nextHop).toBe('127.0.15.1');
  });
});
