// bgp-md5: what TCP MD5 (RFC 2385) costs a BGP receiver. A feeder (tern's codec + MD5 addon)
// opens BGP_MD5_SESSIONS sessions one after the other to a passive receiver and times each from
// connect() to Established, then sends BGP_MD5_COUNT prefixes on the last one; the time until all
// are in the receiver's Loc-RIB (polled every 50 ms) gives the ingest rate. tern-bgp and BIRD, each
// without and with MD5, in the same run; the table gives MD5/plain ratios and tern/BIRD ratios.
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BgpLab, type DaemonHandle, type TernHandle } from '../../test/support/bgp-daemons.js';
import { stopProcess, waitFor } from '../../test/support/netns.js';
import {
  ADDON,
  BUILD_DIR,
  buildTernBgp,
  startTern,
  stopAll,
} from '../../test/integration/bgp/tcp-security-lab.js';

const COUNT = Number(process.env.BGP_MD5_COUNT ?? 500_000);
const SESSIONS = Number(process.env.BGP_MD5_SESSIONS ?? 20);
const FEEDER = '10.89.0.1';
const ADDR = { tern: '10.89.0.2', bird: '10.89.0.3' } as const;
type Receiver = keyof typeof ADDR;
const KEY = 'bench-md5-key';

interface Row {
  receiver: Receiver;
  md5: boolean;
  establishMs: number[];
  ingestSeconds: number;
  loaded: number;
}

const lab = new BgpLab();
const terns: TernHandle[] = [];
afterAll(async () => {
  await stopAll(terns);
  await lab.cleanup();
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function startReceiver(
  kind: Receiver,
  ns: string,
  name: string,
  md5: boolean,
): Promise<{ handle: DaemonHandle; loaded: () => Promise<number> }> {
  const me = ADDR[kind];
  if (kind === 'tern') {
    const h = await startTern(
      lab,
      ns,
      name,
      {
        asn: 65000,
        routerId: me,
        logLevel: 'warn',
        peers: [{ address: FEEDER, asn: 65100, passive: true, ...(md5 ? { password: KEY } : {}) }],
      },
      terns,
    );
    return { handle: h, loaded: async () => (await h.status())[0]?.prefixesAccepted ?? 0 };
  }
  const h = await lab.bird(
    ns,
    name,
    `router id ${me};\nprotocol device { }\nprotocol bgp feed { local ${me} as 65000; neighbor ${FEEDER} as 65100; passive on; error wait time 1,1; ${md5 ? `password "${KEY}"; ` : ''}ipv4 { import all; export none; }; }\n`,
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

async function measure(kind: Receiver, md5: boolean, ns: string, nsFeeder: string): Promise<Row> {
  const name = `${kind}-${md5 ? 'md5' : 'plain'}`;
  const r = await startReceiver(kind, ns, name, md5);
  let feeder: ResultPromise | undefined;
  try {
    const events: { event: string; t: number; ms?: number }[] = [];
    feeder = execa(
      'ip',
      [
        'netns',
        'exec',
        nsFeeder,
        process.execPath,
        path.join(import.meta.dirname, 'feeder.mjs'),
        '--build',
        BUILD_DIR,
        '--peer',
        ADDR[kind],
        '--router-id',
        FEEDER,
        '--count',
        String(COUNT),
        '--sessions',
        String(SESSIONS),
        ...(md5 ? ['--md5', KEY] : []),
      ],
      { reject: false, buffer: false, env: { TERN_NATIVE_ADDON: ADDON } },
    );
    feeder.stdout!.on('data', (c: Buffer) => {
      for (const l of c.toString().split('\n').filter(Boolean))
        events.push(JSON.parse(l) as (typeof events)[0]);
    });
    const established = () => events.filter((e) => e.event === 'established');
    await waitFor(`${name}: ${SESSIONS} sessions`, () => established().length >= SESSIONS, 120_000, 20);
    const up = established().at(-1)!.t;
    await waitFor(`${name}: ${COUNT} prefixes`, async () => (await r.loaded()) >= COUNT, 300_000, 50);
    const row: Row = {
      receiver: kind,
      md5,
      establishMs: established().map((e) => e.ms!),
      ingestSeconds: (Date.now() - up) / 1000,
      loaded: await r.loaded(),
    };
    console.log(`bgp-md5 ${JSON.stringify(row)}`);
    return row;
  } finally {
    if (feeder?.pid) await stopProcess(feeder.pid);
    await r.handle.stop();
  }
}

describe('bgp-md5', () => {
  it('measures session establishment and UPDATE ingest with and without TCP MD5, tern-bgp and BIRD', async () => {
    await buildTernBgp();
    await lab.init();
    const nsFeeder = await lab.netns.add('feed');
    const ns = { tern: await lab.netns.add('tern'), bird: await lab.netns.add('bird') };
    await lab.lan([
      { ns: nsFeeder, address: `${FEEDER}/24` },
      { ns: ns.tern, address: `${ADDR.tern}/24` },
      { ns: ns.bird, address: `${ADDR.bird}/24` },
    ]);
    const rows: Row[] = [];
    for (const kind of ['tern', 'bird'] as const)
      for (const md5 of [false, true]) rows.push(await measure(kind, md5, ns[kind], nsFeeder));

    const get = (k: Receiver, md5: boolean) => rows.find((r) => r.receiver === k && r.md5 === md5)!;
    const table = rows.map((row) => {
      const plain = get(row.receiver, false);
      const bird = get('bird', row.md5);
      const rate = row.loaded / row.ingestSeconds;
      return {
        receiver: row.receiver,
        md5: row.md5 ? 'yes' : 'no',
        'establish ms (median)': median(row.establishMs).toFixed(2),
        'establish ×plain': (median(row.establishMs) / median(plain.establishMs)).toFixed(2),
        'establish ×BIRD': (median(row.establishMs) / median(bird.establishMs)).toFixed(2),
        [`ingest s (${COUNT})`]: row.ingestSeconds.toFixed(2),
        'prefixes/s': Math.round(rate),
        'ingest time ×plain': (row.ingestSeconds / plain.ingestSeconds).toFixed(2),
        'ingest time ×BIRD': (row.ingestSeconds / bird.ingestSeconds).toFixed(2),
      };
    });
    console.log(
      `\nbgp-md5: ${SESSIONS} sessions connect() → Established (median), then ${COUNT} prefixes → Loc-RIB`,
    );
    console.table(table);
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(row.establishMs).toHaveLength(SESSIONS);
      expect(row.loaded).toBe(COUNT);
    }
  });
});
