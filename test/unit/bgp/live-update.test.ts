// UPDATE handling on a live session (raw TCP peer over loopback): RFC 7606 treat-as-withdraw and
// attribute-discard keep the session, a session-reset error sends the NOTIFICATION, and a stream of
// mutated UPDATEs never crashes the speaker.
import { afterEach, describe, expect, it } from 'vitest';
import { encodePathAttributes } from '../../../bgp/wire/attributes-encode.js';
import { encodeUpdate } from '../../../bgp/wire/messages.js';
import { waitFor } from '../../support/netns.js';
import { established as establishedRaw } from './raw-peer.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const GOOD = encodePathAttributes(
  { origin: 0, asPath: [{ type: 2, asns: [65002] }], nextHop: '127.0.10.2' },
  { fourOctetAs: true },
  true,
);
const update = (attrs: Buffer, nlri = '18 0a0100') => encodeUpdate(Buffer.alloc(0), attrs, hex(nlri));

const established = (host: string, peerHost: string) => establishedRaw(host, peerHost, cleanups);

describe('UPDATE handling on a live session', () => {
  it('withdraws the NLRI of an UPDATE with a malformed ORIGIN (treat-as-withdraw) and keeps the session', async () => {
    const { s, socket } = await established('127.0.10.1', '127.0.10.2');
    socket.write(update(GOOD));
    await waitFor('route learned', () => s.ribSize === 1, 5000);
    socket.write(update(Buffer.concat([hex('40 01 01 05'), GOOD.subarray(4)])));
    await waitFor('route withdrawn', () => s.ribSize === 0, 5000);
    expect(s.peers()[0]).toMatchObject({ state: 'Established', prefixesReceived: 0 });
  });

  it('drops only a malformed AGGREGATOR (attribute-discard) and keeps the route and the session', async () => {
    const { s, socket } = await established('127.0.11.1', '127.0.11.2');
    socket.write(update(Buffer.concat([GOOD, hex('c0 07 03 000000')])));
    await waitFor('route learned', () => s.ribSize === 1, 5000);
    expect(s.peers()[0]?.state).toBe('Established');
  });

  it('answers an NLRI field error with NOTIFICATION 3/10 and withdraws the peer routes', async () => {
    const { s, socket, received } = await established('127.0.12.1', '127.0.12.2');
    socket.write(update(GOOD));
    await waitFor('route learned', () => s.ribSize === 1, 5000);
    socket.write(update(GOOD, '21 0a000000 00'));
    await waitFor('NOTIFICATION', () => received.find((m) => m[18] === 3), 5000);
    const n = received.find((m) => m[18] === 3)!;
    expect([n[19], n[20]]).toEqual([3, 10]);
    await waitFor('routes gone', () => s.ribSize === 0, 5000);
  });

  it('survives 3 000 mutated UPDATEs on live sessions: only header/UPDATE NOTIFICATIONs, never an internal error', async () => {
    let seed = 99;
    const rnd = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 0x100000000;
    };
    const base = update(
      Buffer.concat([GOOD, hex('c0 08 04 fde90007 80 04 04 00000001')]),
      '18 0a0100 10 0a02',
    );
    const codes: number[] = [];
    for (let round = 0; round < 6; round++) {
      const { s, socket, received } = await established(
        `127.0.13.${1 + round * 2}`,
        `127.0.13.${2 + round * 2}`,
      );
      for (let i = 0; i < 500 && !socket.destroyed; i++) {
        const m = Buffer.from(base);
        for (let k = 0; k < 2; k++) m[19 + Math.floor(rnd() * (m.length - 19))] = Math.floor(rnd() * 256);
        socket.write(m);
      }
      await new Promise((r) => setTimeout(r, 100));
      for (const m of received) if (m[18] === 3) codes.push(m[19]!);
      // Still consistent: either Established, or reset after telling the peer why.
      const state = s.peers()[0]!.state;
      expect(state === 'Established' || received.some((m) => m[18] === 3)).toBe(true);
      await s.stop();
    }
    // Mutations do reset sessions, and only ever for message/UPDATE errors, never as Cease
    // (which is what an internal exception would turn into).
    expect(codes.length).toBeGreaterThan(0);
    expect(codes.filter((c) => c !== 1 && c !== 3)).toEqual([]);
  }, 30_000);
});
