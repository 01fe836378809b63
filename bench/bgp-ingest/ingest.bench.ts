// bgp-ingest: a feeder peer sends N IPv4 prefixes to tern-bgp, BIRD, GoBGP and FRR in turn (same
// feed, same run), then N IPv6 /48s in MP_REACH_NLRI over the same kind of IPv4 session. Measured
// per receiver: time from session up (feeder side) until every prefix is in the receiver's Loc-RIB
// (polled every 50 ms), the receiver's CPU time over that span (the fair number on a loaded
// machine), and RSS growth per route.
// Sizes: BGP_INGEST_COUNTS (default "100000,1000000"), BGP_INGEST6_COUNTS (default "100000").
import { execa, type ResultPromise } from 'execa';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BgpLab, buildTernBgp, type DaemonHandle } from '../../test/support/bgp-daemons.js';
import { stopProcess, waitFor } from '../../test/support/netns.js';

const COUNTS = (process.env.BGP_INGEST_COUNTS ?? '100000,1000000').split(',').map(Number);
const COUNTS6 = (process.env.BGP_INGEST6_COUNTS ?? '100000').split(',').map(Number);
type Family = 4 | 6;
/** IPv6 addresses on the same LAN: the IPv6 feed's next hop must be on-link for BIRD. */
const V6 = (a: string) => `fd00:88::${a.split('.')[3]}`;
/** A receiver that has not loaded the feed by then is reported as not finished (DNF). */
const DEADLINE_S = Number(process.env.BGP_INGEST_DEADLINE_S ?? 300);
const FEEDER = '10.88.0.1';
const ADDR = { tern: '10.88.0.2', bird: '10.88.0.3', gobgp: '10.88.0.4', frr: '10.88.0.5' } as const;
type Receiver = keyof typeof ADDR;
/** BGP_INGEST_RECEIVERS picks a subset (BIRD, the reference, is always measured). */
const RECEIVERS: Receiver[] = ['tern', 'bird', 'gobgp', 'frr'].filter(
  (k) => k === 'bird' || (process.env.BGP_INGEST_RECEIVERS ?? 'tern,gobgp,frr').split(',').includes(k),
) as Receiver[];
const REPO = path.resolve(import.meta.dirname, '../..');

interface Row {
  family: Family;
  receiver: Receiver;
  count: number;
  /** NaN when the receiver did not finish before the deadline. */
  seconds: number;
  cpuSeconds: number;
  bytesPerRoute: number;
  loaded: number;
}

const lab = new BgpLab();
afterAll(() => lab.cleanup());

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** user + system CPU seconds of a process (all threads). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
}

async function startReceiver(
  kind: Receiver,
  ns: string,
  name: string,
  family: Family,
): Promise<{ handle: DaemonHandle; loaded: () => Promise<number> }> {
  const me = ADDR[kind];
  const af = family === 4 ? 'ipv4' : 'ipv6';
  switch (kind) {
    case 'tern': {
      const h = await lab.tern(ns, name, {
        asn: 65000,
        routerId: me,
        logLevel: 'warn',
        peers: [{ address: FEEDER, asn: 65100, passive: true }],
      });
      return { handle: h, loaded: async () => (await h.status())[0]?.prefixesAccepted ?? 0 };
    }
    case 'bird': {
      const h = await lab.bird(
        ns,
        name,
        `router id ${me};\nprotocol device { }\nprotocol bgp feed { local ${me} as 65000; neighbor ${FEEDER} as 65100; passive on; ${af} { import all; export none; }; }\n`,
      );
      const ctl = path.join(lab.dir, name, 'bird.ctl');
      return {
        handle: h,
        loaded: async () =>
          Number(
            /(\d+) imported/.exec(
              (await execa('birdc', ['-s', ctl, 'show', 'protocols', 'all', 'feed'])).stdout,
            )?.[1] ?? 0,
          ),
      };
    }
    case 'gobgp': {
      const h = await lab.gobgp(
        ns,
        name,
        `[global.config]\n  as = 65000\n  router-id = "${me}"\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "${FEEDER}"\n    peer-as = 65100\n  [neighbors.transport.config]\n    passive-mode = true\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "${af}-unicast"\n`,
      );
      const sock = path.join(lab.dir, name, 'gobgp.sock');
      return {
        handle: h,
        loaded: async () => {
          const out = (
            await execa('gobgp', ['--target', `unix://${sock}`, 'global', 'rib', 'summary', '-a', af])
          ).stdout;
          return Number(/Destination:\s*(\d+)/.exec(out)?.[1] ?? 0);
        },
      };
    }
    case 'frr': {
      const h = await lab.frr(
        ns,
        name,
        `router bgp 65000\n bgp router-id ${me}\n no bgp ebgp-requires-policy\n neighbor ${FEEDER} remote-as 65100\n neighbor ${FEEDER} passive\n${family === 6 ? ` address-family ipv6 unicast\n  neighbor ${FEEDER} activate\n exit-address-family\n` : ''}!\n`,
      );
      const dir = path.join(lab.dir, name);
      return {
        handle: h,
        loaded: async () => {
          const j = JSON.parse(
            (await execa('vtysh', ['--vty_socket', dir, '-c', `show bgp ${af} unicast summary json`])).stdout,
          ) as {
            ribCount?: number;
            peers?: Record<string, { pfxRcd?: number }>;
          };
          // ribCount = prefixes in the BGP Loc-RIB; pfxRcd alone would count Adj-RIB-In only.
          return Math.min(j.ribCount ?? 0, j.peers?.[FEEDER]?.pfxRcd ?? 0);
        },
      };
    }
  }
}

async function measure(
  family: Family,
  kind: Receiver,
  count: number,
  nsReceiver: string,
  nsFeeder: string,
  build: string,
): Promise<Row> {
  const name = `${kind}-${count}-v${family}`;
  const r = await startReceiver(kind, nsReceiver, name, family);
  let feeder: ResultPromise | undefined;
  try {
    const before = await rssBytes(r.handle.pid);
    const cpuBefore = await cpuSeconds(r.handle.pid);
    const lines: { event: string; t: number }[] = [];
    feeder = execa(
      'ip',
      [
        'netns',
        'exec',
        nsFeeder,
        process.execPath,
        path.join(REPO, 'bench/bgp-ingest/feeder.mjs'),
        '--build',
        build,
        '--family',
        String(family),
        ...(family === 6 ? ['--next-hop', V6(FEEDER)] : []),
        '--peer',
        ADDR[kind],
        '--local-as',
        '65100',
        '--peer-as',
        '65000',
        '--router-id',
        FEEDER,
        '--count',
        String(count),
      ],
      { reject: false, buffer: false },
    );
    feeder.stdout!.on('data', (c: Buffer) => {
      for (const l of c.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as { event: string; t: number });
    });
    const up = await waitFor(
      `${name}: session up`,
      () => lines.find((l) => l.event === 'established'),
      60_000,
      20,
    );
    const finished = await waitFor(
      `${name}: ${count} prefixes loaded`,
      async () => (await r.loaded()) >= count,
      DEADLINE_S * 1000,
      50,
    ).then(
      () => true,
      () => false,
    );
    const done = Date.now();
    const cpuAfter = await cpuSeconds(r.handle.pid);
    if (finished) await new Promise((res) => setTimeout(res, 1000));
    const after = await rssBytes(r.handle.pid);
    const loaded = await r.loaded();
    const row: Row = {
      family,
      receiver: kind,
      count,
      seconds: finished ? (done - up.t) / 1000 : NaN,
      cpuSeconds: cpuAfter - cpuBefore,
      bytesPerRoute: (after - before) / Math.max(loaded, 1),
      loaded,
    };
    console.log(`bgp-ingest ${JSON.stringify(row)}`);
    return row;
  } finally {
    if (feeder?.pid) await stopProcess(feeder.pid);
    await r.handle.stop();
  }
}

async function setUp(): Promise<{ build: string; nsFeeder: string; ns: Record<Receiver, string> }> {
  if (lab.dir) return setUpDone!;
  const build = path.dirname(path.dirname(await buildTernBgp()));
  await lab.init();
  const nsFeeder = await lab.netns.add('feed');
  const ns = Object.fromEntries(
    await Promise.all(RECEIVERS.map(async (k) => [k, await lab.netns.add(k)] as const)),
  ) as Record<Receiver, string>;
  const hosts = [
    { ns: nsFeeder, address: FEEDER },
    ...RECEIVERS.map((k) => ({ ns: ns[k], address: ADDR[k] })),
  ];
  await lab.lan(hosts.map((h) => ({ ns: h.ns, address: `${h.address}/24` })));
  for (const h of hosts)
    await execa('ip', ['-n', h.ns, 'addr', 'add', `${V6(h.address)}/64`, 'dev', 'eth0', 'nodad']);
  setUpDone = { build, nsFeeder, ns };
  return setUpDone;
}
let setUpDone: Awaited<ReturnType<typeof setUp>> | undefined;

/** Measures every receiver on each size, prints the table with ratios to BIRD, checks correctness. */
async function compare(
  family: Family,
  counts: readonly number[],
  receivers: readonly Receiver[],
): Promise<void> {
  const { build, nsFeeder, ns } = await setUp();
  const rows: Row[] = [];
  for (const count of counts)
    for (const k of receivers) rows.push(await measure(family, k, count, ns[k], nsFeeder, build));

  const table = rows.map((row) => {
    const bird = rows.find((x) => x.receiver === 'bird' && x.count === row.count)!;
    return {
      family: `IPv${family}`,
      prefixes: row.count,
      receiver: row.receiver,
      'load s': Number.isNaN(row.seconds) ? `DNF (${row.loaded} in ${DEADLINE_S} s)` : row.seconds.toFixed(2),
      'time ×BIRD': (row.seconds / bird.seconds).toFixed(2),
      'cpu s': row.cpuSeconds.toFixed(2),
      'cpu ×BIRD': (row.cpuSeconds / Math.max(bird.cpuSeconds, 0.01)).toFixed(2),
      'bytes/route (RSS)': Math.round(row.bytesPerRoute),
      'mem ×BIRD': (row.bytesPerRoute / bird.bytesPerRoute).toFixed(2),
    };
  });
  console.log(
    `\nbgp-ingest IPv${family}: session up → all prefixes in the Loc-RIB, and RSS growth per route`,
  );
  console.table(table);
  expect(rows).toHaveLength(counts.length * receivers.length);
  // Correctness: tern and BIRD hold the whole feed.
  for (const row of rows.filter((x) => x.receiver === 'tern' || x.receiver === 'bird'))
    expect(row.loaded).toBe(row.count);
}

describe('bgp-ingest', () => {
  it('loads the same IPv4 feed into tern-bgp, BIRD, GoBGP and FRR and compares time and memory per route', async () => {
    await compare(4, COUNTS, RECEIVERS);
  });

  it('loads the same IPv6 feed (MP_REACH_NLRI) into the same receivers and compares them', async () => {
    await compare(6, COUNTS6, RECEIVERS);
  });
});
