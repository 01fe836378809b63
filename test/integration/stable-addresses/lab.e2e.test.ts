// Stable addresses end to end on a three-node lab (real etcd, real agents behind a route
// reflector, pods through the real CNI executable): a StatefulSet with an ordinal list, a
// replica moved between nodes 50 times (ADD-return → reachable from remote nodes, measured),
// a sticky pod across a hold, a mixed concurrent run with nothing leaked, and bad input.
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../../deploy/lab/lab.js';
import { parseTopology } from '../../../deploy/lab/topology.js';
import { ANNOTATIONS, Ipam, type BindingRecord } from '../../../ipam/index.js';
import { TERN_API_VERSION } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { uniqueSuffix, waitFor } from '../../support/netns.js';
import { CniFailure, LabPods, firstReply, percentile, reachable, routeOnNode } from './lab-pods.js';

const REPO = resolve(import.meta.dirname, '../../..');
const suffix = uniqueSuffix();
const dir = join(tmpdir(), `tern-stable-e2e-${suffix}`);
const lab = new Lab({ dir, prefix: `ts${suffix}-`, repo: REPO });
const pods = new LabPods(lab, REPO);
const NODES = ['node1', 'node2', 'node3'];
const MOVES = 50;
const STICKY_HOLD = 8;
const SHORT_HOLD = 10;
const quiet = createLogger('stable-e2e', { level: 'silent' });

const topology = parseTopology(
  {
    nodes: NODES.map((name) => ({ name })),
    namespaces: [{ name: 'probe' }],
    pods: NODES.map((node, i) => ({ namespace: 'probe', name: `p${i + 1}`, node, ports: [80] })),
  },
  'stable-addresses test',
);

const pool = (name: string, cidr: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: TERN_API_VERSION,
  kind: 'IPPool',
  metadata: { name },
  spec: { cidr, ...spec },
});
const namespace = (name: string, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, annotations, labels: { 'kubernetes.io/metadata.name': name } },
});
// A pool for listed addresses that no node allocates from by itself.
const NEVER = { nodeSelector: { matchLabels: { 'tern.network/never': 'true' } } };

const probeNetns = (node: string) => lab.netnsOf(`probe/p${NODES.indexOf(node) + 1}`);
const nodeNetns = (node: string) => lab.state().nodes[node]!.netns;
const DB_LIST = ['10.250.0.10', '10.250.0.11', '10.250.0.12'];
const dbAnnotations = { [ANNOTATIONS.ipAddrsByOrdinal]: JSON.stringify(DB_LIST) };

async function ternctlBindings(node: string): Promise<BindingRecord[]> {
  const r = await execa(
    process.execPath,
    [join(REPO, 'dist/cli/main.js'), '--lab-dir', dir, '--node', node, 'ipam', 'show', '-o', 'json'],
    { reject: false },
  );
  if (r.exitCode !== 0) throw new Error(`ternctl ipam show failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { bindings: BindingRecord[] }).bindings;
}

async function failure(p: Promise<unknown>): Promise<CniFailure> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof CniFailure)) throw new Error(`expected a CNI error, got ${String(e)}`);
  return e;
}

describe('stable addresses on a three-node lab', () => {
  beforeAll(async () => {
    await lab.up(topology);
    await lab.apply([
      pool('stable', '10.250.0.0/24', NEVER),
      pool('sticky', '10.251.0.0/30', { stickyHoldSeconds: STICKY_HOLD }),
      pool('shorthold', '10.252.0.0/24', { stickyHoldSeconds: SHORT_HOLD }),
      namespace('ss'),
      namespace('sticky', { [ANNOTATIONS.stickyIp]: 'true', [ANNOTATIONS.ipv4Pools]: '["sticky"]' }),
      namespace('mix'),
    ]);
  }, 240_000);

  afterAll(async () => {
    await pods.delAll().catch(() => undefined);
    await lab.down();
  }, 120_000);

  it('a three-replica set with an ordinal list gets exactly its addresses, reachable from every node', async () => {
    const got = [];
    for (const [i, node] of NODES.entries()) {
      got.push((await pods.add({ namespace: 'ss', name: `db-${i}`, node, annotations: dbAnnotations })).ip);
    }
    expect(got).toEqual(DB_LIST);
    for (const node of NODES) {
      for (const ip of DB_LIST)
        expect(await reachable(probeNetns(node), ip), `${ip} from ${node}`).toBe(true);
    }
  }, 60_000);

  // The remote node measured is one that never hosts the replica (node1): a node that hosted
  // it before still has a stale "foreign route" mark on the /32 in its route reconciler and
  // installs the learned route only at its next resync (kernel/routes: an EEXIST from racing
  // the CNI's own pod route is taken for a foreign route, and a veth deletion does not clear
  // the mark). That is checked separately below, with a wait longer than the resync.
  it(`replica 1 moved between two nodes ${MOVES} times keeps its address, becomes reachable from a remote node, and its old node no longer routes it locally`, async () => {
    const latencies: number[] = [];
    const lateLatencies: number[] = [];
    const problems: string[] = [];
    let node = 'node2';
    for (let move = 0; move < MOVES; move++) {
      const next = node === 'node2' ? 'node3' : 'node2';
      await pods.del('ss', 'db-1');
      const reply = firstReply(probeNetns('node1'), DB_LIST[1]!, 15_000);
      reply.catch(() => undefined); // awaited below; not "unhandled" while the ADD runs
      const pod = await pods.add({ namespace: 'ss', name: 'db-1', node: next, annotations: dbAnnotations });
      const returned = Date.now();
      // Started only now, like the reference below (which cannot know the address earlier).
      const late = firstReply(probeNetns('node1'), DB_LIST[1]!, 15_000);
      if (pod.ip !== DB_LIST[1]) problems.push(`move ${move}: got ${pod.ip}`);
      latencies.push((await reply) - returned);
      lateLatencies.push((await late) - returned);
      const old = await routeOnNode(nodeNetns(node), DB_LIST[1]!);
      if (old.dev?.startsWith('tern'))
        problems.push(
          `move ${move}: old node ${node} still routes ${DB_LIST[1]} to a pod (${JSON.stringify(old)})`,
        );
      const local = await routeOnNode(nodeNetns(next), DB_LIST[1]!);
      if (!local.dev?.startsWith('tern'))
        problems.push(`move ${move}: new node ${next} has ${JSON.stringify(local)}`);
      node = next;
    }
    expect(problems).toEqual([]);
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(
      `stable-address move: ADD return → first ping reply from a remote node, ${MOVES} moves: ` +
        `p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, ` +
        `min ${sorted[0]!.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms, ` +
        `${sorted.filter((x) => x <= 0).length} reachable before ADD returned; ` +
        `with the pinger started after ADD returned (as the reference): ` +
        `p50 ${percentile(
          [...lateLatencies].sort((a, b) => a - b),
          50,
        ).toFixed(1)} ms, ` +
        `p99 ${percentile(
          [...lateLatencies].sort((a, b) => a - b),
          99,
        ).toFixed(1)} ms`,
    );
    expect(sorted).toHaveLength(MOVES);
  }, 600_000);

  it(`reference in the same run: ${MOVES} ordinary new pods, ADD return → first ping reply from the same remote node`, async () => {
    const latencies: number[] = [];
    for (let i = 0; i < MOVES; i++) {
      const node = i % 2 ? 'node2' : 'node3';
      const ip = await pods.add({ namespace: 'ss', name: `plain-${i}`, node });
      const returned = Date.now();
      latencies.push((await firstReply(probeNetns('node1'), ip.ip, 15_000)) - returned);
      await pods.del('ss', `plain-${i}`);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(
      `reference (ordinary new pod): ADD return → first ping reply from a remote node, ${MOVES} pods: ` +
        `p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms ` +
        `(the pinger starts after ADD returns here, so this includes its ~start-up)`,
    );
    expect(sorted).toHaveLength(MOVES);
  }, 300_000);

  it('after the moves the replica is reachable from pods on every node, the nodes that hosted it before included', async () => {
    const started = Date.now();
    for (const n of NODES) {
      await waitFor(
        `${DB_LIST[1]} reachable from ${n}`,
        () => reachable(probeNetns(n), DB_LIST[1]!),
        40_000,
        200,
      );
    }
    console.log(
      `stable-address move: every node reaches the moved replica ${Date.now() - started} ms after the last move`,
    );
  }, 60_000);

  it('a sticky pod recreated on another node keeps its address; a pod created during the hold never gets it; after the hold it is allocatable', async () => {
    const first = await pods.add({ namespace: 'sticky', name: 'cache', node: 'node1' });
    await pods.del('sticky', 'cache');
    const heldAt = Date.now();
    // The /30 pool has four addresses: three others go to intruders, the fourth ADD finds none.
    const intruders = [];
    for (const name of ['i1', 'i2', 'i3'])
      intruders.push((await pods.add({ namespace: 'sticky', name, node: 'node2' })).ip);
    expect(intruders).not.toContain(first.ip);
    const full = await failure(pods.add({ namespace: 'sticky', name: 'i4', node: 'node2' }));
    expect(full.code).toBe(101);
    const again = await pods.add({ namespace: 'sticky', name: 'cache', node: 'node3' });
    expect(Date.now() - heldAt).toBeLessThan(STICKY_HOLD * 1000);
    expect(again.ip).toBe(first.ip);
    expect(await reachable(probeNetns('node2'), first.ip)).toBe(true);
    // node1 owns the block: it no longer routes the address to a pod (a blackhole at worst).
    expect((await routeOnNode(nodeNetns('node1'), first.ip)).dev?.startsWith('tern') ?? false).toBe(false);

    await pods.del('sticky', 'cache');
    const held = (await ternctlBindings('node2')).find((b) => b.address === first.ip);
    expect(held).toMatchObject({ identity: 'sticky/cache', state: 'held' });
    await new Promise((r) => setTimeout(r, STICKY_HOLD * 1000 + 500));
    const late = await pods.add({ namespace: 'sticky', name: 'i4', node: 'node2' });
    expect(late.ip).toBe(first.ip);
    for (const name of ['i1', 'i2', 'i3', 'i4']) await pods.del('sticky', name);
  }, 120_000);

  it('12 concurrent ADDs (listed, reserved, sticky, ordinary) over three nodes: no duplicate, ternctl shows the bindings, nothing leaked after DEL, hold expiry and owner release', async () => {
    const KV = ['10.250.0.50', '10.250.0.51', '10.250.0.52'];
    const PINS = ['10.250.0.40', '10.250.0.41', '10.250.0.42'];
    await lab.apply([
      {
        apiVersion: TERN_API_VERSION,
        kind: 'IPReservation',
        metadata: { namespace: 'mix', name: 'pins' },
        spec: { pods: ['r-a', 'r-b', 'r-c'].map((name, i) => ({ name, addresses: [PINS[i]] })) },
      },
    ]);
    await new Promise((r) => setTimeout(r, 300)); // the agents' reservation watch
    const specs = [
      ...KV.map((_, i) => ({
        name: `kv-${i}`,
        annotations: { [ANNOTATIONS.ipAddrsByOrdinal]: JSON.stringify(KV) },
      })),
      ...['r-a', 'r-b', 'r-c'].map((name) => ({ name, annotations: {} })),
      ...['s-a', 's-b', 's-c'].map((name) => ({
        name,
        annotations: { [ANNOTATIONS.stickyIp]: 'true', [ANNOTATIONS.ipv4Pools]: '["shorthold"]' },
      })),
      ...['o-a', 'o-b', 'o-c'].map((name) => ({ name, annotations: {} })),
    ];
    const added = await Promise.all(
      specs.map((s, i) =>
        pods.add({ namespace: 'mix', name: s.name, node: NODES[i % 3]!, annotations: s.annotations }),
      ),
    );
    const ips = added.map((p) => p.ip);
    expect(new Set(ips).size).toBe(12);
    expect(ips.slice(0, 6)).toEqual([...KV, ...PINS]);
    const shown = await ternctlBindings('node3');
    const mine = shown.filter((b) => b.identity.startsWith('mix/'));
    expect(mine.map((b) => [b.identity, b.state, b.node])).toEqual(
      [...added.slice(0, 9)]
        .sort((a, b) => (a.ip < b.ip ? -1 : 1))
        .map((p) => [`mix/${p.name}`, 'in use', p.node]),
    );

    await Promise.all(added.map((p) => pods.del('mix', p.name)));
    const deletedAt = Date.now();
    const afterDel = (await ternctlBindings('node1')).filter((b) => b.identity.startsWith('mix/'));
    expect(afterDel.map((b) => b.state).sort()).toEqual([
      ...Array(3).fill('held'),
      ...Array(6).fill('reserved'),
    ]);
    const table = await execa(
      process.execPath,
      [join(REPO, 'dist/cli/main.js'), '--lab-dir', dir, '--node', 'node2', 'ipam', 'show'],
      { reject: false },
    );
    expect(table.stdout).toMatch(/mix\/s-a\s+held until 20\d\d-/);
    expect(table.stdout).toMatch(/10\.250\.0\.40\s+mix\/r-a\s+reserved\s+IPReservation mix\/pins/);

    // Any process may sweep (the agents do every minute); this one does it now.
    const ds = await lab.datastore();
    const ipam = new Ipam({ datastore: ds, logger: quiet, sweepIntervalMs: 0 });
    try {
      await new Promise((r) => setTimeout(r, Math.max(0, deletedAt + SHORT_HOLD * 1000 + 500 - Date.now())));
      await ipam.sweep();
      await ipam.releaseReserved('mix/kv');
      const pins = await ds.get('IPReservation', { namespace: 'mix', name: 'pins' });
      await ds.delete(
        'IPReservation',
        { namespace: 'mix', name: 'pins' },
        { resourceVersion: pins!.metadata.resourceVersion },
      );
      await ipam.sweep();
      const left = (await ds.list('IPAMBlock')).items.flatMap((b) =>
        Object.values(b.spec.allocations).filter(
          (a) => a.namespace === 'mix' || a.identity?.startsWith('mix/'),
        ),
      );
      expect(left).toEqual([]);
    } finally {
      await ipam.close();
    }
    // No node still routes any of them to a pod.
    for (const n of NODES) {
      const { stdout } = await execa('ip', ['-n', nodeNetns(n), '-j', 'route', 'show', 'proto', '90']);
      const routed = (JSON.parse(stdout || '[]') as Array<{ dst: string }>).map((r) => r.dst.split('/')[0]);
      expect(routed.filter((d) => ips.includes(d!))).toEqual([]);
    }
  }, 180_000);

  it('bad input through CNI: an ordinal with no entry and an address bound to another identity are named errors, nothing allocated', async () => {
    const missing = await failure(
      pods.add({ namespace: 'ss', name: 'db-5', node: 'node1', annotations: dbAnnotations }),
    );
    expect(missing.code).toBe(7);
    expect(missing.message).toContain('ordinal 5');
    expect(missing.message).toContain('has 3 entries');
    const taken = await failure(
      pods.add({
        namespace: 'ss',
        name: 'other-0',
        node: 'node3',
        annotations: { [ANNOTATIONS.ipAddrsByOrdinal]: JSON.stringify(['10.250.0.11']) },
      }),
    );
    expect(taken.code).toBe(102);
    expect(taken.message).toContain('10.250.0.11');
    expect(taken.message).toContain('ss/other-0');
    expect(taken.message).toContain('ss/db-1');
    // The ordinal comes from the apps.kubernetes.io/pod-index label through CNI: ordinal 2's entry.
    const labelled = await failure(
      pods.add({
        namespace: 'ss',
        name: 'odd-name',
        node: 'node2',
        annotations: dbAnnotations,
        labels: { 'apps.kubernetes.io/pod-index': '2' },
      }),
    );
    expect(labelled.code).toBe(102);
    expect(labelled.message).toContain('10.250.0.12');
    expect(labelled.message).toContain('ss/db-2');
    const bindings = await ternctlBindings('node1');
    expect(bindings.filter((b) => ['ss/db-5', 'ss/other-0', 'ss/odd-name'].includes(b.identity))).toEqual([]);
  }, 60_000);
});
