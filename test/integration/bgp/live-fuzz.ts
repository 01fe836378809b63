// RFC 7606 fuzz harness against a live tern session over loopback. Mutated UPDATEs (1–3 random body
// bytes of a few well-formed bases) are classified by tern's codec, then sent to a live BgpSpeaker:
// every mutant the codec keeps the session for is streamed on one session, which must stay
// Established with no NOTIFICATION; a sample of the session-reset mutants is sent one per session
// and must draw the NOTIFICATION code/subcode the codec predicts. Crashes, unhandled rejections and
// internal-error Ceases are counted separately (all must be 0).
import net from 'node:net';
import { BgpSpeaker } from '../../../bgp/speaker.js';
import { encodePathAttributes } from '../../../bgp/wire/attributes-encode.js';
import { BgpError } from '../../../bgp/wire/errors.js';
import {
  KEEPALIVE,
  MessageFramer,
  decodeMessage,
  encodeOpen,
  encodeUpdate,
} from '../../../bgp/wire/messages.js';
import { waitFor } from '../../support/netns.js';

export interface FuzzReport {
  sent: number;
  /** Decoded with no error. */
  valid: number;
  treatAsWithdraw: number;
  attributeDiscard: number;
  /** Codec verdict session-reset, by "code/subcode". */
  reset: Record<string, number>;
  /** Reset mutants sent live, each on its own session, and how many drew the predicted NOTIFICATION. */
  resetChecked: number;
  resetMatched: number;
  /** Non-reset mutants that nevertheless reset the live session (must be 0). */
  unexpectedResets: number;
  /** Cease NOTIFICATIONs (tern's answer to an internal exception) + process-level errors (must be 0). */
  internalErrors: number;
  seconds: number;
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const CTX = { fourOctetAs: true };

function bases(): Buffer[] {
  const attrs = (extra: string) =>
    Buffer.concat([
      encodePathAttributes(
        { origin: 0, asPath: [{ type: 2, asns: [65002, 65010] }], nextHop: '127.0.30.2', med: 5 },
        CTX,
        true,
      ),
      hex(extra),
    ]);
  return [
    // communities + AGGREGATOR + ATOMIC_AGGREGATE
    encodeUpdate(
      Buffer.alloc(0),
      attrs('c0 08 08 fde90007 fde90008 c0 07 08 0000fdea 0a000001 40 06 00'),
      hex('18 0a0100 10 0a02'),
    ),
    // large communities, withdrawn routes
    encodeUpdate(hex('18 0a0300'), attrs('c0 20 0c 0000fde9 00000001 00000002'), hex('18 0a0400')),
    // MP_REACH IPv6 with one prefix
    encodeUpdate(
      Buffer.alloc(0),
      attrs('80 0e 1a 0002 01 10 fd000000000000000000000000000002 00 30 fd0000010000'),
      Buffer.alloc(0),
    ),
  ];
}

/** xorshift32: reproducible runs from a seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

interface Live {
  socket: net.Socket;
  notifications: Buffer[];
  close(): void;
}

async function session(s: BgpSpeaker, host: string, peerHost: string): Promise<Live> {
  const socket = net.connect({ host, port: s.listenPort!, localAddress: peerHost });
  const notifications: Buffer[] = [];
  const framer = new MessageFramer();
  socket.on('data', (c: Buffer) =>
    framer.push(c, (m) => {
      if (m[18] === 3) notifications.push(Buffer.from(m));
    }),
  );
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  socket.write(
    encodeOpen({
      asn: 65002,
      holdTime: 0,
      routerId: '10.0.0.2',
      families: [
        { afi: 1, safi: 1 },
        { afi: 2, safi: 1 },
      ],
    }),
  );
  socket.write(KEEPALIVE);
  await waitFor('fuzz session established', () => s.peers()[0]?.state === 'Established', 10_000, 5);
  return { socket, notifications, close: () => socket.destroy() };
}

async function down(s: BgpSpeaker): Promise<void> {
  await waitFor('fuzz session down', () => s.peers()[0]?.state !== 'Established', 10_000, 5);
}

export async function runLiveFuzz(opts: {
  count: number;
  seed?: number;
  /** One reset mutant in this many is checked live (default 1000, at most `maxResetChecks`). */
  resetSample?: number;
  maxResetChecks?: number;
  host?: string;
  peerHost?: string;
  /** Called every million mutants with the counts so far. */
  onProgress?: (r: FuzzReport) => void;
}): Promise<FuzzReport> {
  const host = opts.host ?? '127.0.30.1';
  const peerHost = opts.peerHost ?? '127.0.30.2';
  const resetSample = opts.resetSample ?? 1000;
  const maxResetChecks = opts.maxResetChecks ?? 300;
  const rnd = rng(opts.seed ?? 7606);
  const report: FuzzReport = {
    sent: 0,
    valid: 0,
    treatAsWithdraw: 0,
    attributeDiscard: 0,
    reset: {},
    resetChecked: 0,
    resetMatched: 0,
    unexpectedResets: 0,
    internalErrors: 0,
    seconds: 0,
  };
  const onProcessError = () => report.internalErrors++;
  process.on('unhandledRejection', onProcessError);
  process.on('uncaughtException', onProcessError);
  const started = Date.now();
  const s = new BgpSpeaker({ asn: 65001, routerId: '10.0.0.1', listen: { host, port: 0 } });
  await s.start();
  s.addPeer({ address: peerHost, asn: 65002, passive: true, holdTime: 0 });
  const templates = bases();
  let live = await session(s, host, peerHost);
  const countNotifications = () => {
    for (const n of live.notifications) if (n[19] === 6) report.internalErrors++;
  };
  try {
    const batch: Buffer[] = [];
    const flush = async () => {
      if (!batch.length) return;
      if (!live.socket.write(Buffer.concat(batch.splice(0)))) {
        await new Promise((r) => live.socket.once('drain', r));
      }
      if (live.notifications.length) {
        // A mutant the codec accepts reset the live session: count it and start again.
        report.unexpectedResets++;
        countNotifications();
        live.close();
        await down(s);
        live = await session(s, host, peerHost);
      }
    };
    for (let i = 0; i < opts.count; i++) {
      const m = Buffer.from(templates[i % templates.length]!);
      const flips = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < flips; k++) m[19 + Math.floor(rnd() * (m.length - 19))] = Math.floor(rnd() * 256);
      report.sent++;
      if (report.sent % 1_000_000 === 0)
        opts.onProgress?.({ ...report, seconds: (Date.now() - started) / 1000 });
      let verdict: BgpError | undefined;
      try {
        const u = decodeMessage(m, CTX);
        if (u.type === 2 && u.treatAsWithdraw) report.treatAsWithdraw++;
        else if (u.type === 2 && u.errors.length) report.attributeDiscard++;
        else report.valid++;
      } catch (err) {
        if (!(err instanceof BgpError)) throw err;
        verdict = err;
      }
      if (!verdict) {
        batch.push(m);
        if (batch.length >= 2000) await flush();
        continue;
      }
      const key = `${verdict.errorCode}/${verdict.errorSubcode}`;
      report.reset[key] = (report.reset[key] ?? 0) + 1;
      if ((report.reset[key] - 1) % resetSample !== 0 || report.resetChecked >= maxResetChecks) continue;
      // Check this one live, on a fresh session.
      await flush();
      report.resetChecked++;
      live.socket.write(m);
      await waitFor('NOTIFICATION for a reset mutant', () => live.notifications.length > 0, 10_000, 2);
      const n = live.notifications[0]!;
      if (n[19] === verdict.errorCode && n[20] === verdict.errorSubcode) report.resetMatched++;
      countNotifications();
      live.close();
      await down(s);
      live = await session(s, host, peerHost);
    }
    await flush();
    // Everything streamed was handled, and the session is still up.
    live.socket.write(
      encodeUpdate(
        Buffer.alloc(0),
        encodePathAttributes(
          { origin: 0, asPath: [{ type: 2, asns: [65002] }], nextHop: '127.0.30.2' },
          CTX,
          true,
        ),
        hex('18 0afefe'),
      ),
    );
    await waitFor('sentinel route', () => s.rib({ prefix: '10.254.254.0/24' }).length === 1, 60_000, 20);
    if (live.notifications.length) {
      report.unexpectedResets++;
      countNotifications();
    }
  } finally {
    live.close();
    await s.stop();
    process.off('unhandledRejection', onProcessError);
    process.off('uncaughtException', onProcessError);
    report.seconds = (Date.now() - started) / 1000;
  }
  return report;
}
