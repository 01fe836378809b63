import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElector } from '../../../datastore/leader-election.js';
import { MemoryDatastore } from '../../../datastore/memory.js';
import type { Datastore } from '../../../datastore/types.js';
import { ClusterGc, type ClusterGcOptions } from '../../../ipam/cluster-gc.js';
import { ANNOTATIONS, Ipam, type AssignRequest } from '../../../ipam/index.js';
import { TERN_API_VERSION, type Pod } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { FakeClock } from '../datastore/fake-clock.js';

const GRACE = 300_000;
const silent = createLogger('test', { level: 'silent' });
const opened: Ipam[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((i) => i.close()));
});

function podObject(name: string, node: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: 'default', name },
    spec: { nodeName: node, containers: [{ name: 'c' }] },
  };
}

function add(
  name: string,
  node: string,
  container = `${name}-1`,
  more: Partial<AssignRequest> = {},
): AssignRequest {
  return {
    attachment: { namespace: 'default', pod: name, containerID: container, ifname: 'eth0' },
    node,
    nodeLabels: {},
    ...more,
  };
}

/** A cluster with one pool, nodes n1..n3, and an Ipam and GC on one fake clock. */
async function cluster(
  poolSpec: { cidr: string; blockSize?: number } = { cidr: '10.80.0.0/24', blockSize: 28 },
) {
  const ds = new MemoryDatastore();
  await ds.create({ apiVersion: TERN_API_VERSION, kind: 'IPPool', metadata: { name: 'p' }, spec: poolSpec });
  for (const name of ['n1', 'n2', 'n3'])
    await ds.create({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
  const clock = new FakeClock();
  const ipam = new Ipam({
    datastore: ds,
    now: () => clock.now(),
    sweepIntervalMs: 0,
    retry: { maxBackoffMs: 2 },
  });
  opened.push(ipam);
  const gcOn = (store: Datastore, o: Partial<ClusterGcOptions> = {}) =>
    new ClusterGc({
      datastore: store,
      ipam,
      isLeader: () => true,
      graceMs: GRACE,
      clock,
      logger: silent,
      ...o,
    });
  /** Creates the Pod object, then runs its CNI ADD (the Kubernetes order). */
  const runPod = async (name: string, node: string, container?: string, more?: Partial<AssignRequest>) => {
    await ds.create(podObject(name, node));
    return (await ipam.assign(add(name, node, container, more))).addresses[0]!.address;
  };
  const allocated = async () =>
    (await ds.list('IPAMBlock')).items.flatMap((b) => Object.values(b.spec.allocations));
  return { ds, clock, ipam, gc: gcOn(ds), gcOn, runPod, allocated };
}

const deletePod = (ds: Datastore, name: string) => ds.delete('Pod', { namespace: 'default', name });

describe('cluster IPAM GC: pods that are gone', () => {
  it('frees a deleted pod’s address once the grace period has passed, and not before', async () => {
    const { ds, clock, gc, runPod, allocated } = await cluster();
    const address = await runPod('web', 'n1');
    await runPod('db', 'n1');
    await deletePod(ds, 'web');
    expect((await gc.runOnce()).freed).toEqual([]);
    await clock.advance(GRACE - 1);
    const early = await gc.runOnce();
    expect(early.freed).toEqual([]);
    expect(early.pending).toBe(1);
    expect((await allocated()).map((a) => a.pod).sort()).toEqual(['db', 'web']);
    await clock.advance(1);
    const due = await gc.runOnce();
    expect(due.freed.map((f) => [f.address, f.pod, f.reason])).toEqual([[address, 'web', 'pod-missing']]);
    expect((await allocated()).map((a) => a.pod)).toEqual(['db']);
  });

  it('never frees the address of a pod that exists, however many passes run', async () => {
    const { clock, gc, runPod, allocated } = await cluster();
    await runPod('web', 'n1');
    for (let i = 0; i < 5; i++) {
      await clock.advance(GRACE);
      expect((await gc.runOnce()).freed).toEqual([]);
    }
    expect(await allocated()).toHaveLength(1);
  });

  it('a pod created while GC runs keeps its address: the fresh read right before the free sees it', async () => {
    const { ds, clock, gcOn, ipam, allocated } = await cluster();
    // The ADD's allocation exists and its Pod object does not yet (as GC's pod list saw it) …
    await ipam.assign(add('late', 'n1'));
    let created = false;
    // … and the Pod object appears right after GC's list of pods, before its re-check.
    const racing = Object.create(ds) as Datastore;
    racing.list = async (kind, opts) => {
      const result = await ds.list(kind, opts);
      if (kind === 'Pod' && clock.now() >= Date.parse('2026-11-22T00:00:00Z') + GRACE && !created) {
        created = true;
        await ds.create(podObject('late', 'n1'));
      }
      return result;
    };
    const gc = gcOn(racing);
    await gc.runOnce();
    await clock.advance(GRACE);
    const pass = await gc.runOnce();
    expect(created).toBe(true);
    expect(pass.freed).toEqual([]);
    await clock.advance(GRACE);
    expect((await gc.runOnce()).freed).toEqual([]);
    expect((await allocated()).map((a) => a.pod)).toEqual(['late']);
  });

  it('a pod seen missing that comes back before the grace ends starts its grace afresh if it goes again', async () => {
    const { ds, clock, gc, runPod, allocated } = await cluster();
    await runPod('web', 'n1', 'ctr-1');
    await deletePod(ds, 'web');
    await gc.runOnce();
    await clock.advance(GRACE / 2);
    await ds.create(podObject('web', 'n1'));
    await gc.runOnce();
    await deletePod(ds, 'web');
    await clock.advance(GRACE / 2);
    expect((await gc.runOnce()).freed).toEqual([]);
    expect(await allocated()).toHaveLength(1);
  });

  it('a pod re-created with the same name on another node: the old sandbox’s address is freed, the new one kept', async () => {
    const { ds, clock, gc, ipam, runPod, allocated } = await cluster();
    const old = await runPod('web', 'n1', 'ctr-old');
    await deletePod(ds, 'web');
    const fresh = await runPod('web', 'n2', 'ctr-new');
    await gc.runOnce();
    await clock.advance(GRACE);
    const pass = await gc.runOnce();
    expect(pass.freed.map((f) => [f.address, f.containerID, f.reason])).toEqual([
      [old, 'ctr-old', 'pod-on-other-node'],
    ]);
    expect((await allocated()).map((a) => a.containerID)).toEqual(['ctr-new']);
    expect((await ipam.allocationsFor({ containerID: 'ctr-new', ifname: 'eth0' }))[0]!.address).toBe(fresh);
  });

  it('a sticky address of a deleted pod stays held for its identity, it is not freed', async () => {
    const { ds, clock, gc, runPod, allocated } = await cluster();
    const address = await runPod('db-0', 'n1', 'ctr-1', {
      podAnnotations: { [ANNOTATIONS.stickyIp]: 'true' },
    });
    await deletePod(ds, 'db-0');
    await gc.runOnce();
    await clock.advance(GRACE);
    const pass = await gc.runOnce();
    expect(pass.freed.map((f) => f.address)).toEqual([address]);
    const [held] = await allocated();
    expect(held).toMatchObject({ binding: 'identity', identity: 'default/db-0' });
    expect(held?.containerID).toBeUndefined();
    expect(held?.heldUntil).toBeDefined();
  });
});

describe('cluster IPAM GC: nodes that are gone', () => {
  it('releases a deleted node’s block after the grace period; an address a live pod on another node borrowed stays', async () => {
    // One block in the pool: n3 claims it, n2 then has to borrow from it.
    const { ds, clock, gc, runPod, allocated } = await cluster({ cidr: '10.81.0.0/28', blockSize: 28 });
    await runPod('on-n3', 'n3');
    const borrowed = await runPod('on-n2', 'n2');
    const [block] = (await ds.list('IPAMBlock')).items;
    expect(block?.spec.affinity).toBe('n3');
    await ds.delete('Node', { name: 'n3' });
    await deletePod(ds, 'on-n3');
    await gc.runOnce();
    await clock.advance(GRACE - 1);
    expect((await gc.runOnce()).releasedBlocks).toEqual([]);
    expect((await ds.list('IPAMBlock')).items[0]?.spec.affinity).toBe('n3');
    await clock.advance(1);
    const pass = await gc.runOnce();
    expect(pass.freed.map((f) => f.pod)).toEqual(['on-n3']);
    expect(pass.releasedBlocks).toEqual(['10.81.0.0/28']);
    const [after] = (await ds.list('IPAMBlock')).items;
    expect(after?.spec.affinity).toBeUndefined();
    expect((await allocated()).map((a) => [a.pod, a.node])).toEqual([['on-n2', 'n2']]);
    expect(Object.keys(after!.spec.allocations)).toHaveLength(1);
    expect(borrowed.startsWith('10.81.0.')).toBe(true);
  });

  it('deletes the block of a deleted node when nothing in it is held any more', async () => {
    const { ds, clock, gc, runPod } = await cluster();
    await runPod('a', 'n3');
    await ds.delete('Node', { name: 'n3' });
    await deletePod(ds, 'a');
    await gc.runOnce();
    await clock.advance(GRACE);
    const pass = await gc.runOnce();
    expect(pass.releasedBlocks).toHaveLength(1);
    expect((await ds.list('IPAMBlock')).items).toEqual([]);
  });

  it('frees the address of a pod whose Pod object lingers on a node that is gone', async () => {
    const { ds, clock, gc, runPod, allocated } = await cluster();
    await runPod('orphan', 'n3');
    await runPod('live', 'n1');
    await ds.delete('Node', { name: 'n3' });
    await gc.runOnce();
    await clock.advance(GRACE);
    const pass = await gc.runOnce();
    expect(pass.freed.map((f) => [f.pod, f.reason])).toEqual([['orphan', 'node-missing']]);
    expect((await allocated()).map((a) => a.pod)).toEqual(['live']);
  });

  it('a node that comes back within the grace period keeps its block', async () => {
    const { ds, clock, gc, runPod } = await cluster();
    await runPod('a', 'n3');
    await ds.delete('Node', { name: 'n3' });
    await gc.runOnce();
    await clock.advance(GRACE / 2);
    await ds.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n3' } });
    await clock.advance(GRACE);
    const pass = await gc.runOnce();
    expect(pass.releasedBlocks).toEqual([]);
    expect(pass.freed).toEqual([]);
    expect((await ds.list('IPAMBlock')).items[0]?.spec.affinity).toBe('n3');
  });
});

describe('cluster IPAM GC: one runner per cluster', () => {
  it('a GC that is not the leader frees nothing and forgets what it saw: leading again, it waits a whole grace', async () => {
    const { ds, clock, gcOn, runPod, allocated } = await cluster();
    let leading = true;
    await runPod('web', 'n1');
    await deletePod(ds, 'web');
    const gc = gcOn(ds, { isLeader: () => leading });
    await gc.runOnce();
    leading = false;
    await clock.advance(GRACE);
    expect(await gc.runOnce()).toMatchObject({ ran: false, freed: [] });
    leading = true; // leader again: the grace starts over
    expect((await gc.runOnce()).freed).toEqual([]);
    expect(await allocated()).toHaveLength(1);
  });

  it('with two agents electing on one Lease, exactly one runs GC passes', async () => {
    const { ds, clock, gcOn } = await cluster();
    const electors = ['agent-a', 'agent-b'].map(
      (identity) =>
        new LeaderElector({
          datastore: ds,
          namespace: 'tern-system',
          name: 'tern-ipam-gc',
          identity,
          clock,
          logger: silent,
        }),
    );
    const gcs = electors.map((e) => gcOn(ds, { isLeader: () => e.isLeader() }));
    for (const e of electors) e.start();
    const ran = [0, 0];
    for (let i = 0; i < 10; i++) {
      await clock.advance(5_000);
      const reports = await Promise.all(gcs.map((g) => g.runOnce()));
      reports.forEach((r, j) => (ran[j]! += r.ran ? 1 : 0));
    }
    for (const e of electors) await e.stop();
    expect(ran.filter((n) => n > 0)).toHaveLength(1);
    expect(ran[0]! + ran[1]!).toBe(10);
  });
});

describe('cluster IPAM GC metrics', () => {
  it('counts freed addresses by reason and shows whether this agent is the leader', async () => {
    const { ds, clock, gcOn, runPod } = await cluster();
    const registry = new Registry();
    let leading = true;
    const gc = gcOn(ds, { registry, isLeader: () => leading });
    await runPod('web', 'n1');
    await deletePod(ds, 'web');
    await gc.runOnce();
    await clock.advance(GRACE);
    await gc.runOnce();
    const text = await registry.metrics();
    expect(text).toContain('tern_ipam_gc_freed_addresses_total{reason="pod-missing"} 1');
    expect(text).toContain('tern_ipam_gc_leader 1');
    leading = false;
    expect(await registry.metrics()).toContain('tern_ipam_gc_leader 0');
  });
});

describe('cluster IPAM GC on cached snapshots (the agent’s informers)', () => {
  it('a pass over a snapshot lists nothing from the datastore; a free still waits for the grace and a fresh read', async () => {
    const { ds, clock, gcOn, runPod, allocated } = await cluster();
    await runPod('web', 'n1');
    await runPod('db', 'n1');
    const lists: string[] = [];
    const gets: string[] = [];
    const watched = Object.create(ds) as Datastore;
    watched.list = (kind, o) => {
      lists.push(kind);
      return ds.list(kind, o);
    };
    watched.get = (kind, key) => {
      gets.push(kind);
      return ds.get(kind, key);
    };
    // A stale cache: it still shows 'web' missing although the Pod object is back before the free.
    const cached = {
      blocks: (await ds.list('IPAMBlock')).items,
      pods: [] as Pod[],
      nodes: (await ds.list('Node')).items,
    };
    cached.pods = (await ds.list('Pod')).items.filter((p) => p.metadata.name === 'db');
    const gc = gcOn(watched, { snapshot: () => cached });
    expect((await gc.runOnce()).pending).toBe(1);
    expect(lists).toEqual([]);
    await clock.advance(GRACE);
    expect((await gc.runOnce()).freed).toEqual([]); // the fresh get finds web
    expect(gets).toContain('Pod');
    // Seen alive by the re-check: its grace starts over from the next pass.
    await deletePod(ds, 'web');
    expect((await gc.runOnce()).freed).toEqual([]);
    await clock.advance(GRACE);
    const pass = await gc.runOnce();
    expect(pass.freed.map((f) => f.pod)).toEqual(['web']);
    expect((await allocated()).map((a) => a.pod)).toEqual(['db']);
  });
});

describe('cluster IPAM GC: finished pods', () => {
  it('frees the address of a pod whose phase is Succeeded or Failed (a finished Job whose DEL was lost), after the grace', async () => {
    const { ds, clock, gc, runPod, allocated } = await cluster();
    await runPod('job-1', 'n1');
    await runPod('job-2', 'n1');
    await runPod('web', 'n1');
    for (const [name, phase] of [
      ['job-1', 'Succeeded'],
      ['job-2', 'Failed'],
      ['web', 'Running'],
    ] as const) {
      const pod = (await ds.get('Pod', { namespace: 'default', name }))!;
      await ds.update<'Pod'>({ ...pod, status: { phase } });
    }
    expect((await gc.runOnce()).freed).toEqual([]);
    await clock.advance(GRACE);
    const pass = await gc.runOnce();
    expect(pass.freed.map((f) => [f.pod, f.reason]).sort()).toEqual([
      ['job-1', 'pod-finished'],
      ['job-2', 'pod-finished'],
    ]);
    expect((await allocated()).map((a) => a.pod)).toEqual(['web']);
  });
});
