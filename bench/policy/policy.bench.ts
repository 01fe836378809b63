// 1000 pods, 500 NetworkPolicies: compile time; apply time against raw `ipset restore` +
// `iptables-restore` of the same text; latency of one label change; and request/response and
// connection rates between two real pods with those policies against none. All in namespaces.
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { compile, netnsRunner, PolicyApplier, PolicyEngine, type Compiled } from '../../policy/index.js';
import { NetnsSet } from '../../test/support/netns.js';
import { LAB_NODE, PolicyLab } from '../../test/support/policy-lab.js';
import { apps, benchCluster, LOCAL, NAMESPACES, PODS, tiers } from './cluster.js';
import { PodRates } from './rates.js';

// ---- measurement helpers ----------------------------------------------------------------------

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!;
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

let lab: PolicyLab;
const scratch = new NetnsSet();
let rates: PodRates;

beforeAll(async () => {
  lab = await PolicyLab.create({ namespaces: ['ns0'], pods: ['client', 'server'] });
  rates = await PodRates.start(lab.pod('ns0/client'), lab.pod('ns0/server'));
}, 120_000);

afterAll(async () => {
  await rates?.stop();
  await lab?.cleanup();
  await scratch.cleanup();
});

const rate = (mode: 'rr' | 'conn', ms?: number) => rates.rate(mode, ms);

test('policy bench: 1000 pods, 500 policies', async () => {
  const input = benchCluster(
    LAB_NODE,
    lab.policyPod(lab.pod('ns0/client'), { app: 'app0', tier: 'web' }),
    lab.policyPod(lab.pod('ns0/server'), { app: 'app0', tier: 'db' }),
  );
  const rows: [string, string, string, string][] = [];
  const fmt = (x: number, unit: string) => `${x.toFixed(x < 10 ? 2 : 0)} ${unit}`;

  // Compile.
  let compiled!: Compiled;
  const compileMs: number[] = [];
  const compileCpuMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const cpu = process.cpuUsage();
    compileMs.push(
      await timed(async () => {
        compiled = compile({ nodeName: LAB_NODE, ...input });
      }),
    );
    const used = process.cpuUsage(cpu);
    compileCpuMs.push((used.user + used.system) / 1000);
  }
  const rules = [4, 6].reduce(
    (n, f) => n + [...compiled.desired.chains[f as 4 | 6].values()].reduce((m, c) => m + c.length, 0),
    0,
  );
  const members = [...compiled.desired.sets.values()].reduce((n, s) => n + s.members.length, 0);
  console.log(
    `desired state: ${compiled.desired.sets.size} sets (${members} members), ${rules} rules over IPv4+IPv6`,
  );
  rows.push([
    'compile (full), wall / CPU',
    `${fmt(median(compileMs), 'ms')} / ${fmt(median(compileCpuMs), 'ms')}`,
    '-',
    '-',
  ]);

  // Apply from scratch: tern's applier (one process per call, and through restore sessions) vs raw
  // restore of the same text, each in a fresh namespace.
  const ternMs: number[] = [];
  const sessionMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const a = await scratch.add(`apply-t${i}`);
    ternMs.push(await timed(() => new PolicyApplier(netnsRunner(a)).applyFull(compiled.desired)));
    const c = await scratch.add(`apply-s${i}`);
    const withSessions = new PolicyApplier(netnsRunner(c), { sessions: true });
    sessionMs.push(await timed(() => withSessions.applyFull(compiled.desired)));
    await withSessions.close();
    const b = await scratch.add(`apply-r${i}`);
    const run = netnsRunner(b);
    rawMs.push(
      await timed(async () => {
        await run('ipset', ['restore'], compiled.text.ipset);
        await Promise.all([
          run('iptables-restore', ['--noflush', '--wait'], compiled.text.iptables[4]),
          run('ip6tables-restore', ['--noflush', '--wait'], compiled.text.iptables[6]),
        ]);
      }),
    );
    expect(await new PolicyApplier(netnsRunner(a)).drift(compiled.desired)).toEqual([]);
    expect(await new PolicyApplier(netnsRunner(c)).drift(compiled.desired)).toEqual([]);
  }
  await scratch.cleanup();
  rows.push([
    'apply (full, from empty), one process per call',
    fmt(median(ternMs), 'ms'),
    fmt(median(rawMs), 'ms'),
    (median(ternMs) / median(rawMs)).toFixed(2) + '×',
  ]);
  rows.push([
    'apply (full, from empty), restore sessions (started cold)',
    fmt(median(sessionMs), 'ms'),
    fmt(median(rawMs), 'ms'),
    (median(sessionMs) / median(rawMs)).toFixed(2) + '×',
  ]);

  // Rates without policy.
  const base = { rr: [] as number[], conn: [] as number[] };
  const withPolicy = { rr: [] as number[], conn: [] as number[] };

  // The engine on the lab node: full state, then label changes. The reference for label changes
  // is the same engine with one restore process per call (restoreSessions: false), measured in
  // alternating blocks on the same node so that the machine's load hits both alike; a block
  // starts with checkDrift(), which puts that engine's view back in full.
  const loaded = async (restoreSessions: boolean) => {
    const e = new PolicyEngine({ nodeName: LAB_NODE, runner: lab.runner, restoreSessions });
    for (const ns of input.namespaces) e.upsertNamespace(ns);
    for (const p of input.pods) e.upsertPod(p);
    for (const p of input.policies) e.upsertPolicy(p);
    return { engine: e, first: await e.sync() };
  };
  const reference = await loaded(false);
  const { engine, first } = await loaded(true);
  expect(
    engine.explain('ns0', 'server', { from: { pod: { namespace: 'ns0', name: 'client' } }, port: 7000 })
      .verdict,
  ).toBe('allow');
  expect(
    engine.explain('ns0', 'server', { from: { pod: { namespace: 'ns0', name: 'client' } }, port: 7001 })
      .verdict,
  ).toBe('deny');
  rows.push([
    'engine first sync (render+apply), from empty node',
    fmt(reference.first.durationMs, 'ms'),
    '-',
    '-',
  ]);
  rows.push([
    'engine first sync over that state (agent restart adopting it)',
    fmt(first.durationMs, 'ms'),
    '-',
    '-',
  ]);

  // Three kinds of label change: a remote pod moving between selector sets (ipset only); a local
  // pod whose selection changes (its chains are rewritten; pod 50: no set it is in changes); a
  // local pod whose selection and set membership both change (pod 64: ipset and iptables).
  const changes = [
    {
      label: 'remote pod (sets only)',
      pod: input.pods[500]!,
      labels: (i: number) => ({ app: apps[i % apps.length]!, tier: tiers[i % 3]! }),
    },
    {
      label: 'local pod, selection changes',
      pod: input.pods[50]!,
      labels: (i: number) => ({ app: apps[i % apps.length]! }),
    },
    {
      label: 'local pod, selection and sets change',
      pod: input.pods[64]!,
      labels: (i: number) => ({ app: apps[i % apps.length]! }),
    },
  ];
  const skew: number[] = [];
  for (const change of changes) {
    const ms = { sessions: [] as number[], oneShot: [] as number[] };
    let chains = 0;
    let setOps = 0;
    for (let block = 0; block < 4; block++) {
      const sessions = block % 2 === 1;
      const e = sessions ? engine : reference.engine;
      await e.checkDrift();
      for (let i = 0; i < 11; i++) {
        const t0 = performance.now();
        e.upsertPod({ ...change.pod, labels: { ...change.pod.labels, ...change.labels(block * 11 + i) } });
        const r = await e.sync();
        (sessions ? ms.sessions : ms.oneShot).push(performance.now() - t0);
        chains += r.chainsWritten;
        setOps += r.setMemberOps + r.setsWritten;
        if (sessions && r.chainsWritten > 0) skew.push(r.familySkewMs);
      }
    }
    // Each kind did what it says: the remote one never touched a chain, the local ones did.
    if (change.label.startsWith('remote')) expect(chains).toBe(0);
    else expect(chains).toBeGreaterThan(0);
    if (!change.label.endsWith('selection changes')) expect(setOps).toBeGreaterThan(0);
    rows.push([
      `label change, ${change.label} (p50 / p95)`,
      `${fmt(median(ms.sessions), 'ms')} / ${fmt(p95(ms.sessions), 'ms')}`,
      `${fmt(median(ms.oneShot), 'ms')} / ${fmt(p95(ms.oneShot), 'ms')}`,
      (median(ms.sessions) / median(ms.oneShot)).toFixed(2) + '×',
    ]);
  }
  rows.push([
    'IPv4 vs IPv6 chain commit skew, local changes (p50 / max)',
    `${fmt(median(skew), 'ms')} / ${fmt(Math.max(...skew), 'ms')}`,
    '-',
    '-',
  ]);
  await reference.engine.close();
  expect(await engine.checkDrift()).toEqual([]);

  // Rates, many short rounds interleaved so that the (shared, busy) machine's load hits both
  // alike. "No policy" unhooks tern's jump from FORWARD (the rules stay loaded but are never
  // traversed); one iptables call toggles it.
  const hook = (on: boolean) =>
    lab.nodeExec('iptables', [on ? '-I' : '-D', 'FORWARD', ...(on ? ['1'] : []), '-j', 'tern-FORWARD']);
  for (let r = 0; r < 15; r++) {
    await hook(false);
    base.rr.push(await rate('rr', 400));
    base.conn.push(await rate('conn', 400));
    await hook(true);
    withPolicy.rr.push(await rate('rr', 400));
    withPolicy.conn.push(await rate('conn', 400));
  }
  expect(await engine.checkDrift()).toEqual([]);
  console.log(
    `rate samples (/s), interleaved: rr none ${base.rr.map(Math.round).join(' ')} | rr policy ${withPolicy.rr.map(Math.round).join(' ')}` +
      ` | conn none ${base.conn.map(Math.round).join(' ')} | conn policy ${withPolicy.conn.map(Math.round).join(' ')}`,
  );
  // With policy in force, the server refuses what the policy does not allow.
  engine.upsertPolicy({
    ...input.policies.at(-1)!,
    spec: { ...input.policies.at(-1)!.spec, ingress: [{ ports: [{ port: 7001 }] }] },
  });
  await engine.sync();
  await expect(rate('conn', 300)).rejects.toThrow();
  await engine.uninstall();
  // The ratio is the median of each round's policy/none pair: rounds share the machine's load.
  const pairedRatio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!)).toFixed(2) + '×';
  rows.push([
    'request/response rate, one connection',
    fmt(median(withPolicy.rr), '/s'),
    fmt(median(base.rr), '/s'),
    pairedRatio(withPolicy.rr, base.rr),
  ]);
  rows.push([
    'new connections rate (SYN through policy)',
    fmt(median(withPolicy.conn), '/s'),
    fmt(median(base.conn), '/s'),
    pairedRatio(withPolicy.conn, base.conn),
  ]);

  const header: [string, string, string, string] = [
    'measure',
    'tern',
    'reference (raw / no policy / one process per call)',
    'ratio',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  console.log(
    [
      `policy bench: ${PODS} pods (${LOCAL} local), ${input.policies.length} policies, ${NAMESPACES} namespaces`,
      `(load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${availableParallelism()} CPUs: absolute times are inflated when the machine is busy)`,
      line(header),
      widths.map((w) => '-'.repeat(w)).join('-|-'),
      ...rows.map(line),
    ].join('\n'),
  );
});
