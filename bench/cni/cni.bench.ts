// ADD/DEL latency of `tern` (the installed executable + the warm agent) against Debian's reference
// `ptp` + `host-local`, and the floor of any Node executable (`node -e 0`), in the same run, on the
// same node netns. `tern` is the plugin as installed: the one-file CommonJS bundle exec'd through
// its `#!<absolute node>` line (scripts/build-cni-bundle.mjs --node; install-cni.sh writes the same
// form). Two more forms of the same code show what the installation form costs: `tern-sh`, the
// bundle behind a sh wrapper (what install-cni.sh wrote before), and `tern-esm`, tsc's output run
// by node (ESM loader, one file per module). Every plugin
// runs as a runtime runs it (env + stdin), under `nsenter --net=<node>` so all pay the same exec
// cost. `tern-etcd` is `tern` against a second agent whose IPAM lives in a real etcd (over a Unix
// socket), as in production; the others use the in-memory datastore. Then 50 concurrent ADDs and
// DELs.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../test/support/etcd.js';
import {
  CniLab,
  TERN_BIN,
  TERN_ESM,
  k8sArgs,
  runPlugin,
  type TernOutput,
} from '../../test/integration/cni/harness.js';

const ROUNDS = Number(process.env.TERN_CNI_BENCH_ROUNDS) || 100;
const CONCURRENT = 50;

const lab = new CniLab({ pools: ['bench=10.70.0.0/16,26'] });
let etcd: EtcdServer | undefined;
let etcdLab: CniLab | undefined;
let dataDir = '';
let ternSh = '';

beforeAll(async () => {
  await lab.start();
  etcd = await startEtcd({ transport: 'unix' });
  etcdLab = new CniLab({ pools: ['bench-etcd=10.72.0.0/16,26'], etcd: etcd.endpoint });
  await etcdLab.start();
  dataDir = await mkdtemp(join(tmpdir(), 'tern-bench-hostlocal-'));
  ternSh = join(dataDir, 'tern-sh');
  await writeFile(ternSh, `#!/bin/sh\nexec ${process.execPath} ${TERN_BIN} "$@"\n`);
  await chmod(ternSh, 0o755);
}, 300_000);
afterAll(async () => {
  await lab.cleanup();
  await etcdLab?.cleanup();
  await etcd?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const TERNS = ['tern', 'tern-etcd', 'tern-sh', 'tern-esm'] as const;
type Plugin = (typeof TERNS)[number] | 'ptp';

function invoke(plugin: Plugin, command: 'ADD' | 'DEL', id: string, netns: string): Promise<TernOutput> {
  const at = plugin === 'tern-etcd' ? etcdLab! : lab;
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: k8sArgs('bench', id),
    TERN_CNI_SOCKET: at.socket,
  };
  const conf =
    plugin !== 'ptp'
      ? { cniVersion: '1.0.0', name: 'bench-tern', type: 'tern' }
      : {
          cniVersion: '1.0.0',
          name: 'bench-ptp',
          type: 'ptp',
          ipMasq: false,
          mtu: 1400,
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.71.0.0/16' }]], dataDir },
        };
  const nsenter = ['nsenter', `--net=/var/run/netns/${at.node}`];
  const [bin, prefix] = {
    tern: [TERN_BIN, nsenter],
    'tern-etcd': [TERN_BIN, nsenter],
    'tern-sh': [ternSh, nsenter],
    'tern-esm': [TERN_ESM, [...nsenter, process.execPath]],
    ptp: ['/usr/lib/cni/ptp', nsenter],
  }[plugin] as [string, string[]];
  return runPlugin(bin, env, JSON.stringify(conf), prefix);
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (x: number) => x.toFixed(1).padStart(8);

describe('CNI ADD/DEL latency', () => {
  it(`${ROUNDS} sequential ADD+DEL per plugin, the node -e 0 floor, and ${CONCURRENT} concurrent ADDs`, async () => {
    const samples: Record<string, number[]> = {};
    const add = (k: string, ms: number) => (samples[k] ??= []).push(ms);
    const pods = {
      tern: await lab.pod('bt'),
      'tern-etcd': await etcdLab!.pod('bd'),
      'tern-sh': await lab.pod('bs'),
      'tern-esm': await lab.pod('be'),
      ptp: await lab.pod('bp'),
    };
    const floorEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const logStart = lab.agentLog.length;
    const etcdLogStart = etcdLab!.agentLog.length;
    // Per invocation of a tern variant: its wall time and the floor measured in the same round, so
    // that the gap can be taken pairwise (robust to load drifting between rounds).
    const calls = new Map<string, { key: string; wall: number; floor: number }>();
    // Interleave the plugins round by round so load changes on the machine hit all of them alike.
    for (let i = 0; i < ROUNDS; i++) {
      const [floor] = await timed(() =>
        runPlugin('0', floorEnv, '', ['nsenter', `--net=/var/run/netns/${lab.node}`, process.execPath, '-e']),
      );
      add('node -e 0', floor);
      // Rotate the order every round: a plugin never always follows the same one (a DEL leaves
      // the kernel destroying a veth for a while, which the next call would otherwise always pay).
      const plugins = [...TERNS, 'ptp'] as const;
      for (const plugin of plugins.map((_, k) => plugins[(i + k) % plugins.length]!)) {
        const id = `${plugin}${i}`;
        const [a, ra] = await timed(() => invoke(plugin, 'ADD', id, pods[plugin].path));
        expect(ra.code, `${plugin} ADD: ${ra.stdout}${ra.stderr}`).toBe(0);
        const [d, rd] = await timed(() => invoke(plugin, 'DEL', id, pods[plugin].path));
        expect(rd.code, `${plugin} DEL: ${rd.stdout}${rd.stderr}`).toBe(0);
        add(`${plugin} ADD`, a);
        add(`${plugin} DEL`, d);
        calls.set(`ADD ${id}`, { key: `${plugin} ADD`, wall: a, floor });
        calls.set(`DEL ${id}`, { key: `${plugin} DEL`, wall: d, floor });
      }
    }

    // The agent's own time per request (from its log): what the executable's start-up does not hide.
    const agentLines = [
      ...lab.agentLog
        .slice(logStart)
        .split('\n')
        .map((line) => ['agent', line] as const),
      ...etcdLab!.agentLog
        .slice(etcdLogStart)
        .split('\n')
        .map((line) => ['agent-etcd', line] as const),
    ];
    for (const [agent, line] of agentLines) {
      if (!line.includes('"cni ok"')) continue;
      const entry = JSON.parse(line) as { command: string; containerId: string; ms: number };
      add(`${agent} ${entry.command}`, entry.ms);
      const call = calls.get(`${entry.command} ${entry.containerId}`);
      if (!call) continue;
      // Paired: this call's wall time over its round's floor, and that minus the agent's own work
      // for this very request = what the executable costs beyond `node -e 0`.
      add(`${call.key} gap`, call.wall - call.floor);
      add(`${call.key} exe`, call.wall - call.floor - entry.ms);
    }

    const concurrent: Record<string, { wall: number; each: number[]; delWall: number }> = {};
    for (const plugin of ['tern', 'ptp'] as const) {
      const nss = await Promise.all(
        Array.from({ length: CONCURRENT }, (_, i) => lab.pod(`${plugin[0]}c${i}`)),
      );
      const each: number[] = [];
      const [wall, adds] = await timed(() =>
        Promise.all(
          nss.map(async (ns, i) => {
            const [ms, r] = await timed(() => invoke(plugin, 'ADD', `${plugin}c${i}`, ns.path));
            each.push(ms);
            return r;
          }),
        ),
      );
      expect(adds.filter((r) => r.code !== 0).map((r) => r.stdout)).toEqual([]);
      const ips = adds.map((r) => (r.json?.ips as { address: string }[])[0]!.address);
      expect(new Set(ips).size).toBe(CONCURRENT);
      const [delWall, dels] = await timed(() =>
        Promise.all(nss.map((ns, i) => invoke(plugin, 'DEL', `${plugin}c${i}`, ns.path))),
      );
      expect(dels.map((r) => r.code)).toEqual(dels.map(() => 0));
      concurrent[plugin] = { wall, each, delWall };
    }
    expect(await lab.residue()).toEqual({ veths: [], routes: [] });

    const floor = pct(samples['node -e 0']!, 50);
    const rows = [
      'node -e 0',
      ...['ADD', 'DEL'].flatMap((c) => [
        ...TERNS.map((t) => `${t} ${c}`),
        `agent ${c}`,
        `agent-etcd ${c}`,
        `ptp ${c}`,
      ]),
    ].map(
      (k) =>
        `${k.padEnd(14)}${fmt(pct(samples[k]!, 50))}${fmt(pct(samples[k]!, 99))}${fmt(pct(samples[k]!, 50) - floor)}`,
    );
    const p50 = (k: string) => pct(samples[k]!, 50).toFixed(1);
    const gap = (k: string) => (pct(samples[`tern ${k}`]!, 50) - floor).toFixed(1);
    const ratio = (k: string) => (pct(samples[`tern ${k}`]!, 50) / pct(samples[`ptp ${k}`]!, 50)).toFixed(2);
    const conc = (['tern', 'ptp'] as const).map(
      (p) =>
        `${p.padEnd(14)}${fmt(concurrent[p]!.wall)}${fmt(pct(concurrent[p]!.each, 50))}${fmt(pct(concurrent[p]!.each, 99))}${fmt(concurrent[p]!.delWall)}`,
    );
    console.log(
      [
        '',
        `CNI latency, ms (${ROUNDS} sequential rounds, interleaved; exec under nsenter --net for all)`,
        '(agent ADD/DEL: time inside the warm agent, part of tern ADD/DEL; agent-etcd: the same with IPAM in etcd)',
        `${'what'.padEnd(14)}${'p50'.padStart(8)}${'p99'.padStart(8)}${'p50-floor'.padStart(10)}`,
        ...rows,
        `ratio tern/ptp p50: ADD ${ratio('ADD')}, DEL ${ratio('DEL')}`,
        `tern ADD p50 − floor: ${gap('ADD')} ms, of which the agent's own work (p50) ${p50('agent ADD')} ms`,
        '',
        "Paired per call (same round): wall − floor, and wall − floor − the agent's time for that request",
        `${'what'.padEnd(14)}${'gap p50'.padStart(8)}${'exe p50'.padStart(8)}${'exe p90'.padStart(8)}`,
        ...['ADD', 'DEL'].flatMap((c) =>
          TERNS.map(
            (t) =>
              `${`${t} ${c}`.padEnd(14)}${fmt(pct(samples[`${t} ${c} gap`]!, 50))}${fmt(pct(samples[`${t} ${c} exe`]!, 50))}${fmt(pct(samples[`${t} ${c} exe`]!, 90))}`,
          ),
        ),
        '',
        `${CONCURRENT} concurrent ADDs then ${CONCURRENT} concurrent DELs, ms`,
        `${'plugin'.padEnd(14)}${'ADD wall'.padStart(8)}${'ADD p50'.padStart(8)}${'ADD p99'.padStart(8)}${'DEL wall'.padStart(8)}`,
        ...conc,
        '',
      ].join('\n'),
    );
  });
});
