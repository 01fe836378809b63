// BFD over loopback UDP: the manager's demultiplexing and discard rules (RFC 5880 §6.8.6), and
// the speaker's tie-in: BFD Up → Down takes the BGP session down at once with Cease/BFD Down and
// holds it down until BFD is Up again. The far BFD end is a BfdSession driven by the test over
// its own UDP socket, so it can fall silent the way a cut link does.
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { BfdManager } from '../../../bgp/bfd/manager.js';
import { resolveBfdOptions } from '../../../bgp/bfd/options.js';
import { BfdState, decodeBfdPacket, encodeBfdPacket, type BfdPacket } from '../../../bgp/bfd/packet.js';
import { BfdSession } from '../../../bgp/bfd/session.js';
import { BgpSpeaker } from '../../../bgp/speaker.js';
import { waitFor } from '../../support/netns.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const HERE = '127.0.41.1';
const THERE = '127.0.41.2';
const PORT = 40_000 + Math.floor(Math.random() * 9000);

/** A BFD end at THERE:PORT: a real session state machine on a plain UDP socket. */
async function farEnd(discriminator = 7) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(PORT, THERE, () => r()));
  const received: BfdPacket[] = [];
  const send = (b: Buffer) => socket.send(b, PORT, HERE);
  const end = {
    received,
    send,
    session: undefined as BfdSession | undefined,
    start() {
      end.session = new BfdSession(
        discriminator,
        resolveBfdOptions({ desiredMinTxMs: 50, requiredMinRxMs: 50 }),
        {
          send: (p) => send(encodeBfdPacket(p)),
          stateChanged: () => undefined,
        },
      );
      end.session.start();
    },
    /** Falls silent, as behind a cut link. */
    silence() {
      end.session?.stop();
      end.session = undefined;
    },
  };
  socket.on('message', (m) => {
    const p = decodeBfdPacket(m);
    received.push(p);
    end.session?.receive(p);
  });
  cleanups.push(() => {
    end.silence();
    return new Promise<void>((r) => socket.close(() => r()));
  });
  return end;
}

type PeerView = ReturnType<BgpSpeaker['peers']>[number];

/** Starts speaker `a` and the far BFD end, then waits until `a`'s one peer is Established and `ready`. */
async function startAgainstFarEnd(a: BgpSpeaker, ready: (peer: PeerView) => boolean) {
  await a.start();
  const far = await farEnd();
  far.start();
  const peerA = () => a.peers()[0]!;
  await waitFor(
    'BGP Established and BFD ready',
    async () => peerA().state === 'Established' && ready(peerA()),
    15_000,
    20,
  );
  return { far, peerA };
}

describe('BFD manager over UDP', () => {
  it('comes Up with a peer and discards what RFC 5880 §6.8.6 says to discard, counting reasons', async () => {
    const m = new BfdManager({ port: PORT });
    cleanups.push(() => m.close());
    m.add(THERE, { localAddress: HERE, desiredMinTxMs: 50, requiredMinRxMs: 50, multiplier: 3 });
    const far = await farEnd();
    far.start();
    await waitFor('BFD Up', async () => m.status(THERE)?.state === 'Up', 10_000, 20);
    const s = m.status(THERE)!;
    expect(s).toMatchObject({ localAddress: HERE, remoteDiscriminator: 7, remoteState: 'Up' });
    const packet = (o: Partial<BfdPacket>): Buffer =>
      encodeBfdPacket({
        diagnostic: 0,
        state: BfdState.Up,
        poll: false,
        final: false,
        controlPlaneIndependent: false,
        demand: false,
        detectMult: 3,
        myDiscriminator: 7,
        yourDiscriminator: s.localDiscriminator,
        desiredMinTxUs: 50_000,
        requiredMinRxUs: 50_000,
        requiredMinEchoRxUs: 0,
        ...o,
      });
    const bad = Buffer.from(packet({}));
    bad[0] = 0x40; // version 2
    far.send(bad);
    far.send(packet({ yourDiscriminator: (s.localDiscriminator ^ 1) >>> 0 }));
    far.send(packet({ yourDiscriminator: 0 })); // zero Your Discriminator while Up
    far.send(packet({ authentication: { type: 1, data: Buffer.from([1, 4, 0, 0]) } }));
    await waitFor('discards counted', async () => m.discarded.size >= 4, 5000, 20);
    expect(Object.fromEntries(m.discarded)).toEqual({
      'malformed version': 1,
      'unknown Your Discriminator': 1,
      'Your Discriminator zero outside Down/AdminDown': 1,
      'authentication is not configured on this session': 1,
    });
    expect(m.status(THERE)?.state).toBe('Up');
  });

  it('sends from a source port in 49152–65535 and tells the peer AdminDown when a session is removed', async () => {
    const m = new BfdManager({ port: PORT });
    cleanups.push(() => m.close());
    const socket = dgram.createSocket('udp4');
    const ports = new Set<number>();
    const states: number[] = [];
    socket.on('message', (msg, rinfo) => {
      ports.add(rinfo.port);
      states.push(decodeBfdPacket(msg).state);
    });
    await new Promise<void>((r) => socket.bind(PORT, THERE, () => r()));
    cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
    m.add(THERE, { localAddress: HERE });
    await waitFor('a packet', async () => states.length > 0, 5000, 20);
    m.remove(THERE);
    await waitFor('AdminDown', async () => states.at(-1) === BfdState.AdminDown, 5000, 20);
    expect(ports.size).toBe(1);
    const [port] = ports;
    expect(port).toBeGreaterThanOrEqual(49152);
    expect(port).toBeLessThanOrEqual(65535);
  });
});

describe('BGP speaker with BFD', () => {
  it('takes the BGP session down with Cease/BFD Down when BFD fails, and holds it until BFD is Up again', async () => {
    const b = new BgpSpeaker({ asn: 65002, routerId: '10.0.0.2', listen: { host: THERE, port: 0 } });
    cleanups.push(() => b.stop());
    await b.start();
    const a = new BgpSpeaker({ asn: 65001, routerId: '10.0.0.1', listen: false, bfd: { port: PORT } });
    cleanups.push(() => a.stop());
    b.addPeer({ address: HERE, asn: 65001, passive: true, holdTime: 90 });
    a.addPeer({
      address: THERE,
      asn: 65002,
      localAddress: HERE,
      port: b.listenPort!,
      connectRetryTime: 1,
      holdTime: 90,
      bfd: { desiredMinTxMs: 50, requiredMinRxMs: 50, multiplier: 3 },
    });
    const { far, peerA } = await startAgainstFarEnd(a, (p) => p.bfd?.state === 'Up');
    // The poll sequence after Up brings both ends to the fast intervals.
    await waitFor('fast timers', async () => peerA().bfd?.txIntervalMs === 50, 5000, 20);
    expect(peerA().bfd).toMatchObject({ detectionTimeMs: 150, multiplier: 3, remoteMultiplier: 3 });

    far.silence();
    await waitFor('BGP down', async () => peerA().state !== 'Established', 5000, 10);
    expect(peerA().bfd?.state).toBe('Down');
    expect(peerA().lastError).toBe('BFD down (control detection time expired)');
    await waitFor('B saw the NOTIFICATION', async () => b.peers()[0]!.state !== 'Established', 5000, 10);
    expect(b.peers()[0]!.lastError).toMatch(/NOTIFICATION received: code 6 subcode 10/);

    // Held: with a 1 s connect retry, nothing reconnects while BFD stays down.
    await new Promise((r) => setTimeout(r, 2500));
    expect(peerA().state).toBe('Idle');

    far.start();
    await waitFor('BGP back once BFD is Up', async () => peerA().state === 'Established', 15_000, 20);
    expect(peerA().bfd?.state).toBe('Up');
  }, 40_000);

  it('applies new BFD intervals in place (poll sequence) without resetting the BGP session', async () => {
    const b = new BgpSpeaker({ asn: 65002, routerId: '10.0.0.2', listen: { host: THERE, port: 0 } });
    cleanups.push(() => b.stop());
    await b.start();
    const a = new BgpSpeaker({ asn: 65001, routerId: '10.0.0.1', listen: false, bfd: { port: PORT } });
    cleanups.push(() => a.stop());
    b.addPeer({ address: HERE, asn: 65001, passive: true });
    const options = { address: THERE, asn: 65002, localAddress: HERE, port: b.listenPort! };
    a.addPeer({ ...options, bfd: { desiredMinTxMs: 50, requiredMinRxMs: 50 } });
    const { far, peerA } = await startAgainstFarEnd(a, (p) => p.bfd?.txIntervalMs === 50);
    const since = peerA().since;
    const discriminator = peerA().bfd!.localDiscriminator;
    a.updatePeer({ ...options, bfd: { desiredMinTxMs: 200, requiredMinRxMs: 200, multiplier: 5 } });
    await waitFor('new intervals in force', async () => peerA().bfd?.txIntervalMs === 200, 5000, 20);
    expect(far.session!.status()).toMatchObject({ state: 'Up', detectionTimeMs: 1000, remoteMultiplier: 5 });
    expect(peerA()).toMatchObject({ state: 'Established', since });
    expect(peerA().bfd).toMatchObject({ state: 'Up', localDiscriminator: discriminator });
  }, 30_000);

  it('stop() tells the peer AdminDown and a later start() brings BFD back', async () => {
    const a = new BgpSpeaker({ asn: 65001, routerId: '10.0.0.1', listen: false, bfd: { port: PORT } });
    cleanups.push(() => a.stop());
    a.addPeer({ address: THERE, asn: 65002, localAddress: HERE, passive: true, bfd: { desiredMinTxMs: 50 } });
    await a.start();
    const far = await farEnd();
    far.start();
    await waitFor('BFD Up', async () => a.peers()[0]!.bfd?.state === 'Up', 15_000, 20);
    await a.stop();
    await waitFor(
      'AdminDown at the far end',
      async () => far.received.at(-1)!.state === BfdState.AdminDown,
      2000,
      10,
    );
    expect(a.peers()[0]!.bfd).toBeUndefined();
    await a.start();
    await waitFor('BFD Up after restart', async () => a.peers()[0]!.bfd?.state === 'Up', 15_000, 20);
  }, 30_000);

  it('keeps the BGP session when the peer takes BFD down administratively (RFC 5882 §3.2)', async () => {
    const b = new BgpSpeaker({ asn: 65002, routerId: '10.0.0.2', listen: { host: THERE, port: 0 } });
    cleanups.push(() => b.stop());
    await b.start();
    const a = new BgpSpeaker({ asn: 65001, routerId: '10.0.0.1', listen: false, bfd: { port: PORT } });
    cleanups.push(() => a.stop());
    b.addPeer({ address: HERE, asn: 65001, passive: true });
    a.addPeer({
      address: THERE,
      asn: 65002,
      localAddress: HERE,
      port: b.listenPort!,
      bfd: { desiredMinTxMs: 50, requiredMinRxMs: 50 },
    });
    const { far, peerA } = await startAgainstFarEnd(a, (p) => p.bfd?.state === 'Up');
    far.session!.adminDown();
    await waitFor('BFD Down', async () => peerA().bfd?.state === 'Down', 5000, 10);
    expect(peerA().bfd).toMatchObject({
      remoteState: 'AdminDown',
      diagnostic: 'neighbor signaled session down',
    });
    expect(peerA().state).toBe('Established');
  }, 30_000);
});
