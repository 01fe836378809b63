// Two tern speakers over loopback (127.0.0.x): sessions, route exchange, withdrawal, roles.
import { afterEach, describe, expect, it } from 'vitest';
import { BgpSpeaker, type PeerOptions } from '../../../bgp/speaker.js';
import { waitFor } from '../../support/netns.js';

const speakers: BgpSpeaker[] = [];
afterEach(async () => {
  await Promise.all(speakers.splice(0).map((s) => s.stop()));
});

async function speaker(asn: number, routerId: string, host: string, clusterId?: string): Promise<BgpSpeaker> {
  const s = new BgpSpeaker({ asn, routerId, listen: { host, port: 0 }, ...(clusterId ? { clusterId } : {}) });
  speakers.push(s);
  await s.start();
  return s;
}

/** Connects a (active) to b (passive). */
function pair(
  a: BgpSpeaker,
  aHost: string,
  b: BgpSpeaker,
  bHost: string,
  extraA: Partial<PeerOptions> = {},
  extraB: Partial<PeerOptions> = {},
) {
  a.addPeer({
    address: bHost,
    asn: b.asn,
    localAddress: aHost,
    port: b.listenPort!,
    connectRetryTime: 1,
    ...extraA,
  });
  b.addPeer({ address: aHost, asn: a.asn, passive: true, ...extraB });
}

const established = (s: BgpSpeaker, peer: string) =>
  waitFor(
    `${peer} established`,
    () => s.peers().find((p) => p.address === peer)?.state === 'Established',
    10_000,
  );

describe('BgpSpeaker over loopback', () => {
  it('establishes an eBGP session, exchanges routes with AS prepended and next-hop-self, and propagates a withdrawal', async () => {
    const a = await speaker(65001, '10.0.0.1', '127.0.1.1');
    const b = await speaker(65002, '10.0.0.2', '127.0.1.2');
    pair(a, '127.0.1.1', b, '127.0.1.2');
    a.originate('10.1.0.0/24');
    b.originate('10.2.0.0/24', { communities: ['65002:7'] });
    await established(a, '127.0.1.2');
    await established(b, '127.0.1.1');
    const atB = await waitFor('10.1.0.0/24 at b', () => b.rib({ prefix: '10.1.0.0/24' })[0]);
    expect(atB.paths[0]).toMatchObject({
      best: true,
      peer: '127.0.1.1',
      source: 'ebgp',
      nextHop: '127.0.1.1',
      asPath: [65001],
    });
    const atA = await waitFor('10.2.0.0/24 at a', () => a.rib({ prefix: '10.2.0.0/24' })[0]);
    expect(atA.paths[0]).toMatchObject({ nextHop: '127.0.1.2', asPath: [65002], communities: ['65002:7'] });
    expect(a.peers()[0]).toMatchObject({ prefixesReceived: 1, prefixesAccepted: 1, prefixesAdvertised: 1 });

    const changes: string[] = [];
    b.on('bestPathChanged', (c) => changes.push(`${c.prefix}:${c.best ? 'up' : 'down'}`));
    a.withdraw('10.1.0.0/24');
    await waitFor('withdrawal at b', () => b.rib({ prefix: '10.1.0.0/24' }).length === 0);
    expect(changes).toEqual(['10.1.0.0/24:down']);
  });

  it('withdraws every route of a peer that is removed, without touching the other session', async () => {
    const a = await speaker(65001, '10.0.0.1', '127.0.2.1');
    const b = await speaker(65002, '10.0.0.2', '127.0.2.2');
    const c = await speaker(65003, '10.0.0.3', '127.0.2.3');
    pair(b, '127.0.2.2', a, '127.0.2.1');
    pair(c, '127.0.2.3', a, '127.0.2.1');
    b.originate('10.2.0.0/24');
    c.originate('10.3.0.0/24');
    await waitFor('both routes at a', () => a.ribSize === 2);
    const since = a.peers().find((p) => p.address === '127.0.2.3')!.since;
    a.removePeer('127.0.2.2');
    await waitFor('b route gone', () => a.ribSize === 1);
    expect(a.rib()[0]!.prefix).toBe('10.3.0.0/24');
    const cStatus = a.peers().find((p) => p.address === '127.0.2.3')!;
    expect(cStatus.state).toBe('Established');
    expect(cStatus.since).toBe(since);
  });

  it('does not re-advertise iBGP routes to iBGP peers, but a route reflector does, with ORIGINATOR_ID and CLUSTER_LIST', async () => {
    const rr = await speaker(65000, '10.0.0.100', '127.0.3.100', '1.1.1.1');
    const x = await speaker(65000, '10.0.0.1', '127.0.3.1');
    const y = await speaker(65000, '10.0.0.2', '127.0.3.2');
    pair(x, '127.0.3.1', rr, '127.0.3.100', {}, { routeReflectorClient: true });
    pair(y, '127.0.3.2', rr, '127.0.3.100', {}, { routeReflectorClient: false });
    x.originate('10.1.0.0/24');
    const atY = await waitFor('reflected route at y', () => y.rib({ prefix: '10.1.0.0/24' })[0]);
    expect(atY.paths[0]).toMatchObject({
      source: 'ibgp',
      nextHop: '127.0.3.1',
      originatorId: '10.0.0.1',
      clusterList: ['1.1.1.1'],
      localPref: 100,
    });
    // Non-client → client: reflected; non-client route is not sent back to y itself.
    y.originate('10.2.0.0/24');
    const atX = await waitFor('route at x', () => x.rib({ prefix: '10.2.0.0/24' })[0]);
    expect(atX.paths[0]).toMatchObject({ nextHop: '127.0.3.2', originatorId: '10.0.0.2' });

    // Plain iBGP (no reflection): a non-client route from y is not passed to another non-client.
    rr.updatePeer({ address: '127.0.3.1', asn: 65000, passive: true, routeReflectorClient: false });
    await waitFor('x loses y route', () => x.rib({ prefix: '10.2.0.0/24' }).length === 0);
  });

  it('applies import and export policy (prefix lists with ge/le, community match and set)', async () => {
    const a = await speaker(65001, '10.0.0.1', '127.0.4.1');
    const b = await speaker(65002, '10.0.0.2', '127.0.4.2');
    pair(
      a,
      '127.0.4.1',
      b,
      '127.0.4.2',
      {
        exportPolicy: {
          rules: [
            {
              match: { prefixes: [{ prefix: '10.0.0.0/8', ge: 24, le: 24 }] },
              action: 'accept',
              set: { addCommunities: ['65001:1'] },
            },
          ],
          defaultAction: 'reject',
        },
      },
      {
        importPolicy: {
          rules: [{ match: { communities: ['65001:1'] }, action: 'accept', set: { localPref: 200 } }],
          defaultAction: 'reject',
        },
      },
    );
    a.originate('10.1.0.0/24');
    a.originate('10.1.0.0/16');
    a.originate('192.168.0.0/24');
    await waitFor('route at b', () => b.ribSize === 1);
    const r = b.rib()[0]!;
    expect(r.prefix).toBe('10.1.0.0/24');
    expect(r.paths[0]).toMatchObject({ communities: ['65001:1'], localPref: 200 });
  });

  it('export policy prepends AS numbers and sets standard and large communities per peer', async () => {
    const a = await speaker(65001, '10.0.0.1', '127.0.5.1');
    const b = await speaker(65002, '10.0.0.2', '127.0.5.2');
    const c = await speaker(65003, '10.0.0.3', '127.0.5.3');
    pair(a, '127.0.5.1', b, '127.0.5.2', {
      exportPolicy: {
        rules: [
          {
            action: 'accept',
            set: { addCommunities: ['65001:7', '65001:8:9'], asPathPrepend: { asn: 65001, count: 2 } },
          },
        ],
      },
    });
    pair(a, '127.0.5.1', c, '127.0.5.3');
    a.originate('10.1.0.0/24');
    const atB = await waitFor('route at b', () => b.rib({ prefix: '10.1.0.0/24' })[0]);
    expect(atB.paths[0]).toMatchObject({
      asPath: [65001, 65001, 65001],
      communities: ['65001:7'],
      largeCommunities: ['65001:8:9'],
    });
    const atC = await waitFor('route at c', () => c.rib({ prefix: '10.1.0.0/24' })[0]);
    expect(atC.paths[0]?.asPath).toEqual([65001]);
    expect(atC.paths[0]?.communities).toBeUndefined();
  });
});
