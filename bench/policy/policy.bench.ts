// 1000 pods, 500 NetworkPolicies: compile time; apply time against raw `ipset restore` +
// `iptables-restore` of the same text; latency of one label change; and request/response and
// connection rates between two real pods with those policies against none. All in namespaces.
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { hostVethName, type NetworkPolicy } from '../../model/index.js';
import {
  compile,
  netnsRunner,
  PolicyApplier,
  PolicyEngine,
  type Compiled,
  type PolicyNamespace,
  type PolicyPod,
} from '../../policy/index.js';
import { NetnsSet, stopProcess } from '../../test/support/netns.js';
import { LAB_NODE, PolicyLab } from '../../test/support/policy-lab.js';

const PODS = 1000;
const POLICIES = 500;
const NAMESPACES = 20;
const LOCAL = 110;

// ---- a deterministic cluster ------------------------------------------------------------------

let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
const apps = Array.from({ length: 10 }, (_, i) => `app${i}`);
const tiers = ['web', 'api', 'db'];

function cluster(lab: PolicyLab): {
  pods: PolicyPod[];
  namespaces: PolicyNamespace[];
  policies: NetworkPolicy[];
} {
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => ({
    name: `ns${i}`,
    labels: { team: `team${i % 5}`, env: i % 2 ? 'prod' : 'dev' },
  }));
  const client = lab.policyPod(lab.pod('ns0/client'), { app: 'app0', tier: 'web' });
  const server = lab.policyPod(lab.pod('ns0/server'), { app: 'app0', tier: 'db' });
  const pods: PolicyPod[] = [client, server];
  for (let i = pods.length; i < PODS; i++) {
    const local = i < LOCAL;
    pods.push({
      namespace: `ns${i % NAMESPACES}`,
      name: `pod${i}`,
      labels: { app: apps[rand(apps.length)]!, tier: tiers[rand(3)]!, idx: String(i) },
      ips: [`10.60.${i >> 8}.${i & 255}`, `fd00:60::${i.toString(16)}`],
      node: local ? LAB_NODE : `node${i % 9}`,
      ports: [
        { name: 'http', port: 8080, protocol: 'TCP' },
        { name: 'metrics', port: 9090, protocol: 'TCP' },
      ],
      hostInterfaces: local ? [hostVethName(`ns${i % NAMESPACES}`, `pod${i}`, 'eth0')] : [],
    });
  }
  const policies: NetworkPolicy[] = [];
  for (let i = 0; i < POLICIES; i++) {
    const ns = `ns${i % NAMESPACES}`;
    const app = apps[rand(apps.length)]!;
    const kind = i % 5;
    const spec: NetworkPolicy['spec'] =
      kind === 0
        ? {
            podSelector: { matchLabels: { app } },
            ingress: [
              {
                from: [{ podSelector: { matchLabels: { tier: tiers[rand(3)]! } } }],
                ports: [{ port: 'http' }],
              },
            ],
          }
        : kind === 1
          ? {
              podSelector: { matchLabels: { app, tier: 'db' } },
              ingress: [
                {
                  from: [
                    {
                      namespaceSelector: { matchLabels: { team: `team${rand(5)}` } },
                      podSelector: { matchLabels: { tier: 'api' } },
                    },
                  ],
                  ports: [{ port: 5432 }, { port: 6000, endPort: 6100 }],
                },
              ],
            }
          : kind === 2
            ? {
                podSelector: { matchLabels: { app } },
                ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`10.60.${rand(4)}.0/24`] } }] }],
              }
            : kind === 3
              ? {
                  podSelector: {
                    matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }],
                  },
                  policyTypes: ['Egress'],
                  egress: [
                    { to: [{ namespaceSelector: { matchLabels: { env: 'prod' } } }] },
                    { ports: [{ protocol: 'UDP', port: 53 }] },
                  ],
                }
              : {
                  podSelector: { matchLabels: { app } },
                  ingress: [
                    {
                      from: [
                        { podSelector: { matchLabels: { app: apps[rand(apps.length)]! } } },
                        { namespaceSelector: { matchLabels: { env: 'dev' } } },
                      ],
                      ports: [{ port: 'metrics' }, { protocol: 'UDP', port: 8125 }],
                    },
                  ],
                };
    policies.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: ns, name: `pol${i}` },
      spec,
    });
  }
  // Whatever else selects them, the client may talk to the server on 7000.
  policies.push({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace: 'ns0', name: 'client-to-server' },
    spec: {
      podSelector: { matchLabels: { app: 'app0' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ port: 7000 }] }],
      egress: [{ to: [{ podSelector: { matchLabels: { tier: 'db' } } }], ports: [{ port: 7000 }] }],
    },
  });
  return { pods, namespaces, policies };
}

// ---- measurement helpers ----------------------------------------------------------------------

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!;
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

const ECHO_SERVER = String.raw`
require('node:net').createServer((s) => { s.setNoDelay(true); s.on('error', () => {}); s.pipe(s); }).listen(7000, '0.0.0.0');
`;
// mode rr: one connection, 64-byte ping-pong for durationMs; mode conn: a new connection per exchange.
const CLIENT = String.raw`
const net = require('node:net');
const [host, mode, ms] = process.argv.slice(1);
const end = Date.now() + Number(ms);
const msg = Buffer.alloc(64, 120);
let n = 0;
function rr() {
  const c = net.connect(7000, host, () => { c.setNoDelay(true); c.write(msg); });
  let got = 0;
  c.on('data', (d) => { got += d.length; if (got >= 64) { got -= 64; n++; if (Date.now() < end) c.write(msg); else { c.destroy(); console.log(n); } } });
}
function conn() {
  if (Date.now() >= end) return console.log(n);
  const c = net.connect(7000, host, () => c.write(msg));
  c.on('data', () => { n++; c.destroy(); conn(); });
  c.on('error', () => { console.log(-1); process.exit(1); });
}
// Stop one second past the deadline whatever happens (a dropped SYN would wait for minutes).
setTimeout(() => { console.log(n); process.exit(n > 0 ? 0 : 1); }, Number(ms) + 1000).unref();
mode === 'rr' ? rr() : conn();
`;

let lab: PolicyLab;
const scratch = new NetnsSet();
let serverPid: number | undefined;

beforeAll(async () => {
  lab = await PolicyLab.create({ namespaces: ['ns0'], pods: ['client', 'server'] });
  const server = execa(
    'ip',
    ['netns', 'exec', lab.pod('ns0/server').netns, process.execPath, '-e', ECHO_SERVER],
    {
      reject: false,
    },
  );
  serverPid = server.pid;
  await new Promise((r) => setTimeout(r, 500));
}, 120_000);

afterAll(async () => {
  await stopProcess(serverPid);
  await lab?.cleanup();
  await scratch.cleanup();
});

async function rate(mode: 'rr' | 'conn', ms = 1500): Promise<number> {
  const r = await execa('ip', [
    'netns',
    'exec',
    lab.pod('ns0/client').netns,
    process.execPath,
    '-e',
    CLIENT,
    lab.pod('ns0/server').ip4,
    mode,
    String(ms),
  ]);
  const n = Number(r.stdout.trim());
  expect(n).toBeGreaterThan(0);
  return (n * 1000) / ms;
}

test('policy bench: 1000 pods, 500 policies', async () => {
  const input = cluster(lab);
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

  // Apply from scratch: tern's applier vs raw restore of the same text, each in a fresh namespace.
  const ternMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const a = await scratch.add(`apply-t${i}`);
    ternMs.push(await timed(() => new PolicyApplier(netnsRunner(a)).applyFull(compiled.desired)));
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
  }
  await scratch.cleanup();
  rows.push([
    'apply (full, from empty)',
    fmt(median(ternMs), 'ms'),
    fmt(median(rawMs), 'ms'),
    (median(ternMs) / median(rawMs)).toFixed(2) + '×',
  ]);

  // Rates without policy.
  const base = { rr: [] as number[], conn: [] as number[] };
  const withPolicy = { rr: [] as number[], conn: [] as number[] };

  // The engine on the lab node: full state, then label changes.
  const engine = new PolicyEngine({ nodeName: LAB_NODE, runner: lab.runner });
  for (const ns of input.namespaces) engine.upsertNamespace(ns);
  for (const p of input.pods) engine.upsertPod(p);
  for (const p of input.policies) engine.upsertPolicy(p);
  const first = await engine.sync();
  expect(
    engine.explain('ns0', 'server', { from: { pod: { namespace: 'ns0', name: 'client' } }, port: 7000 })
      .verdict,
  ).toBe('allow');
  expect(
    engine.explain('ns0', 'server', { from: { pod: { namespace: 'ns0', name: 'client' } }, port: 7001 })
      .verdict,
  ).toBe('deny');
  rows.push(['engine first sync (render+apply)', fmt(first.durationMs, 'ms'), '-', '-']);

  // One label change of a remote pod: it moves between selector sets (ipset add/del only).
  const mover = input.pods[500]!;
  const remoteMs: number[] = [];
  let ops = 0;
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    engine.upsertPod({
      ...mover,
      labels: { ...mover.labels, app: apps[i % apps.length]!, tier: tiers[i % 3]! },
    });
    const r = await engine.sync();
    remoteMs.push(performance.now() - t0);
    expect(r.chainsWritten).toBe(0);
    ops += r.setMemberOps;
  }
  expect(ops).toBeGreaterThan(0);
  rows.push([
    'label change, remote pod (p50 / p95)',
    `${fmt(median(remoteMs), 'ms')} / ${fmt(p95(remoteMs), 'ms')}`,
    '-',
    '-',
  ]);
  // One label change of a local pod that changes which policies select it (rewrites its chains).
  const local = input.pods[50]!;
  const localMs: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    engine.upsertPod({ ...local, labels: { ...local.labels, app: apps[i % apps.length]! } });
    await engine.sync();
    localMs.push(performance.now() - t0);
  }
  rows.push([
    'label change, local pod (p50 / p95)',
    `${fmt(median(localMs), 'ms')} / ${fmt(p95(localMs), 'ms')}`,
    '-',
    '-',
  ]);
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
  rows.push([
    'request/response rate, one connection',
    fmt(median(withPolicy.rr), '/s'),
    fmt(median(base.rr), '/s'),
    (median(withPolicy.rr) / median(base.rr)).toFixed(2) + '×',
  ]);
  rows.push([
    'new connections rate (SYN through policy)',
    fmt(median(withPolicy.conn), '/s'),
    fmt(median(base.conn), '/s'),
    (median(withPolicy.conn) / median(base.conn)).toFixed(2) + '×',
  ]);

  const header: [string, string, string, string] = [
    'measure',
    'tern',
    'reference (raw / no policy)',
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
