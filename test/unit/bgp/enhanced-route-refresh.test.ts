// Route refresh (RFC 2918) and enhanced route refresh (RFC 7313) on a live session with a raw peer:
// BoRR / re-advertisement / EoRR as sender, stale marking and purge at EoRR (or its timer) as
// receiver, and a ROUTE-REFRESH sent when the peer's import policy changes.
import { afterEach, describe, expect, it } from 'vitest';
import { encodePathAttributes } from '../../../bgp/wire/attributes-encode.js';
import { MessageType } from '../../../bgp/wire/constants.js';
import {
  decodeMessage,
  encodeRouteRefresh,
  encodeUpdate,
  type BgpMessage,
} from '../../../bgp/wire/messages.js';
import { waitFor } from '../../support/netns.js';
import { established } from './raw-peer.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const announce = (nlri: string, nextHop: string) =>
  encodeUpdate(
    Buffer.alloc(0),
    encodePathAttributes(
      { origin: 0, asPath: [{ type: 2, asns: [65002] }], nextHop },
      { fourOctetAs: true },
      true,
    ),
    hex(nlri),
  );
const X = '18 0a0100'; // 10.1.0.0/24
const Y = '18 0a0200'; // 10.2.0.0/24

/** What the speaker sent, as [type, subtype | prefixes] for ROUTE-REFRESH / UPDATE messages. */
function sequence(received: Buffer[]): string[] {
  return received
    .map((b) => decodeMessage(b, { fourOctetAs: true }) as BgpMessage)
    .flatMap((m) =>
      m.type === MessageType.ROUTE_REFRESH
        ? [['request', 'BoRR', 'EoRR'][m.subtype] ?? `subtype ${m.subtype}`]
        : m.type === MessageType.UPDATE && m.nlri.length
          ? [`update ${m.nlri.length}`]
          : [],
    );
}

describe('enhanced route refresh (RFC 7313)', () => {
  it('answers a refresh request with BoRR, the re-advertised routes, then EoRR when both sides advertised it', async () => {
    const { s, socket, received } = await established('127.0.20.1', '127.0.20.2', cleanups, {
      enhancedRouteRefresh: true,
    });
    s.originate('10.9.0.0/24');
    await waitFor('initial route', () => sequence(received).includes('update 1'), 5000);
    received.length = 0;
    socket.write(encodeRouteRefresh(1, 1));
    await waitFor('EoRR', () => sequence(received).includes('EoRR'), 5000);
    expect(sequence(received)).toEqual(['BoRR', 'update 1', 'EoRR']);
  });

  it('answers a plain refresh with the routes only when the peer did not advertise RFC 7313', async () => {
    const { s, socket, received } = await established('127.0.21.1', '127.0.21.2', cleanups);
    s.originate('10.9.0.0/24');
    await waitFor('initial route', () => sequence(received).includes('update 1'), 5000);
    received.length = 0;
    socket.write(encodeRouteRefresh(1, 1));
    await waitFor('re-advertisement', () => sequence(received).includes('update 1'), 5000);
    await new Promise((r) => setTimeout(r, 100));
    expect(sequence(received)).toEqual(['update 1']);
  });

  it('purges at EoRR the routes the peer did not re-send after its BoRR, keeps the re-sent ones', async () => {
    const { s, socket } = await established('127.0.22.1', '127.0.22.2', cleanups, {
      enhancedRouteRefresh: true,
    });
    socket.write(announce(`${X} ${Y}`, '127.0.22.2'));
    await waitFor('two routes', () => s.ribSize === 2, 5000);
    socket.write(encodeRouteRefresh(1, 1, 1));
    socket.write(announce(X, '127.0.22.2'));
    await new Promise((r) => setTimeout(r, 100));
    expect(s.ribSize).toBe(2); // nothing goes before EoRR
    socket.write(encodeRouteRefresh(1, 1, 2));
    await waitFor('Y purged', () => s.ribSize === 1, 5000);
    expect(s.rib()[0]?.prefix).toBe('10.1.0.0/24');
    expect(s.peers()[0]).toMatchObject({ state: 'Established', prefixesAccepted: 1 });
  });

  it('purges the unrefreshed routes when the EoRR timer expires without an EoRR', async () => {
    const { s, socket } = await established('127.0.23.1', '127.0.23.2', cleanups, {
      enhancedRouteRefresh: true,
      speaker: { refreshPurgeTime: 0.5 },
    });
    socket.write(announce(`${X} ${Y}`, '127.0.23.2'));
    await waitFor('two routes', () => s.ribSize === 2, 5000);
    socket.write(encodeRouteRefresh(1, 1, 1));
    socket.write(announce(Y, '127.0.23.2'));
    await waitFor('X purged by the timer', () => s.ribSize === 1, 5000);
    expect(s.rib()[0]?.prefix).toBe('10.2.0.0/24');
  });

  it('sends a ROUTE-REFRESH when the import policy changes, and the re-sent routes meet the new policy', async () => {
    const { s, socket, received } = await established('127.0.24.1', '127.0.24.2', cleanups, {
      enhancedRouteRefresh: true,
    });
    socket.write(announce(`${X} ${Y}`, '127.0.24.2'));
    await waitFor('two routes', () => s.ribSize === 2, 5000);
    received.length = 0;
    s.updatePeer({
      address: '127.0.24.2',
      asn: 65002,
      passive: true,
      importPolicy: { rules: [{ match: { prefixes: [{ prefix: '10.1.0.0/24' }] }, action: 'reject' }] },
    });
    await waitFor('ROUTE-REFRESH request', () => sequence(received).includes('request'), 5000);
    expect(s.peers()[0]?.state).toBe('Established');
    socket.write(encodeRouteRefresh(1, 1, 1));
    socket.write(announce(`${X} ${Y}`, '127.0.24.2'));
    socket.write(encodeRouteRefresh(1, 1, 2));
    await waitFor('X rejected by the new policy', () => s.ribSize === 1, 5000);
    expect(s.rib()[0]?.prefix).toBe('10.2.0.0/24');
    expect(s.peers()[0]).toMatchObject({ prefixesReceived: 2, prefixesAccepted: 1 });
  });
});
