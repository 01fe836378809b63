// Where a label change's time goes, on the bench cluster loaded into a scratch node namespace:
// every iptables-restore / ipset call of a sync timed on its own (per family), render vs apply,
// and what one trivial iptables-restore transaction costs in a loaded table vs an empty one (the
// floor any chain change pays with iptables-nft).
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { afterAll, expect, test } from 'vitest';
import { hostVethName } from '../../model/index.js';
import {
  netnsRunner,
  PolicyEngine,
  RestoreSession,
  type PolicyPod,
  type Runner,
} from '../../policy/index.js';
import { NetnsSet } from '../../test/support/netns.js';
import { apps, benchCluster } from './cluster.js';

const NODE = 'bench-node';
const ROUNDS = 21;

interface Call {
  readonly what: string;
  readonly ms: number;
}

/** Wraps a runner so that every command's wall time is recorded under a short label. */
function timingRunner(inner: Runner, calls: Call[]): Runner {
  return async (cmd, args, input) => {
    const t0 = performance.now();
    try {
      return await inner(cmd, args, input);
    } finally {
      const sub = cmd === 'ipset' ? ` ${args[0] ?? ''}` : '';
      calls.push({ what: `${cmd}${sub}`, ms: performance.now() - t0 });
    }
  };
}

const pct = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? 0;
};
const p50p95 = (xs: readonly number[]) => `${pct(xs, 0.5).toFixed(1)} / ${pct(xs, 0.95).toFixed(1)} ms`;

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

const scratch = new NetnsSet();
afterAll(() => scratch.cleanup());

const pod = (name: string, labels: Record<string, string>): PolicyPod => ({
  namespace: 'ns0',
  name,
  labels,
  ips: name === 'client' ? ['10.61.0.1', 'fd00:61::1'] : ['10.61.0.2', 'fd00:61::2'],
  node: NODE,
  ports: [],
  hostInterfaces: [hostVethName('ns0', name, 'eth0')],
});

async function loadedEngine(node: string, runner: Runner, restoreSessions: boolean) {
  const input = benchCluster(
    NODE,
    pod('client', { app: 'app0', tier: 'web' }),
    pod('server', { app: 'app0', tier: 'db' }),
  );
  const engine = new PolicyEngine({ nodeName: NODE, runner, restoreSessions });
  for (const ns of input.namespaces) engine.upsertNamespace(ns);
  for (const p of input.pods) engine.upsertPod(p);
  for (const p of input.policies) engine.upsertPolicy(p);
  await engine.sync();
  return { engine, local: input.pods[50]! };
}

/** Label changes of a local pod that change which policies select it (its chains are rewritten). */
async function localChanges(engine: PolicyEngine, local: PolicyPod, calls?: Call[]) {
  const total: number[] = [];
  const render: number[] = [];
  const skew: number[] = [];
  const byCall = new Map<string, number[]>();
  let chainsWritten = 0;
  for (let i = 0; i < ROUNDS; i++) {
    if (calls) calls.length = 0;
    const t0 = performance.now();
    engine.upsertPod({ ...local, labels: { ...local.labels, app: apps[i % apps.length]! } });
    const r = await engine.sync();
    total.push(performance.now() - t0);
    render.push(r.renderMs);
    if (r.chainsWritten > 0) skew.push(r.familySkewMs);
    chainsWritten += r.chainsWritten;
    for (const c of calls ?? []) byCall.set(c.what, [...(byCall.get(c.what) ?? []), c.ms]);
  }
  expect(chainsWritten).toBeGreaterThan(0);
  return { total, render, skew, byCall };
}

test('label change latency breakdown', async () => {
  const node = await scratch.add('node');
  const empty = await scratch.add('empty');
  const rows: string[] = [];
  const row = (label: string, xs: readonly number[], extra = '') =>
    rows.push(`${label.padEnd(46)} ${p50p95(xs)}${extra}`);

  // 1. One process per transaction (the previous applier), every call timed.
  const calls: Call[] = [];
  const oneShot = await loadedEngine(node, timingRunner(netnsRunner(node), calls), false);
  const a = await localChanges(oneShot.engine, oneShot.local, calls);
  row('local pod change, one restore per call: total', a.total);
  row('  render (compile)', a.render);
  for (const [what, ms] of a.byCall) row(`  ${what}`, ms, `  (${ms.length} in ${ROUNDS} changes)`);
  row('  IPv4/IPv6 commit skew', a.skew);
  expect(await oneShot.engine.checkDrift()).toEqual([]);
  await oneShot.engine.close();

  // 2. Long-lived restore sessions, on the same node (a new engine adopts it with a full apply).
  const sessions = await loadedEngine(node, netnsRunner(node), true);
  const b = await localChanges(sessions.engine, sessions.local);
  row('local pod change, restore sessions: total', b.total);
  row('  render (compile)', b.render);
  row('  IPv4/IPv6 commit skew', b.skew);
  expect(await sessions.engine.checkDrift()).toEqual([]);

  // 2b. Where a session transaction's time goes, and the IPv4/IPv6 window: the body of an
  // endpoint-sized chain rewrite is fed first (resolves once parsed), then COMMIT (resolves once
  // committed), both families side by side; vs the whole transaction in one write.
  const run4 = netnsRunner(node);
  const s4 = new RestoreSession(run4.spawn!, 'iptables-restore');
  const s6 = new RestoreSession(run4.spawn!, 'ip6tables-restore');
  const policyChains = [...sessions.engine.state.render().chains[4].keys()].filter((c) =>
    c.startsWith('tern-pi-'),
  );
  const jumps = (i: number) =>
    [
      '*filter',
      ':bench-ep - [0:0]',
      ...policyChains.slice(i % 50, (i % 50) + 6).map((c) => `-A bench-ep -j ${c}`),
      '',
    ].join('\n');
  const deletion = ['*filter', ':bench-gone - [0:0]', '-X bench-gone', ''].join('\n');
  for (const [label, text] of [
    ['6 jumps to policy chains', jumps],
    ['create + delete a chain (-X)', () => deletion],
  ] as const) {
    const p: number[] = [];
    const c: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      p.push(await timed(() => s4.apply(text(i))));
      c.push(await timed(() => s4.apply('COMMIT\n')));
    }
    row(`session IPv4, ${label}: parse`, p);
    row(`session IPv4, ${label}: COMMIT`, c);
  }
  const body = (i: number) =>
    [
      '*filter',
      ':bench-ep - [0:0]',
      ...Array.from({ length: 12 }, (_, k) => `-A bench-ep -m mark --mark ${i + k} -j RETURN`),
      '',
    ].join('\n');
  const parse: number[] = [];
  const commit: number[] = [];
  const splitSkew: number[] = [];
  const wholeSkew: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    await Promise.all([s4.apply(body(i)), s6.apply(body(i))]);
    parse.push(performance.now() - t0);
    const t1 = performance.now();
    const done = await Promise.all([s4, s6].map((s) => s.apply('COMMIT\n').then(() => performance.now())));
    commit.push(performance.now() - t1);
    splitSkew.push(Math.abs(done[0]! - done[1]!));
    const whole = await Promise.all(
      [s4, s6].map((s) => s.apply(`${body(i + 100)}COMMIT\n`).then(() => performance.now())),
    );
    wholeSkew.push(Math.abs(whole[0]! - whole[1]!));
  }
  await Promise.all([s4.close(), s6.close()]);
  row('session, 12-rule chain: parse (both families)', parse);
  row('session, 12-rule chain: COMMIT (both families)', commit);
  row('  IPv4/IPv6 skew, one write per family', wholeSkew);
  row('  IPv4/IPv6 skew, parse first, then COMMIT both', splitSkew);

  // 3. The floor: one trivial chain rewrite, loaded node vs empty namespace, process vs session.
  const tiny = '*filter\n:bench-probe - [0:0]\n-A bench-probe -j RETURN\nCOMMIT\n';
  for (const [label, ns] of [
    ['loaded', node],
    ['empty', empty],
  ] as const) {
    const run = netnsRunner(ns);
    for (const cmd of ['iptables-restore', 'ip6tables-restore']) {
      const spawned: number[] = [];
      const session = new RestoreSession(run.spawn!, cmd);
      const fed: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        spawned.push(await timed(() => run(cmd, ['--noflush', '--wait'], tiny)));
        fed.push(await timed(() => session.apply(tiny)));
      }
      await session.close();
      row(`trivial ${cmd}, ${label} table, new process`, spawned);
      row(`trivial ${cmd}, ${label} table, session`, fed.slice(1));
    }
  }
  const run = netnsRunner(empty);
  const spawnFloor: number[] = [];
  for (let i = 0; i < ROUNDS; i++) spawnFloor.push(await timed(() => run('true', [])));
  row('ip netns exec true (spawn floor)', spawnFloor);
  await sessions.engine.uninstall();
  console.log([`label change breakdown (load ${loadavg()[0]!.toFixed(1)}), p50 / p95:`, ...rows].join('\n'));
});
