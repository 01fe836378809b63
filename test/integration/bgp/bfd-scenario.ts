// BFD tied to BGP against BIRD and FRR (bfdd) in network namespaces. tern-bgp (T, AS 65001) and
// the daemon (D, AS 65002) share one bridge; "cutting the link" detaches D's bridge port, so both
// directions go silent at once without any carrier change (like a failure inside the fabric).
// Measured: the time from the cut until tern's BGP session leaves Established, read from tern's
// log (pino time, ms) against the clock taken just before the cut command (an upper bound).
import { execa } from 'execa';
import { expect } from 'vitest';
import { BgpLab, type DaemonHandle, type TernHandle } from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';

export type BfdDaemon = 'bird' | 'frr';

export const T = '10.88.0.1';
export const D = '10.88.0.2';
/** BFD timers on both ends: 100 ms × 3 (detection 300 ms). */
export const BFD_MS = 100;
export const BFD_MULT = 3;
/** BGP timers: keepalive 3 s, hold 9 s (the comparison without BFD). */
const KEEPALIVE = 3;
const HOLD = 9;

function daemonConfig(kind: BfdDaemon, bfd: boolean): string {
  if (kind === 'bird') {
    return `router id ${D};
protocol device { scan time 1; }
${bfd ? `protocol bfd { interface "eth0" { min rx interval ${BFD_MS} ms; min tx interval ${BFD_MS} ms; multiplier ${BFD_MULT}; }; }` : ''}
# error wait time: BIRD refuses the peer for 60 s after an error (BFD down is one) by default.
protocol bgp t { local ${D} as 65002; neighbor ${T} as 65001; hold time ${HOLD}; keepalive time ${KEEPALIVE};
  connect retry time 1; error wait time 1, 2; ${bfd ? 'bfd on;' : ''} ipv4 { import all; export all; }; }
`;
  }
  return `router bgp 65002
 bgp router-id ${D}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor ${T} remote-as 65001
 neighbor ${T} timers ${KEEPALIVE} ${HOLD}
 neighbor ${T} timers connect 1
${bfd ? ` neighbor ${T} bfd ${BFD_MULT} ${BFD_MS} ${BFD_MS}\n` : ''}!
`;
}

export interface BfdLab {
  lab: BgpLab;
  tern: TernHandle;
  daemon: DaemonHandle;
  /** The daemon's own view of its BFD session to tern: 'up' when Up. */
  daemonBfdState(): Promise<string | undefined>;
  cut(): Promise<number>;
  restore(): Promise<void>;
}

/** Starts the pair; `bfd` on both ends or on neither. The caller runs lab.cleanup(). */
export async function startBfdLab(lab: BgpLab, kind: BfdDaemon, bfd: boolean): Promise<BfdLab> {
  await lab.init();
  const nsT = await lab.netns.add('t');
  const nsD = await lab.netns.add('d');
  await lab.lan([
    { ns: nsT, address: `${T}/24` },
    { ns: nsD, address: `${D}/24` },
  ]);
  const sw = `t${lab.netns.suffix}-sw`;
  const tern = await lab.tern(nsT, 't', {
    asn: 65001,
    routerId: T,
    peers: [
      {
        address: D,
        asn: 65002,
        localAddress: T,
        holdTime: HOLD,
        keepaliveTime: KEEPALIVE,
        connectRetryTime: 1,
        ...(bfd ? { bfd: { desiredMinTxMs: BFD_MS, requiredMinRxMs: BFD_MS, multiplier: BFD_MULT } } : {}),
      },
    ],
    originate: ['10.188.1.0/24'],
  });
  let daemonBfdState: () => Promise<string | undefined>;
  let daemon: DaemonHandle;
  if (kind === 'bird') {
    daemon = await lab.bird(nsD, 'd', daemonConfig(kind, bfd));
    const ctl = `${lab.dir}/d/bird.ctl`;
    daemonBfdState = async () => {
      const out = (await execa('birdc', ['-s', ctl, 'show', 'bfd', 'sessions'])).stdout;
      const line = out.split('\n').find((l) => l.startsWith(T));
      return line?.split(/\s+/)[2]?.toLowerCase();
    };
  } else {
    daemon = await lab.frr(nsD, 'd', daemonConfig(kind, bfd), [], { zebra: true });
    if (bfd) {
      const bfdd = await lab.frrBfdd(nsD, 'd', 'debug bfd peer\n');
      daemonBfdState = async () => (await bfdd.bfdPeers()).find((p) => p.peer === T)?.state;
    } else {
      daemonBfdState = async () => undefined;
    }
  }
  return {
    lab,
    tern,
    daemon,
    daemonBfdState,
    cut: async () => {
      const at = Date.now();
      await execa('ip', ['-n', sw, 'link', 'set', 'p1', 'nomaster']);
      return at;
    },
    restore: async () => void (await execa('ip', ['-n', sw, 'link', 'set', 'p1', 'master', 'br0'])),
  };
}

/** Time of the first log line of tern's session leaving Established at or after `since`. */
export async function ternLeftEstablishedAt(
  tern: TernHandle,
  since: number,
): Promise<{ at: number; reason: string }> {
  return waitFor(
    'tern log: session left Established',
    async () => {
      for (const line of (await tern.log()).split('\n')) {
        if (!line.startsWith('{')) continue;
        const j = JSON.parse(line) as {
          time: number;
          msg?: string;
          wasEstablished?: boolean;
          reason?: string;
        };
        if (j.msg === 'connection closed' && j.wasEstablished && j.time >= since) {
          return { at: j.time, reason: j.reason ?? '' };
        }
      }
      return undefined;
    },
    20_000,
    50,
  );
}

export async function established(h: BfdLab): Promise<void> {
  await waitFor(
    'BGP Established on both ends',
    async () =>
      (await h.tern.status())[0]?.state === 'Established' &&
      (await h.daemon.peers()).some((p) => p.established),
    40_000,
    100,
  );
}

/**
 * With BFD: Up on both ends at 100 ms, a cut takes tern's BGP session down within a second with
 * reason "BFD down", BGP stays down while the link is cut, and both come back once it is restored.
 * Returns the measured time from the cut to tern leaving Established.
 */
export async function runBfdCut(kind: BfdDaemon): Promise<number> {
  const lab = new BgpLab();
  try {
    const h = await startBfdLab(lab, kind, true);
    await established(h);
    await waitFor(
      'BFD Up at 100 ms on both ends',
      async () => {
        const b = (await h.tern.status())[0]?.bfd;
        return b?.state === 'Up' && b.txIntervalMs === BFD_MS && (await h.daemonBfdState()) === 'up';
      },
      20_000,
      100,
    );
    const cutAt = await h.cut();
    const left = await ternLeftEstablishedAt(h.tern, cutAt);
    const ms = left.at - cutAt;
    expect(left.reason).toBe('BFD down');
    const st = (await h.tern.status())[0]!;
    expect(st.bfd?.state).toBe('Down');
    expect(st.lastError).toBe('BFD down (control detection time expired)');
    expect(ms).toBeLessThan(1000);
    await h.restore();
    await waitFor('BFD Up again', async () => (await h.tern.status())[0]?.bfd?.state === 'Up', 20_000, 100);
    await established(h);
    return ms;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
  } finally {
    await lab.cleanup();
  }
}

/** Without BFD: the same cut is seen only by the hold timer (9 s). Returns the measured time. */
export async function runHoldTimerCut(kind: BfdDaemon): Promise<number> {
  const lab = new BgpLab();
  try {
    const h = await startBfdLab(lab, kind, false);
    await established(h);
    expect((await h.tern.status())[0]?.bfd).toBeUndefined();
    const cutAt = await h.cut();
    const left = await ternLeftEstablishedAt(h.tern, cutAt);
    expect(left.reason).toBe('hold timer expired');
    return left.at - cutAt;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
  } finally {
    await lab.cleanup();
  }
}

/** IPv6: a BFD session over fd00:: comes Up on both ends and the BGP session over it establishes. */
export async function runBfdIpv6(kind: BfdDaemon): Promise<void> {
  const T6 = 'fd00:88::1';
  const D6 = 'fd00:88::2';
  const lab = new BgpLab();
  try {
    await lab.init();
    const nsT = await lab.netns.add('t');
    const nsD = await lab.netns.add('d');
    await lab.lan([
      { ns: nsT, address: `${T6}/64` },
      { ns: nsD, address: `${D6}/64` },
    ]);
    const bfd = { desiredMinTxMs: BFD_MS, requiredMinRxMs: BFD_MS, multiplier: BFD_MULT };
    const tern = await lab.tern(nsT, 't', {
      asn: 65001,
      routerId: T,
      peers: [{ address: D6, asn: 65002, localAddress: T6, connectRetryTime: 1, bfd }],
    });
    let daemonUp: () => Promise<boolean>;
    if (kind === 'bird') {
      await lab.bird(
        nsD,
        'd',
        `router id ${D};
protocol device { scan time 1; }
protocol bfd { interface "eth0" { min rx interval ${BFD_MS} ms; min tx interval ${BFD_MS} ms; multiplier ${BFD_MULT}; }; }
protocol bgp t6 { local ${D6} as 65002; neighbor ${T6} as 65001; connect retry time 1; bfd on; ipv6 { import all; export all; }; }
`,
      );
      daemonUp = async () =>
        (await execa('birdc', ['-s', `${lab.dir}/d/bird.ctl`, 'show', 'bfd', 'sessions'])).stdout
          .split('\n')
          .some((l) => l.startsWith(T6) && /\bUp\b/.test(l));
    } else {
      await lab.frr(
        nsD,
        'd',
        `router bgp 65002
 bgp router-id ${D}
 no bgp ebgp-requires-policy
 neighbor ${T6} remote-as 65001
 neighbor ${T6} timers connect 1
 neighbor ${T6} bfd ${BFD_MULT} ${BFD_MS} ${BFD_MS}
 address-family ipv6 unicast
  neighbor ${T6} activate
 exit-address-family
!
`,
        [],
        { zebra: true },
      );
      const bfdd = await lab.frrBfdd(nsD, 'd');
      daemonUp = async () => (await bfdd.bfdPeers()).some((p) => p.peer === T6 && p.state === 'up');
    }
    await waitFor(
      'BFD Up over IPv6 on both ends, BGP Established',
      async () => {
        const st = (await tern.status())[0];
        return st?.state === 'Established' && st.bfd?.state === 'Up' && (await daemonUp());
      },
      40_000,
      200,
    );
    expect((await tern.status())[0]?.bfd).toMatchObject({ localAddress: T6, txIntervalMs: BFD_MS });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
  } finally {
    await lab.cleanup();
  }
}
