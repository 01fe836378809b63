// bfd: (1) detection time after a silent link cut, tern-bgp and FRR bfdd observing the same cut
// of their shared BFD session (100 ms × 3, detection 300 ms), over BFD_CUTS cuts (default 10);
// each side's time is the state-change line in its own log (tern: pino ms; bfdd: `log timestamp
// precision 6`) minus the clock taken just before the cut command. (2) CPU time of BFD at 50 ms
// × 3 with 10 sessions: tern-bgp (10 peers, BGP passive so only BFD runs) against FRR bfdd
// holding the other end of the same 10 sessions, over BFD_CPU_SECONDS (default 30).
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { BgpLab, type BfddHandle } from '../../test/support/bgp-daemons.js';
import { waitFor } from '../../test/support/netns.js';
import { startBfdLab, T } from '../../test/integration/bgp/bfd-scenario.js';

const CUTS = Number(process.env.BFD_CUTS ?? 10);
const CPU_SECONDS = Number(process.env.BFD_CPU_SECONDS ?? 30);
const SESSIONS = 10;

const labs: BgpLab[] = [];
afterAll(async () => {
  for (const l of labs) await l.cleanup();
});

/** user + system CPU seconds of a process. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** First time (ms) after `since` at which tern logged its BFD session going Down. */
function ternDownAt(log: string, since: number): number | undefined {
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as { time: number; msg?: string; to?: string };
    if (j.msg === 'BFD session state changed' && j.to === 'Down' && j.time >= since) return j.time;
  }
  return undefined;
}

/** First bfdd "state-change ... up -> down" after `since` (log lines carry local time, µs). */
function bfddDownAt(log: string, since: number): number | undefined {
  for (const line of log.split('\n')) {
    const m = /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3})\d* .*state-change.*up -> down/.exec(
      line,
    );
    if (!m) continue;
    const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const at = new Date(y, mo - 1, d, h, mi, s, ms).getTime();
    if (at >= since) return at;
  }
  return undefined;
}

describe('BFD', () => {
  it(`detection after a cut: tern-bgp vs FRR bfdd, ${CUTS} cuts, 100 ms × 3`, async () => {
    const lab = new BgpLab();
    labs.push(lab);
    const h = await startBfdLab(lab, 'frr', true);
    const bfddLog = () => readFile(`${lab.dir}/d/bfdd.log`, 'utf8').catch(() => '');
    const both = async () =>
      (await h.tern.status())[0]?.bfd?.state === 'Up' &&
      (await h.tern.status())[0]?.bfd?.txIntervalMs === 100 &&
      (await h.daemonBfdState()) === 'up';
    const tern: number[] = [];
    const frr: number[] = [];
    for (let i = 0; i < CUTS; i++) {
      await waitFor('BFD Up on both ends', both, 30_000, 50);
      // A random phase against both transmit timers.
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 500));
      const cutAt = await h.cut();
      const [t, f] = await waitFor(
        'both ends saw the cut',
        async () => {
          const t = ternDownAt(await h.tern.log(), cutAt);
          const f = bfddDownAt(await bfddLog(), cutAt);
          return t !== undefined && f !== undefined ? ([t, f] as const) : undefined;
        },
        10_000,
        50,
      );
      tern.push(t - cutAt);
      frr.push(f - cutAt);
      await h.restore();
    }
    const rows = [
      { observer: 'tern-bgp', p50: pct(tern, 50), max: Math.max(...tern) },
      { observer: 'FRR bfdd', p50: pct(frr, 50), max: Math.max(...frr) },
    ];
    console.log(
      `\nBFD detection after a cut (ms from just before the cut command; detection time 300 ms; ${CUTS} cuts)\n` +
        rows
          .map(
            (r) =>
              `${r.observer.padEnd(9)}  p50 ${String(r.p50).padStart(4)}  max ${String(r.max).padStart(4)}`,
          )
          .join('\n') +
        `\nratio tern/FRR  p50 ${(rows[0]!.p50 / rows[1]!.p50).toFixed(2)}  max ${(rows[0]!.max / rows[1]!.max).toFixed(2)}` +
        `\nall tern: ${tern.join(' ')}\nall FRR:  ${frr.join(' ')}`,
    );
    expect(tern).toHaveLength(CUTS);
    expect(frr).toHaveLength(CUTS);
  }, 600_000);

  it(`CPU time with ${SESSIONS} sessions at 50 ms × 3: tern-bgp vs FRR bfdd (the other ends)`, async () => {
    const lab = new BgpLab();
    labs.push(lab);
    await lab.init();
    const nsT = await lab.netns.add('t');
    const nsD = await lab.netns.add('d');
    // bfdd keys single-hop sessions by peer address alone: every pair gets its own addresses.
    const pairs = Array.from({ length: SESSIONS }, (_, i) => ({
      t: `10.88.1.${10 + i}`,
      d: `10.88.2.${10 + i}`,
    }));
    await lab.lan([
      { ns: nsT, address: `${T}/16` },
      { ns: nsD, address: '10.88.0.2/16' },
    ]);
    for (const { t, d } of pairs) {
      await execa('ip', ['-n', nsT, 'addr', 'add', `${t}/16`, 'dev', 'eth0']);
      await execa('ip', ['-n', nsD, 'addr', 'add', `${d}/16`, 'dev', 'eth0']);
    }
    const tern = await lab.tern(nsT, 't', {
      asn: 65001,
      routerId: T,
      logLevel: 'info',
      peers: pairs.map(({ t, d }) => ({
        address: d,
        asn: 65002,
        localAddress: t,
        passive: true,
        bfd: { desiredMinTxMs: 50, requiredMinRxMs: 50, multiplier: 3 },
      })),
    });
    await lab.frr(nsD, 'd', 'router bgp 65002\n bgp router-id 10.88.0.2\n!\n', [], { zebra: true });
    const bfdd: BfddHandle = await lab.frrBfdd(
      nsD,
      'd',
      `bfd\n${pairs
        .map(
          ({ t, d }) =>
            ` peer ${t} local-address ${d}\n  detect-multiplier 3\n  receive-interval 50\n  transmit-interval 50\n exit\n`,
        )
        .join('')}exit\n`,
    );
    await waitFor(
      `${SESSIONS} sessions Up at 50 ms`,
      async () => {
        const st = await tern.status();
        return st.filter((p) => p.bfd?.state === 'Up' && p.bfd.txIntervalMs === 50).length === SESSIONS;
      },
      60_000,
      200,
    ).catch(async (err: unknown) => {
      const st = (await tern.status()).map((p) => `${p.address} ${p.bfd?.state} ${p.bfd?.txIntervalMs}`);
      const frr = JSON.stringify(await bfdd.bfdPeers());
      const conf = (
        await execa('vtysh', ['--vty_socket', `${lab.dir}/d`, '-d', 'bfdd', '-c', 'show running-config'])
      ).stdout;
      throw new Error(
        `${(err as Error).message}\ntern: ${st.join(', ')}\nbfdd: ${frr}\n${await bfdd.log()}\n${conf}`,
      );
    });
    const t0 = [await cpuSeconds(tern.pid), await cpuSeconds(bfdd.pid)];
    const start = Date.now();
    await new Promise((r) => setTimeout(r, CPU_SECONDS * 1000));
    const t1 = [await cpuSeconds(tern.pid), await cpuSeconds(bfdd.pid)];
    const wall = (Date.now() - start) / 1000;
    const st = await tern.status();
    expect(st.filter((p) => p.bfd?.state === 'Up').length).toBe(SESSIONS);
    const msPerS = (i: number) => ((t1[i]! - t0[i]!) * 1000) / wall;
    console.log(
      `\nBFD CPU, ${SESSIONS} sessions at 50 ms × 3 (${(SESSIONS * 20).toFixed(0)} packets/s each way), ${wall.toFixed(1)} s\n` +
        `tern-bgp  ${msPerS(0).toFixed(1)} ms CPU per s (${((msPerS(0) / 1000) * 100).toFixed(2)} % of a core)\n` +
        `FRR bfdd  ${msPerS(1).toFixed(1)} ms CPU per s (${((msPerS(1) / 1000) * 100).toFixed(2)} % of a core)\n` +
        `ratio tern/FRR ${(msPerS(0) / Math.max(msPerS(1), 0.001)).toFixed(1)}`,
    );
  }, 300_000);
});
