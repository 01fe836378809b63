// UPDATE packing: prefixes with the same attributes share messages of at most 4096 bytes;
// withdrawals are packed too; End-of-RIB follows the initial table.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AdjRibOut } from '../../../bgp/adj-rib-out.js';
import type { Negotiated, Session } from '../../../bgp/session.js';
import type { PathAttributes } from '../../../bgp/wire/attributes.js';
import { decodeMessage, type UpdateMessage } from '../../../bgp/wire/messages.js';
import { formatPrefix, ipv4Key } from '../../../bgp/wire/prefix.js';

function fakeSession() {
  const sent: Buffer[] = [];
  const session = {
    writable: true,
    send: (b: Buffer) => sent.push(b),
    onDrain: () => {},
  } as unknown as Session;
  return { session, sent };
}
const negotiated: Negotiated = {
  peerRouterId: '1.1.1.1',
  peerAsn: 65001,
  holdTime: 90,
  keepaliveTime: 30,
  fourOctetAs: true,
  families: [
    { afi: 1, safi: 1 },
    { afi: 2, safi: 1 },
  ],
  routeRefresh: true,
  enhancedRouteRefresh: true,
  localAddress: '10.0.0.1',
  remoteAddress: '10.0.0.2',
};
const tick = () => new Promise((r) => setImmediate(r));
const A: PathAttributes = Object.freeze({
  origin: 0,
  asPath: [{ type: 2 as const, asns: [65000] }],
  nextHop: '10.0.0.1',
});
const B: PathAttributes = Object.freeze({
  origin: 0,
  asPath: [{ type: 2 as const, asns: [65000] }],
  nextHop: '10.0.0.1',
  med: 7,
});

describe('AdjRibOut', () => {
  it('packs 3000 prefixes of two attribute sets into few UPDATEs ≤ 4096 bytes, then sends End-of-RIB', async () => {
    const { session, sent } = fakeSession();
    const out = new AdjRibOut(session, negotiated, pino({ level: 'silent' }));
    for (let i = 0; i < 3000; i++) out.set(ipv4Key((0x0a000000 + i * 256) >>> 0, 24), i % 2 ? A : B);
    out.sendEndOfRibAfterInitialSync([{ afi: 1, safi: 1 }]);
    await tick();
    await tick();
    const updates = sent.map((b) => decodeMessage(b, { fourOctetAs: true }) as UpdateMessage);
    expect(sent.every((b) => b.length <= 4096)).toBe(true);
    const announced = updates.flatMap((u) => u.nlri);
    expect(announced).toHaveLength(3000);
    // 1500 /24s per attribute set at 4 bytes each: 2 messages per set.
    expect(updates.filter((u) => u.nlri.length > 0)).toHaveLength(4);
    expect(updates.at(-1)?.endOfRib).toEqual({ afi: 1, safi: 1 });
    expect(out.advertisedCount).toBe(3000);
  });

  it('sends a withdrawal only for what was advertised, and nothing for an unchanged route', async () => {
    const { session, sent } = fakeSession();
    const out = new AdjRibOut(session, negotiated, pino({ level: 'silent' }));
    const p = ipv4Key(0x0a010000, 16);
    out.set(p, A);
    await tick();
    out.set(p, A);
    out.set(ipv4Key(0x0a020000, 16), null);
    await tick();
    expect(sent).toHaveLength(1);
    out.set(p, null);
    await tick();
    const w = decodeMessage(sent[1]!, { fourOctetAs: true }) as UpdateMessage;
    expect(w.withdrawn.map(formatPrefix)).toEqual(['10.1.0.0/16']);
    expect(out.advertisedCount).toBe(0);
  });

  it('announces IPv6 prefixes in MP_REACH_NLRI with the route next hop', async () => {
    const { session, sent } = fakeSession();
    const out = new AdjRibOut(session, negotiated, pino({ level: 'silent' }));
    out.set('fd00:1::/64', { origin: 0, asPath: [], nextHop: 'fd00::1' });
    await tick();
    const u = decodeMessage(sent[0]!, { fourOctetAs: true }) as UpdateMessage;
    expect(u.mpReach).toMatchObject({ afi: 2, nextHop: 'fd00::1', nlri: ['fd00:1::/64'] });
    expect(u.nlri).toEqual([]);
  });
});
