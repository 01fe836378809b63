// Graceful restart (RFC 4724 + RFC 8538) over loopback with a raw peer built from tern's codec:
// receiving speaker (stale routes kept as best, swept after End-of-RIB or restart timer, N-bit
// NOTIFICATION handling) and restarting speaker (capability, R/F bits, selection deferral).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BgpSpeaker, type BestPathChange } from '../../../bgp/index.js';
import type { GracefulRestartOptions } from '../../../bgp/graceful-restart.js';
import { encodePathAttributes } from '../../../bgp/wire/attributes-encode.js';
import { MessageType } from '../../../bgp/wire/constants.js';
import {
  type GracefulRestartCapability,
  KEEPALIVE,
  MessageFramer,
  decodeMessage,
  encodeEndOfRib,
  encodeNotification,
  encodeOpen,
  encodeUpdate,
} from '../../../bgp/wire/messages.js';
import { waitFor } from '../../support/netns.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ATTRS = encodePathAttributes(
  { origin: 0, asPath: [{ type: 2, asns: [65002] }], nextHop: '127.0.20.2' },
  { fourOctetAs: true },
  true,
);
/** 10.1.0.0/24 and 10.2.0.0/24. */
const TWO = '18 0a0100 18 0a0200';
const announce = (nlri: string) => encodeUpdate(Buffer.alloc(0), ATTRS, hex(nlri));
const IPV4_EOR = encodeEndOfRib({ afi: 1, safi: 1 });

const peerGr = (o: Partial<GracefulRestartCapability> = {}): GracefulRestartCapability => ({
  restartState: false,
  notification: false,
  restartTime: 120,
  families: [{ afi: 1, safi: 1, forwardingState: true }],
  ...o,
});

async function speaker(host: string, gracefulRestart: GracefulRestartOptions, peerHost: string) {
  const s = new BgpSpeaker({ asn: 65001, routerId: '10.0.0.1', listen: { host, port: 0 }, gracefulRestart });
  cleanups.push(() => s.stop());
  const events: BestPathChange[] = [];
  s.on('bestPathChanged', (e) => events.push(e));
  s.addPeer({ address: peerHost, asn: 65002, passive: true });
  return { s, events };
}

/** A raw peer that brings the session up with the given GR capability (or none). */
async function connect(s: BgpSpeaker, host: string, peerHost: string, gr?: GracefulRestartCapability) {
  const socket = net.connect({ host, port: s.listenPort!, localAddress: peerHost });
  cleanups.push(() => void socket.destroy());
  const received: Buffer[] = [];
  const framer = new MessageFramer();
  socket.on('data', (c: Buffer) => framer.push(c, (m) => received.push(Buffer.from(m))));
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  socket.write(
    encodeOpen({
      asn: 65002,
      holdTime: 90,
      routerId: '10.0.0.2',
      families: [{ afi: 1, safi: 1 }],
      ...(gr ? { gracefulRestart: gr } : {}),
    }),
  );
  socket.write(KEEPALIVE);
  await waitFor('established', () => s.peers()[0]?.state === 'Established', 5000);
  return { socket, received };
}

const notEstablished = (s: BgpSpeaker) => () => s.peers()[0]?.state !== 'Established';
const withdrawals = (events: BestPathChange[]) => events.filter((e) => !e.best).map((e) => e.prefix);
const prefixes = (s: BgpSpeaker) =>
  s
    .rib()
    .map((e) => e.prefix)
    .sort();

describe('graceful restart, receiving speaker', () => {
  it('keeps a restarting peer’s routes as best through a TCP drop, then sweeps what it did not re-announce after End-of-RIB', async () => {
    const [h, p] = ['127.0.20.1', '127.0.20.2'];
    const { s, events } = await speaker(h, { restarting: false }, p);
    await s.start();
    const first = await connect(s, h, p, peerGr());
    first.socket.write(announce(TWO));
    await waitFor('routes learned', () => s.ribSize === 2, 5000);
    first.socket.destroy();
    await waitFor('session down', notEstablished(s), 5000);
    expect(prefixes(s)).toEqual(['10.1.0.0/24', '10.2.0.0/24']);
    expect(s.peers()[0]).toMatchObject({ prefixesStale: 2, prefixesAccepted: 2 });
    expect(withdrawals(events)).toEqual([]);

    const second = await connect(s, h, p, peerGr({ restartState: true }));
    second.socket.write(announce('18 0a0100'));
    second.socket.write(IPV4_EOR);
    await waitFor('sweep after End-of-RIB', () => s.ribSize === 1, 5000);
    expect(prefixes(s)).toEqual(['10.1.0.0/24']);
    expect(withdrawals(events)).toEqual(['10.2.0.0/24']);
    expect(s.peers()[0]).toMatchObject({ prefixesAccepted: 1, state: 'Established' });
    expect(s.peers()[0]?.prefixesStale).toBeUndefined();
  });

  it('withdraws the stale routes when the peer’s restart time passes without it coming back', async () => {
    const [h, p] = ['127.0.21.1', '127.0.21.2'];
    const { s, events } = await speaker(h, { restarting: false }, p);
    await s.start();
    const c = await connect(s, h, p, peerGr({ restartTime: 1 }));
    c.socket.write(announce(TWO));
    await waitFor('routes learned', () => s.ribSize === 2, 5000);
    c.socket.destroy();
    await waitFor('session down', notEstablished(s), 5000);
    expect(s.ribSize).toBe(2);
    await waitFor('restart timer sweep', () => s.ribSize === 0, 5000);
    expect(withdrawals(events).sort()).toEqual(['10.1.0.0/24', '10.2.0.0/24']);
  });

  it('with the N bit on both sides keeps routes through a Cease NOTIFICATION, but not through a Hard Reset', async () => {
    const [h, p] = ['127.0.22.1', '127.0.22.2'];
    const { s } = await speaker(h, { restarting: false }, p);
    await s.start();
    const first = await connect(s, h, p, peerGr({ notification: true }));
    first.socket.write(announce(TWO));
    await waitFor('routes learned', () => s.ribSize === 2, 5000);
    first.socket.write(encodeNotification(6, 2)); // Cease / Administrative Shutdown
    await waitFor('session down', notEstablished(s), 5000);
    expect(s.peers()[0]?.prefixesStale).toBe(2);
    expect(s.ribSize).toBe(2);
    first.socket.destroy();

    const second = await connect(s, h, p, peerGr({ notification: true }));
    second.socket.write(announce(TWO));
    await waitFor('stale routes refreshed', () => s.peers()[0]?.prefixesStale === undefined, 5000);
    second.socket.write(encodeNotification(6, 9)); // Cease / Hard Reset
    await waitFor('routes dropped', () => s.ribSize === 0, 5000);
  });

  it('without the N bit a NOTIFICATION drops the routes at once, and so does any drop of a peer without the capability', async () => {
    const [h, p] = ['127.0.23.1', '127.0.23.2'];
    const { s } = await speaker(h, { restarting: false }, p);
    await s.start();
    const first = await connect(s, h, p, peerGr({ notification: false }));
    first.socket.write(announce(TWO));
    await waitFor('routes learned', () => s.ribSize === 2, 5000);
    first.socket.write(encodeNotification(6, 2));
    await waitFor('routes dropped after NOTIFICATION', () => s.ribSize === 0, 5000);
    first.socket.destroy();

    const second = await connect(s, h, p);
    second.socket.write(announce(TWO));
    await waitFor('routes learned', () => s.ribSize === 2, 5000);
    second.socket.destroy();
    await waitFor('routes dropped after TCP drop', () => s.ribSize === 0, 5000);
  });

  it('drops stale routes at once when the peer comes back without the forwarding-state bit', async () => {
    const [h, p] = ['127.0.24.1', '127.0.24.2'];
    const { s } = await speaker(h, { restarting: false }, p);
    await s.start();
    const first = await connect(s, h, p, peerGr());
    first.socket.write(announce(TWO));
    await waitFor('routes learned', () => s.ribSize === 2, 5000);
    first.socket.destroy();
    await waitFor('session down', notEstablished(s), 5000);
    expect(s.ribSize).toBe(2);
    await connect(s, h, p, peerGr({ families: [{ afi: 1, safi: 1, forwardingState: false }] }));
    await waitFor('stale routes dropped', () => s.ribSize === 0, 5000);
  });
});

describe('graceful restart, restarting speaker', () => {
  const updates = (received: Buffer[]) => received.filter((m) => m[18] === MessageType.UPDATE);

  it('advertises restart time, R and F bits, holds its table back until the peer’s End-of-RIB, then sends it and End-of-RIB', async () => {
    const [h, p] = ['127.0.25.1', '127.0.25.2'];
    const { s } = await speaker(h, { restartTime: 77 }, p);
    s.originate('10.9.0.0/24');
    await s.start();
    const deferralEnded = new Promise<void>((r) => s.once('deferralEnded', r));
    const { socket, received } = await connect(s, h, p, peerGr());
    const open = decodeMessage(
      received.find((m) => m[18] === MessageType.OPEN)!,
      { fourOctetAs: false },
    );
    if (open.type !== MessageType.OPEN) throw new Error('first message is not an OPEN');
    expect(open.capabilities.gracefulRestart).toEqual({
      restartState: true,
      notification: true,
      restartTime: 77,
      families: [
        { afi: 1, safi: 1, forwardingState: true },
        { afi: 2, safi: 1, forwardingState: true },
      ],
    });
    expect(s.deferringSelection).toBe(true);
    expect(updates(received)).toEqual([]);

    socket.write(IPV4_EOR);
    await deferralEnded;
    await waitFor('table and End-of-RIB sent', () => updates(received).length === 2, 5000);
    const [table, eor] = updates(received).map((m) => decodeMessage(m, { fourOctetAs: true }));
    expect(table?.type === MessageType.UPDATE && table.nlri.length).toBe(1);
    expect(eor?.type === MessageType.UPDATE && eor.endOfRib).toEqual({ afi: 1, safi: 1 });
    expect(s.deferringSelection).toBe(false);
  });

  it('sends its table when the selection deferral timer passes without End-of-RIB, and no longer sets the R bit', async () => {
    const [h, p] = ['127.0.26.1', '127.0.26.2'];
    const { s } = await speaker(h, { selectionDeferralTime: 0.3 }, p);
    s.originate('10.9.0.0/24');
    await s.start();
    const first = await connect(s, h, p, peerGr());
    await waitFor('table sent after the timer', () => s.peers()[0]?.prefixesAdvertised === 1, 5000);
    expect(s.deferringSelection).toBe(false);
    first.socket.destroy();
    await waitFor('session down', notEstablished(s), 5000);
    const { received } = await connect(s, h, p, peerGr());
    const open = decodeMessage(
      received.find((m) => m[18] === MessageType.OPEN)!,
      { fourOctetAs: false },
    );
    expect(open.type === MessageType.OPEN && open.capabilities.gracefulRestart?.restartState).toBe(false);
  });
});
