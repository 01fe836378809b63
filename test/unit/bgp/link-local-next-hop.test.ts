// A route received with a 32-byte next hop whose global half is unusable (::) is reported with
// the interface of the session it came from, and the agent's choice installs its link-local half
// through that interface.
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { installableNextHop } from '../../../bgp/next-hop.js';
import type { BestPathChange } from '../../../bgp/speaker.js';
import { encodeMpReachHeader, encodePathAttributes } from '../../../bgp/wire/attributes-encode.js';
import { encodeUpdate } from '../../../bgp/wire/messages.js';
import { waitFor } from '../../support/netns.js';
import { established } from './raw-peer.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The interface holding ::1 (the loopback) as the OS names it. */
const loopback = Object.entries(os.networkInterfaces()).find(([, l]) =>
  l?.some((i) => i.address === '::1'),
)?.[0];

describe('link-local next hops', () => {
  it('reports the session interface with a link-local next hop, and installs through it', async () => {
    expect(loopback, 'no interface holds ::1 (IPv6 loopback)').toBeDefined();
    const { s, socket } = await established('::1', '::1', cleanups, { families: [{ afi: 2, safi: 1 }] });
    const changes: BestPathChange[] = [];
    s.on('bestPathChanged', (c) => changes.push(c));
    const attrs = encodePathAttributes(
      { origin: 0, asPath: [{ type: 2, asns: [65002] }] },
      { fourOctetAs: true },
      false,
    );
    const nlri = Buffer.from('40fd00000000000007', 'hex'); // fd00:0:0:7::/64
    const mp = encodeMpReachHeader(2, '::', 'fe80::7', nlri.length);
    socket.write(encodeUpdate(Buffer.alloc(0), Buffer.concat([attrs, mp, nlri]), Buffer.alloc(0)));
    const best = (await waitFor('route learned', () => changes.find((c) => c.best), 5000)).best!;
    expect(best).toMatchObject({ nextHop: '::', linkLocalNextHop: 'fe80::7', nextHopInterface: loopback });
    expect(installableNextHop(best.nextHop, best.linkLocalNextHop, best.nextHopInterface)).toEqual({
      via: 'fe80::7',
      dev: loopback,
    });
  });
});
