// Source validation: what each candidate mechanism costs the pod-to-pod path and the CNI ADD, in
// one run on one node with the bench cluster's policy loaded (1000 pods, 500 policies):
//   off            no raw-table hook (the reference)
//   rpfilter       tern's choice: one static `-i tern+ -m rpfilter --invert` rule per family
//   per-interface  one `-i <veth> -s <ip> -j RETURN` rule per local pod (110), then `-i tern+ -j DROP`;
//                  the measured pods' rules last (the worst case of a flat list)
//   rp_filter=1    the kernel's own check on the two host ends (IPv4 only; after conntrack)
// Rates are many short rounds, modes interleaved within each round so the shared machine's load
// hits all alike; the ratio is the median of the per-round ratios against `off`.
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { hostVethName } from '../../model/index.js';
import { PolicyEngine, RestoreSession, SourceValidation } from '../../policy/index.js';
import { LAB_NODE, PolicyLab } from '../../test/support/policy-lab.js';
import { benchCluster, LOCAL } from './cluster.js';
import { PodRates } from './rates.js';

const ROUNDS = Number(process.env.TERN_SRCVAL_BENCH_ROUNDS) || 15;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let lab: PolicyLab;
let rates: PodRates;
let engine: PolicyEngine;

beforeAll(async () => {
  lab = await PolicyLab.create({ namespaces: ['ns0'], pods: ['client', 'server'] });
  rates = await PodRates.start(lab.pod('ns0/client'), lab.pod('ns0/server'));
}, 120_000);

afterAll(async () => {
  await rates?.stop();
  await engine?.uninstall();
  await lab?.cleanup();
});

const MODES = ['off', 'rpfilter', 'per-interface', 'rp_filter=1'] as const;
type Mode = (typeof MODES)[number];

test('source validation: mechanisms compared', async () => {
  const client = lab.pod('ns0/client');
  const server = lab.pod('ns0/server');
  const input = benchCluster(
    LAB_NODE,
    lab.policyPod(client, { app: 'app0', tier: 'web' }),
    lab.policyPod(server, { app: 'app0', tier: 'db' }),
  );
  engine = new PolicyEngine({ nodeName: LAB_NODE, runner: lab.runner });
  for (const ns of input.namespaces) engine.upsertNamespace(ns);
  for (const p of input.pods) engine.upsertPod(p);
  for (const p of input.policies) engine.upsertPolicy(p);
  await engine.sync();
  await engine.installSourceValidation();

  // The per-interface alternative, loaded next to tern's chains and hooked only in its mode.
  const local = input.pods.slice(0, LOCAL).filter((p) => p !== input.pods[0] && p !== input.pods[1]);
  const perIf = (f: 4 | 6, iface: string, ip: string) =>
    `-A tern-bench-srcif -i ${iface} -s ${ip}/${f === 4 ? 32 : 128} -j RETURN`;
  const perIfText = (f: 4 | 6) =>
    [
      '*raw',
      ':tern-bench-srcif - [0:0]',
      ...local.map((p) => perIf(f, p.hostInterfaces[0]!, p.ips[f === 4 ? 0 : 1]!)),
      ...[client, server].map((p) => perIf(f, p.veth, f === 4 ? p.ip4 : p.ip6)),
      `-A tern-bench-srcif -i tern+ -j DROP`,
      'COMMIT',
      '',
    ].join('\n');
  await lab.runner('iptables-restore', ['--noflush'], perIfText(4));
  await lab.runner('ip6tables-restore', ['--noflush'], perIfText(6));

  const raw = (args: string[]) => lab.nodeExec('iptables', ['-t', 'raw', ...args]);
  const sysctl = (value: 0 | 1) =>
    Promise.all(
      [client, server].map((p) =>
        lab.nodeExec('sysctl', ['-qw', `net.ipv4.conf.${p.veth}.rp_filter=${value}`]),
      ),
    );
  const set = async (mode: Mode) => {
    await raw(['-D', 'PREROUTING', '-j', 'tern-PREROUTING']).catch(() => undefined);
    await raw(['-D', 'PREROUTING', '-j', 'tern-bench-srcif']).catch(() => undefined);
    await sysctl(0);
    if (mode === 'rpfilter') await raw(['-I', 'PREROUTING', '1', '-j', 'tern-PREROUTING']);
    if (mode === 'per-interface') await raw(['-I', 'PREROUTING', '1', '-j', 'tern-bench-srcif']);
    if (mode === 'rp_filter=1') await sysctl(1);
  };

  const perMode = () =>
    Object.fromEntries(MODES.map((m) => [m, { rr: [] as number[], conn: [] as number[] }])) as Record<
      Mode,
      { rr: number[]; conn: number[] }
    >;
  const samples = perMode();
  const cpu = perMode();
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order so no mode always runs first (or right after another) in a round.
    for (let i = 0; i < MODES.length; i++) {
      const mode = MODES[(i + r) % MODES.length]!;
      await set(mode);
      for (const kind of ['rr', 'conn'] as const) {
        const m = await rates.measure(kind, 400);
        samples[mode][kind].push(m.perSecond);
        cpu[mode][kind].push(m.cpuUsPerOp);
      }
    }
  }
  await set('rpfilter');
  expect(await engine.checkDrift()).toEqual([]);
  // Nothing legitimate was dropped along the way.
  expect((await engine.spoofDrops()).reduce((n, d) => n + d.packets, 0)).toBe(0);

  // What a CNI ADD would have to do per pod. rpfilter: nothing (the route the ADD installs anyway
  // is the check). per-interface: write the pod's rules in both families, one-shot processes and
  // through long-lived sessions. rp_filter=1: one /proc write (sync, microseconds; docs/cni.md).
  const addRule = (f: 4 | 6, i: number) =>
    `*raw\n-I tern-bench-srcif 1 -i ${hostVethName('bench', `p${i}`, 'eth0')} -s ${
      f === 4 ? `10.61.0.${i}/32` : `fd00:61::${i}/128`
    } -j RETURN\nCOMMIT\n`;
  const oneShot: number[] = [];
  const session: number[] = [];
  const spawn = lab.runner.spawn!;
  const sessions = {
    4: new RestoreSession(spawn, 'iptables-restore'),
    6: new RestoreSession(spawn, 'ip6tables-restore'),
  };
  for (let i = 1; i <= 20; i++) {
    let t0 = performance.now();
    await Promise.all(
      ([4, 6] as const).map((f) =>
        lab.runner(
          f === 4 ? 'iptables-restore' : 'ip6tables-restore',
          ['--noflush', '--wait'],
          addRule(f, i),
        ),
      ),
    );
    oneShot.push(performance.now() - t0);
    t0 = performance.now();
    await Promise.all(([4, 6] as const).map((f) => sessions[f].apply(addRule(f, 100 + i))));
    session.push(performance.now() - t0);
  }
  await Promise.all([sessions[4].close(), sessions[6].close()]);
  for (const f of [4, 6] as const) {
    await lab.runner(f === 4 ? 'iptables' : 'ip6tables', ['-t', 'raw', '-F', 'tern-bench-srcif']);
    await lab.runner(f === 4 ? 'iptables' : 'ip6tables', ['-t', 'raw', '-X', 'tern-bench-srcif']);
  }
  // The installed rules themselves: one restore per family, at agent start only.
  const install = performance.now();
  await new SourceValidation(lab.runner, [4, 6]).apply();
  const installMs = performance.now() - install;

  const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!)).toFixed(2) + '×';
  const fmt = (x: number, unit: string) => `${x.toFixed(x < 10 ? 2 : 0)} ${unit}`;
  const rows: string[][] = [
    [
      'mechanism',
      'rr /s',
      'vs off',
      'rr CPU µs/op',
      'vs off',
      'conn /s',
      'vs off',
      'conn CPU µs/op',
      'vs off',
      'per-ADD work (p50)',
    ],
  ];
  const perAdd: Record<Mode, string> = {
    off: '-',
    rpfilter: 'none',
    'per-interface': `${fmt(median(oneShot), 'ms')} one-shot, ${fmt(median(session), 'ms')} via sessions`,
    'rp_filter=1': 'one /proc write',
  };
  for (const m of MODES) {
    rows.push([
      m,
      fmt(median(samples[m].rr), ''),
      ratio(samples[m].rr, samples.off.rr),
      fmt(median(cpu[m].rr), ''),
      ratio(cpu[m].rr, cpu.off.rr),
      fmt(median(samples[m].conn), ''),
      ratio(samples[m].conn, samples.off.conn),
      fmt(median(cpu[m].conn), ''),
      ratio(cpu[m].conn, cpu.off.conn),
      perAdd[m],
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  console.log(
    [
      `source validation bench: ${ROUNDS} rounds of 400 ms per mode and rate, bench cluster loaded ` +
        `(load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')} on ${availableParallelism()} CPUs); install at agent start ${fmt(installMs, 'ms')}`,
      line(rows[0]!),
      widths.map((w) => '-'.repeat(w)).join('-|-'),
      ...rows.slice(1).map(line),
      `samples rr: ${MODES.map((m) => `${m} ${samples[m].rr.map(Math.round).join(' ')}`).join(' | ')}`,
      `samples conn: ${MODES.map((m) => `${m} ${samples[m].conn.map(Math.round).join(' ')}`).join(' | ')}`,
      `CPU µs/op rr: ${MODES.map((m) => `${m} ${cpu[m].rr.map(Math.round).join(' ')}`).join(' | ')}`,
      `CPU µs/op conn: ${MODES.map((m) => `${m} ${cpu[m].conn.map(Math.round).join(' ')}`).join(' | ')}`,
    ].join('\n'),
  );
});
