// The BFD session state machine (RFC 5880 §6.8) on a fake clock: two sessions joined by a fake
// link, or one session fed hand-made packets.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BfdState, type BfdPacket } from '../../../bgp/bfd/packet.js';
import { resolveBfdOptions, type BfdOptions } from '../../../bgp/bfd/options.js';
import { BfdSession, type BfdStateChange } from '../../../bgp/bfd/session.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

interface Probe {
  session: BfdSession;
  sent: { at: number; p: BfdPacket }[];
  changes: BfdStateChange[];
  /** Where sent packets go (set by link()). */
  deliver?: (p: BfdPacket) => void;
}

function probe(disc: number, o: BfdOptions = {}, random = () => 0.5): Probe {
  const pr: Probe = { sent: [], changes: [] } as unknown as Probe;
  pr.session = new BfdSession(
    disc,
    resolveBfdOptions(o),
    {
      send: (p) => {
        pr.sent.push({ at: Date.now(), p });
        pr.deliver?.(p);
      },
      stateChanged: (c) => pr.changes.push(c),
    },
    { now: () => Date.now(), random },
  );
  return pr;
}

/** Joins a and b with 1 ms latency; returns a switch that cuts the link. */
function link(a: Probe, b: Probe): { cut: () => void } {
  let up = true;
  a.deliver = (p) => void setTimeout(() => up && b.session.receive(p), 1);
  b.deliver = (p) => void setTimeout(() => up && a.session.receive(p), 1);
  return { cut: () => (up = false) };
}

const peerPacket = (o: Partial<BfdPacket> = {}): BfdPacket => ({
  diagnostic: 0,
  state: BfdState.Down,
  poll: false,
  final: false,
  controlPlaneIndependent: false,
  demand: false,
  detectMult: 3,
  myDiscriminator: 99,
  yourDiscriminator: 0,
  desiredMinTxUs: 1_000_000,
  requiredMinRxUs: 1_000_000,
  requiredMinEchoRxUs: 0,
  ...o,
});

/** Brings `s` (disc 1) Up against a hand-driven peer. */
function upAgainstRawPeer(pr: Probe, o: Partial<BfdPacket> = {}): void {
  pr.session.start();
  pr.session.receive(peerPacket({ yourDiscriminator: 1, ...o }));
  pr.session.receive(peerPacket({ state: BfdState.Up, yourDiscriminator: 1, ...o }));
  expect(pr.session.state).toBe('Up');
}

describe('BFD session', () => {
  it('goes Down → Init → Up with a peer, then negotiates intervals through a poll sequence', async () => {
    const a = probe(1, { desiredMinTxMs: 100, requiredMinRxMs: 300, multiplier: 3 });
    const b = probe(2, { desiredMinTxMs: 50, requiredMinRxMs: 200, multiplier: 5 });
    link(a, b);
    a.session.start();
    b.session.start();
    await vi.advanceTimersByTimeAsync(5);
    expect(a.session.state).toBe('Up');
    expect(b.session.state).toBe('Up');
    expect(a.changes.map((c) => c.to)).toEqual(['Init', 'Up']);
    // Until Up, packets advertise 1 s and go out about once a second.
    expect(a.sent[0]!.p.desiredMinTxUs).toBe(1_000_000);
    await vi.advanceTimersByTimeAsync(3000);
    const sa = a.session.status();
    const sb = b.session.status();
    // tx = max(own desired tx, peer's required rx); detection = peer mult × max(own rx, peer tx).
    expect(sa.txIntervalMs).toBe(200);
    expect(sb.txIntervalMs).toBe(300);
    expect(sa.detectionTimeMs).toBe(5 * 300);
    expect(sb.detectionTimeMs).toBe(3 * 200);
    expect(sa.remoteDiscriminator).toBe(2);
    // The poll went out with P, came back with F, and no packet carries both.
    expect(a.sent.some((s) => s.p.poll && s.p.desiredMinTxUs === 100_000)).toBe(true);
    expect(b.sent.some((s) => s.p.final)).toBe(true);
    expect([...a.sent, ...b.sent].some((s) => s.p.poll && s.p.final)).toBe(false);
    // Steady state: no poll bit any more.
    expect(a.sent.at(-1)!.p.poll).toBe(false);
  });

  it('uses a faster tx at once, polls for it, and stops polling on the Final', () => {
    const a = probe(1, { desiredMinTxMs: 50, requiredMinRxMs: 50 });
    upAgainstRawPeer(a);
    const last = a.sent.at(-1)!.p;
    expect(last.poll).toBe(true);
    expect(last.desiredMinTxUs).toBe(50_000);
    expect(a.session.status().txIntervalMs).toBe(1000); // the peer still asks for 1 s
    a.session.receive(peerPacket({ state: BfdState.Up, yourDiscriminator: 1, requiredMinRxUs: 50_000 }));
    expect(a.session.status().txIntervalMs).toBe(50); // faster: no need to wait for the Final
    vi.advanceTimersByTime(200);
    expect(a.sent.at(-1)!.p.poll).toBe(true); // still polling
    a.session.receive(
      peerPacket({ state: BfdState.Up, yourDiscriminator: 1, requiredMinRxUs: 50_000, final: true }),
    );
    a.sent.length = 0;
    vi.advanceTimersByTime(500);
    expect(a.sent.every((s) => !s.p.poll)).toBe(true);
    expect(a.sent.length).toBeGreaterThanOrEqual(9);
  });

  it('answers a Poll at once with a Final, whatever the transmit timer says', () => {
    const a = probe(1);
    upAgainstRawPeer(a);
    a.sent.length = 0;
    a.session.receive(peerPacket({ state: BfdState.Up, yourDiscriminator: 1, poll: true }));
    expect(a.sent).toHaveLength(1);
    expect(a.sent[0]!.p.final).toBe(true);
    expect(a.sent[0]!.p.poll).toBe(false);
  });

  it('starts a new poll when the intervals change while Up; a slower tx and a lower rx wait for the Final', () => {
    const a = probe(1, { desiredMinTxMs: 300, requiredMinRxMs: 300 });
    const fast = { requiredMinRxUs: 10_000, desiredMinTxUs: 10_000 };
    upAgainstRawPeer(a, fast);
    a.session.receive(peerPacket({ state: BfdState.Up, yourDiscriminator: 1, final: true, ...fast }));
    expect(a.session.status()).toMatchObject({ txIntervalMs: 300, detectionTimeMs: 900 });
    a.session.setOptions(resolveBfdOptions({ desiredMinTxMs: 500, requiredMinRxMs: 100 }));
    vi.advanceTimersByTime(300);
    const polled = a.sent.filter((s) => s.p.poll);
    expect(polled.at(-1)!.p).toMatchObject({ desiredMinTxUs: 500_000, requiredMinRxUs: 100_000 });
    a.session.receive(peerPacket({ state: BfdState.Up, yourDiscriminator: 1, ...fast }));
    expect(a.session.status()).toMatchObject({ txIntervalMs: 300, detectionTimeMs: 900 });
    a.session.receive(peerPacket({ state: BfdState.Up, yourDiscriminator: 1, final: true, ...fast }));
    expect(a.session.status()).toMatchObject({ txIntervalMs: 500, detectionTimeMs: 300 });
  });

  it('declares the session Down exactly one detection time after the last packet', async () => {
    const a = probe(1, { desiredMinTxMs: 100, requiredMinRxMs: 100, multiplier: 3 });
    const b = probe(2, { desiredMinTxMs: 100, requiredMinRxMs: 100, multiplier: 3 });
    const l = link(a, b);
    a.session.start();
    b.session.start();
    await vi.advanceTimersByTimeAsync(3000);
    expect(a.session.status().detectionTimeMs).toBe(300);
    l.cut();
    const cutAt = Date.now();
    // The last packet in flight may still arrive 1 ms later; the deadline follows the last one.
    const lastRx = Math.max(...b.sent.map((s) => s.at)) + 1;
    await vi.advanceTimersByTimeAsync(lastRx + 299 - Date.now());
    expect(a.session.state).toBe('Up');
    await vi.advanceTimersByTimeAsync(1);
    expect(a.session.state).toBe('Down');
    expect(a.changes.at(-1)).toMatchObject({
      from: 'Up',
      to: 'Down',
      diagnostic: 'control detection time expired',
    });
    expect(Date.now() - cutAt).toBeLessThanOrEqual(300);
    // Down again: the remote discriminator is forgotten and packets are slow.
    expect(a.session.status().remoteDiscriminator).toBe(0);
    expect(a.sent.at(-1)!.p).toMatchObject({
      state: BfdState.Down,
      diagnostic: 1,
      desiredMinTxUs: 1_000_000,
    });
  });

  it('tells the peer AdminDown; the peer goes Down with "neighbor signaled" and both recover on adminUp', async () => {
    const a = probe(1);
    const b = probe(2);
    link(a, b);
    a.session.start();
    b.session.start();
    await vi.advanceTimersByTimeAsync(10);
    a.session.adminDown();
    await vi.advanceTimersByTimeAsync(5);
    expect(a.session.state).toBe('AdminDown');
    expect(b.session.state).toBe('Down');
    expect(b.changes.at(-1)).toMatchObject({
      from: 'Up',
      to: 'Down',
      diagnostic: 'neighbor signaled session down',
      remoteState: 'AdminDown',
    });
    expect(a.sent.at(-1)!.p.diagnostic).toBe(7);
    // AdminDown ignores what the peer says.
    expect(a.session.receive(peerPacket({ myDiscriminator: 2, yourDiscriminator: 1 }))).toBe(
      'session is AdminDown',
    );
    expect(a.session.state).toBe('AdminDown');
    a.session.adminUp();
    await vi.advanceTimersByTimeAsync(3000);
    expect(a.session.state).toBe('Up');
    expect(b.session.state).toBe('Up');
  });

  it('goes Down when the peer reports Down while we are Up', () => {
    const a = probe(1);
    upAgainstRawPeer(a);
    a.session.receive(peerPacket({ state: BfdState.Down, yourDiscriminator: 1 }));
    expect(a.session.state).toBe('Down');
    expect(a.changes.at(-1)!.diagnostic).toBe('neighbor signaled session down');
  });

  it('never asks for demand mode, and stops periodic packets only while a peer in demand mode is Up with us', () => {
    const a = probe(1, { desiredMinTxMs: 100, requiredMinRxMs: 100 });
    upAgainstRawPeer(a, { demand: true, requiredMinRxUs: 100_000 });
    a.session.receive(
      peerPacket({
        state: BfdState.Up,
        yourDiscriminator: 1,
        final: true,
        demand: true,
        requiredMinRxUs: 100_000,
      }),
    );
    expect(a.sent.every((s) => !s.p.demand)).toBe(true);
    a.sent.length = 0;
    vi.advanceTimersByTime(1000);
    expect(a.sent).toHaveLength(0);
    expect(a.session.status().remoteDemand).toBe(true);
    // A poll is still answered.
    a.session.receive(peerPacket({ state: BfdState.Up, yourDiscriminator: 1, poll: true, demand: true }));
    expect(a.sent.map((s) => s.p.final)).toEqual([true]);
    // The peer leaves demand mode: periodic packets resume.
    a.session.receive(peerPacket({ state: BfdState.Up, yourDiscriminator: 1, requiredMinRxUs: 100_000 }));
    vi.advanceTimersByTime(1000);
    expect(a.sent.length).toBeGreaterThan(5);
  });

  it('sends nothing periodic to a peer whose required min rx is zero', () => {
    const a = probe(1);
    a.session.start();
    a.session.receive(peerPacket({ requiredMinRxUs: 0 }));
    a.sent.length = 0;
    vi.advanceTimersByTime(2900); // within the detection time (3 × 1 s)
    expect(a.sent).toHaveLength(0);
  });

  it('refuses authenticated packets (no authentication configured)', () => {
    const a = probe(1);
    a.session.start();
    const r = a.session.receive(peerPacket({ authentication: { type: 1, data: Buffer.from([1, 4, 0, 0]) } }));
    expect(r).toMatch(/authentication/);
    expect(a.session.state).toBe('Down');
  });

  it('jitters transmission to 75–100 % of the interval, 75–90 % with a multiplier of 1', () => {
    const gaps = (mult: number, r: number) => {
      const a = probe(1, { multiplier: mult }, () => r);
      a.session.start();
      vi.advanceTimersByTime(10_000);
      a.session.stop();
      return a.sent.slice(1).map((s, i) => s.at - a.sent[i]!.at);
    };
    // The fake clock fires timers on whole milliseconds.
    const range = (g: number[]) => [Math.min(...g), Math.max(...g)];
    expect(range(gaps(3, 0))).toEqual([750, 750]);
    expect(range(gaps(3, 0.999999))[0]).toBeGreaterThanOrEqual(999);
    expect(range(gaps(3, 0.999999))[1]).toBeLessThanOrEqual(1000);
    expect(range(gaps(1, 0.999999))[1]).toBeLessThanOrEqual(900);
    expect(range(gaps(1, 0.999999))[0]).toBeGreaterThanOrEqual(899);
    expect(range(gaps(1, 0))).toEqual([750, 750]);
  });
});
