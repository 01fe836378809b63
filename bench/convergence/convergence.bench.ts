// bench/convergence: time from a pod's address being routable on node A to a route covering it
// in node B's kernel, for tern and for the Calico-style pipeline, in the same run.
//
// - tern: a 2-node lab (iBGP mesh, agents on a private etcd). A pod is created through the real
//   CNI plugin on node A. Two pools: blockSize 32 (every pod needs a fresh announcement: the
//   case comparable to the reference) and blockSize 26 (most pods land in a block B already
//   routes, so nothing has to travel).
// - reference (Calico's pipeline): BIRD on A learns a /32 put in A's kernel
//   (`protocol kernel { learn }`), carries it over iBGP to BIRD on B, which installs it.
//
// Clocks, all from `ip -ts monitor route` kernel events in A's and B's namespaces (one machine,
// one clock):
//   kernel→kernel: the pod's /32 appears in A's kernel → a route covering it appears in B's.
//   ADD→B (tern only): CNI ADD returns on A → the route appears in B's kernel. Negative when the
//   announcement (driven by the IPAM block claim) beat the end of the ADD.
//   claim→B (tern only): the bench's own etcd watch sees node A's new IPAM block (the agent's
//   informer sees it at the same moment) → the route appears in B's kernel. tern announces a
//   block when it is claimed, before the pod's veth and /32 exist, so this is tern's
//   routing pipeline proper (informer → speaker → UPDATE → B's speaker → B's reconciler →
//   kernel), the part comparable to BIRD's kernel → BIRD → UPDATE → BIRD → kernel.
// Prints p50 / p99 / max and the ratio to BIRD; asserts only that every route arrived.
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPAM_ANNOTATIONS, containsCidr, formatCidr, parseCidr, type Cidr } from '../../model/index.js';
import { BgpLab } from '../../test/support/bgp-daemons.js';
import { newLab } from '../../test/integration/felix/lab-support.js';
import { parseTopology } from '../../deploy/lab/topology.js';
import { RouteMonitor } from './route-monitor.js';

const PODS = Number(process.env.CONVERGENCE_PODS ?? 200);
const now = () => performance.timeOrigin + performance.now();

const lab = newLab('conv');
const bird = new BgpLab();
const monitors: RouteMonitor[] = [];
let birdNs = { a: '', b: '' };

interface Sample {
  /** A's kernel /32 → B's covering route (signed; 0 when B was covered before the pod existed). */
  kernelMs: number;
  /** CNI ADD returned → B's covering route (signed); tern only. */
  addMs?: number;
  /** Node A's block claim seen in etcd → B's covering route; tern only. */
  claimMs?: number;
  /** The covering route was already in B's kernel before the pod was created. */
  coveredBefore: boolean;
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN;
  return { n: s.length, p50: q(0.5), p99: q(0.99), max: s[s.length - 1] ?? NaN };
}

const results: Record<string, Sample[]> = {};

describe('convergence: pod address on node A → covering route in node B’s kernel', () => {
  beforeAll(async () => {
    await lab.up(
      parseTopology({
        bgp: { mode: 'mesh' },
        nodes: [{ name: 'a' }, { name: 'b' }],
        pools: [
          { name: 'p26', cidr: '10.244.0.0/16', blockSize: 26 },
          { name: 'p32', cidr: '10.245.0.0/16', blockSize: 32 },
        ],
      }),
    );
    await lab.apply(
      ['p26', 'p32'].map((pool) => ({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: pool,
          labels: { 'kubernetes.io/metadata.name': pool },
          annotations: { [IPAM_ANNOTATIONS.ipv4Pools]: JSON.stringify([pool]) },
        },
      })),
    );
    await lab.waitConverged(60_000);

    await bird.init();
    const a = await bird.netns.add('birda');
    const b = await bird.netns.add('birdb');
    await bird.lan([
      { ns: a, address: '10.78.0.1/24' },
      { ns: b, address: '10.78.0.2/24' },
    ]);
    await execa('ip', ['-n', a, 'link', 'add', 'pod0', 'type', 'veth', 'peer', 'name', 'pod1']);
    await execa('ip', ['-n', a, 'link', 'set', 'pod0', 'up']);
    await execa('ip', ['-n', a, 'link', 'set', 'pod1', 'up']);
    // Calico's BIRD: learn the pod routes felix puts in the kernel, export them over iBGP.
    const birdA = await bird.bird(
      a,
      'bird-a',
      [
        'router id 10.78.0.1;',
        'protocol device { }',
        'protocol kernel { learn; scan time 10; ipv4 { import all; export none; }; }',
        'protocol bgp b { local 10.78.0.1 as 64512; neighbor 10.78.0.2 as 64512; direct; connect retry time 1;',
        '  ipv4 { import none; export all; next hop self; }; }',
      ].join('\n'),
    );
    await bird.bird(
      b,
      'bird-b',
      [
        'router id 10.78.0.2;',
        'protocol device { }',
        'protocol kernel { ipv4 { import none; export all; }; }',
        'protocol bgp a { local 10.78.0.2 as 64512; neighbor 10.78.0.1 as 64512; direct; connect retry time 1;',
        '  ipv4 { import all; export none; }; }',
      ].join('\n'),
    );
    for (let i = 0; i < 300 && !(await birdA.peers()).every((p) => p.established); i++)
      await new Promise((r) => setTimeout(r, 100));
    birdNs = { a, b };
  }, 600_000);

  afterAll(async () => {
    for (const m of monitors) await m.stop();
    await lab.down();
    await bird.cleanup();
  }, 120_000);

  it(`tern, blockSize 32 and 26: ${PODS} pods each, created one after another on node A`, async () => {
    const onA = new RouteMonitor(lab.netnsOf('a'));
    const monitor = new RouteMonitor(lab.netnsOf('b'));
    monitors.push(onA, monitor);
    await onA.start();
    await monitor.start();
    const claims: Array<{ at: number; cidr: Cidr }> = [];
    const ds = await lab.datastore();
    const watch = ds.watch('IPAMBlock', {}, (e) => {
      if (e.type !== 'resync' && e.type !== 'deleted' && e.object.spec.affinity === 'a')
        if (!claims.some((c) => formatCidr(c.cidr) === e.object.spec.cidr))
          claims.push({ at: now(), cidr: parseCidr(e.object.spec.cidr) });
    });
    for (const pool of ['p32', 'p26']) {
      const samples: Sample[] = [];
      for (let i = 0; i < PODS; i++) {
        const started = now();
        const { ip, cniReturnedAt } = await lab.createPod(
          { namespace: pool, name: `pod${i}`, node: 'a' },
          { server: false },
        );
        const onAAt = await onA.firstHostRoute(ip, started, 10_000);
        const coveredBefore = monitor.coveredBefore(ip, started);
        const at = coveredBefore ? undefined : await monitor.firstCovering(ip, started, 10_000);
        const host = parseCidr(`${ip}/32`);
        const claim = claims.find((c) => containsCidr(c.cidr, host));
        samples.push({
          kernelMs: at === undefined ? 0 : at - onAAt,
          ...(at === undefined ? {} : { addMs: at - cniReturnedAt }),
          ...(at !== undefined && claim ? { claimMs: at - claim.at } : {}),
          coveredBefore,
        });
      }
      results[`tern /${pool.slice(1)}`] = samples;
      expect(samples).toHaveLength(PODS);
    }
    await watch.close();
  });

  it(`BIRD pipeline: ${PODS} /32 routes added one after another on A`, async () => {
    const { a, b } = birdNs;
    const onA = new RouteMonitor(a);
    const monitor = new RouteMonitor(b);
    monitors.push(onA, monitor);
    await onA.start();
    await monitor.start();
    const samples: Sample[] = [];
    for (let i = 0; i < PODS; i++) {
      const ip = `10.246.${i >> 8}.${i & 255}`;
      const started = now();
      await execa('ip', ['-n', a, 'route', 'add', `${ip}/32`, 'dev', 'pod0', 'proto', 'static']);
      const onAAt = await onA.firstHostRoute(ip, started, 10_000);
      const at = await monitor.firstCovering(ip, started, 10_000);
      samples.push({ kernelMs: at - onAAt, coveredBefore: false });
    }
    results['BIRD /32'] = samples;
    expect(samples).toHaveLength(PODS);
  });

  it('prints the table', () => {
    const ref = stats(results['BIRD /32']!.map((s) => s.kernelMs));
    const f2 = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(2));
    const rows = Object.entries(results).map(([name, samples]) => {
      const all = stats(samples.map((s) => s.kernelMs));
      const fresh = samples.filter((s) => !s.coveredBefore);
      const k = stats(fresh.map((s) => s.kernelMs));
      const add = stats(fresh.flatMap((s) => (s.addMs === undefined ? [] : [s.addMs])));
      const claim = stats(fresh.flatMap((s) => (s.claimMs === undefined ? [] : [s.claimMs])));
      return {
        pipeline: name,
        pods: all.n,
        'new route on B': fresh.length,
        'k→k p50 (all)': f2(all.p50),
        'k→k p99 (all)': f2(all.p99),
        'k→k p50 (new)': f2(k.p50),
        'k→k p99 (new)': f2(k.p99),
        'k→k max (new)': f2(k.max),
        'ADD→B p50': f2(add.p50),
        'ADD→B p99': f2(add.p99),
        'claim→B p50': f2(claim.p50),
        'claim→B p99': f2(claim.p99),
        'pipeline p99 / BIRD k→k p99': ((name.startsWith('tern') ? claim.p99 : k.p99) / ref.p99).toFixed(3),
      };
    });
    console.log(
      `convergence, ${PODS} pods per pipeline, ms; k→k = /32 in A's kernel → covering route in B's kernel; ` +
        `ADD→B = CNI ADD returned on A → route in B's kernel (negative: before ADD returned)`,
    );
    console.table(rows);
    expect(rows).toHaveLength(3);
  });
});
