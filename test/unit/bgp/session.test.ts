// Session FSM behaviour over loopback: unconfigured sources, collisions, hold time 0,
// OPEN errors and hold-timer expiry.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BgpSpeaker } from '../../../bgp/speaker.js';
import { KEEPALIVE, MessageFramer, encodeOpen } from '../../../bgp/wire/messages.js';
import { waitFor } from '../../support/netns.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function speaker(asn: number, routerId: string, host: string): Promise<BgpSpeaker> {
  const s = new BgpSpeaker({ asn, routerId, listen: { host, port: 0 } });
  cleanups.push(() => s.stop());
  await s.start();
  return s;
}

function rawClient(
  host: string,
  port: number,
  localAddress: string,
): Promise<{ socket: net.Socket; received: number[] }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress });
    cleanups.push(() => void socket.destroy());
    const received: number[] = [];
    const framer = new MessageFramer();
    socket.on('data', (c: Buffer) => framer.push(c, (m) => received.push(m[18]!)));
    socket.once('connect', () => resolve({ socket, received }));
    socket.once('error', reject);
  });
}

describe('Session', () => {
  it('closes a connection from an unconfigured address at once, without sending anything', async () => {
    const s = await speaker(65001, '10.0.0.1', '127.0.5.1');
    s.addPeer({ address: '127.0.5.2', asn: 65002, passive: true });
    const { socket, received } = await rawClient('127.0.5.1', s.listenPort!, '127.0.5.9');
    await new Promise((r) => socket.once('close', r));
    expect(received).toEqual([]);
    expect(s.peers()[0]?.state).toBe('Active');
  });

  it('resolves a connection collision (both sides active) to one Established session each', async () => {
    const a = await speaker(65001, '10.0.0.1', '127.0.6.1');
    const b = await speaker(65002, '10.0.0.2', '127.0.6.2');
    // Both connect actively (the peer port is the other's listener) at the same time.
    a.addPeer({
      address: '127.0.6.2',
      asn: 65002,
      localAddress: '127.0.6.1',
      port: b.listenPort!,
      connectRetryTime: 1,
    });
    b.addPeer({
      address: '127.0.6.1',
      asn: 65001,
      localAddress: '127.0.6.2',
      port: a.listenPort!,
      connectRetryTime: 1,
    });
    a.originate('10.1.0.0/24');
    await waitFor(
      'both established',
      () => a.peers()[0]?.state === 'Established' && b.peers()[0]?.state === 'Established',
      10_000,
    );
    await waitFor('route across', () => b.ribSize === 1, 5000);
    const since = a.peers()[0]!.since;
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.peers()[0]).toMatchObject({ state: 'Established', since });
    expect(b.peers()[0]?.state).toBe('Established');
  });

  it('accepts hold time 0 (no keepalives, no hold timer)', async () => {
    const a = await speaker(65001, '10.0.0.1', '127.0.7.1');
    const b = await speaker(65001, '10.0.0.2', '127.0.7.2');
    a.addPeer({
      address: '127.0.7.2',
      asn: 65001,
      localAddress: '127.0.7.1',
      port: b.listenPort!,
      holdTime: 0,
    });
    b.addPeer({ address: '127.0.7.1', asn: 65001, passive: true, holdTime: 0 });
    await waitFor('established', () => a.peers()[0]?.state === 'Established', 10_000);
    expect(a.peers()[0]?.holdTime).toBe(0);
    expect(b.peers()[0]).toMatchObject({ holdTime: 0, type: 'ibgp' });
  });

  it('refuses a peer whose OPEN carries another AS with NOTIFICATION 2/2 (Bad Peer AS)', async () => {
    const a = await speaker(65001, '10.0.0.1', '127.0.8.1');
    const b = await speaker(65002, '10.0.0.2', '127.0.8.2');
    a.addPeer({
      address: '127.0.8.2',
      asn: 65099,
      localAddress: '127.0.8.1',
      port: b.listenPort!,
      connectRetryTime: 5,
    });
    b.addPeer({ address: '127.0.8.1', asn: 65001, passive: true });
    await waitFor(
      'b saw the NOTIFICATION',
      () => b.peers()[0]?.lastError?.includes('code 2 subcode 2'),
      10_000,
    );
    expect(a.peers()[0]?.lastError).toMatch(/peer AS 65002, expected 65099/);
    expect(a.peers()[0]?.state).not.toBe('Established');
  });

  it('sends NOTIFICATION 4/0 and drops the session when the peer falls silent past the hold time', async () => {
    const s = await speaker(65001, '10.0.0.1', '127.0.9.1');
    s.addPeer({ address: '127.0.9.2', asn: 65002, passive: true, holdTime: 3 });
    const { socket, received } = await rawClient('127.0.9.1', s.listenPort!, '127.0.9.2');
    socket.write(
      encodeOpen({ asn: 65002, holdTime: 3, routerId: '10.0.0.2', families: [{ afi: 1, safi: 1 }] }),
    );
    await waitFor('OPEN + KEEPALIVE from tern', () => received.includes(1) && received.includes(4), 5000);
    socket.write(KEEPALIVE);
    await waitFor('established', () => s.peers()[0]?.state === 'Established', 5000);
    // Now stay silent.
    await waitFor('hold timer expiry', () => s.peers()[0]?.lastError === 'hold timer expired', 8000);
    await waitFor('NOTIFICATION received', () => received.includes(3), 2000);
    expect(s.peers()[0]?.state).not.toBe('Established');
  });
});
