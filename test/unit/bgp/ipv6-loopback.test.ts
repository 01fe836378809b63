// IPv6 unicast through MP_REACH/MP_UNREACH between two tern speakers over loopback.
import { afterEach, describe, expect, it } from 'vitest';
import { BgpSpeaker } from '../../../bgp/speaker.js';
import { waitFor } from '../../support/netns.js';

const speakers: BgpSpeaker[] = [];
afterEach(async () => {
  await Promise.all(speakers.splice(0).map((s) => s.stop()));
});

async function pair(host: string, aAddr: string, bAddr: string, asnB: number) {
  const a = new BgpSpeaker({ asn: 65001, routerId: '10.0.0.1', listen: false });
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

  it('carries IPv6 routes with an explicit IPv6 next hop over an IPv4 iBGP session, next to IPv4 routes', async () => {
    const { a, b } = await pair('127.0.14.2', '127.0.14.1', '127.0.14.2', 65001);
    a.originate('fd00:2::/64', { nextHop: 'fd00::1' });
    a.originate('10.2.0.0/24');
    // Without an IPv6 next hop an IPv6 route cannot be sent over this session (issue 4: next-hop-self v6).
    a.originate('fd00:3::/64');
    await waitFor('both routes at b', () => b.ribSize === 2);
    expect(b.rib({ prefix: 'fd00:2::/64' })[0]?.paths[0]).toMatchObject({
      nextHop: 'fd00::1',
      localPref: 100,
      source: 'ibgp',
    });
    expect(b.rib({ prefix: '10.2.0.0/24' })[0]?.paths[0]?.nextHop).toBe('127.0.14.1');
    expect(b.rib({ prefix: 'fd00:3::/64' })).toEqual([]);
  });
});
