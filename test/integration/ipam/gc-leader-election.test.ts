// The GC Lease and the cluster IPAM GC on a real etcd: every elector and every GC has its own
// etcd client, as agents on separate nodes would, so only etcd's compare-and-swap decides.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdDatastore } from '../../../datastore/etcd.js';
import { LeaderElector, type LeaderElectorOptions } from '../../../datastore/leader-election.js';
import type { Datastore } from '../../../datastore/types.js';
import { ClusterGc } from '../../../ipam/cluster-gc.js';
import { Ipam } from '../../../ipam/index.js';
import { TERN_API_VERSION, type Pod } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { startEtcd, type EtcdServer } from '../../support/etcd.js';
import { raceForLease } from '../../support/leader-race.js';
import { uniqueSuffix, waitFor } from '../../support/netns.js';

const quiet = createLogger('gc-etcd-test', { level: 'silent' });
const LEASE = { namespace: 'tern-system', name: 'tern-ipam-gc' };
// Short, but with the same proportions as the defaults (15 s / 10 s / 2 s).
const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 250 };

let server: EtcdServer;
const opened: Array<{ close(): Promise<void> }> = [];
const electors: LeaderElector[] = [];

beforeAll(async () => {
  server = await startEtcd();
});
afterAll(async () => {
  for (const e of electors.splice(0)) await e.stop().catch(() => undefined);
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
  await server?.stop();
});

/** A key space of its own on the shared server; each call of `client` is another agent's connection. */
function cluster() {
  const prefix = `/tern-gc-${uniqueSuffix()}/`;
  const client = (): Datastore => {
    const ds = new EtcdDatastore({ endpoints: [server.endpoint], prefix, logger: quiet });
    opened.push(ds);
    return ds;
  };
  const elector = (
    identity: string,
    ds = client(),
    releaseOnStop = true,
    timing: Partial<LeaderElectorOptions> = TIMING,
  ) => {
    const e = new LeaderElector({
      datastore: ds,
      ...LEASE,
      ...timing,
      identity,
      releaseOnStop,
      logger: quiet,
    });
    electors.push(e);
    return e;
  };
  return { client, elector };
}

const podObject = (name: string, node: string): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace: 'default', name },
  spec: { nodeName: node, containers: [{ name: 'c' }] },
});

describe('LeaderElector on etcd', () => {
  it('of two electors racing for one Lease exactly one leads, the whole time', async () => {
    const { elector } = cluster();
    const a = elector('agent-a');
    const b = elector('agent-b');
    await raceForLease(a, b, 40);
    await a.stop();
    await b.stop();
  });

  it('when the leader dies, the other takes over, and not before the lease duration since its last renewal', async () => {
    const { client, elector } = cluster();
    const store = client();
    const a = elector('agent-a', client(), false);
    a.start();
    await waitFor('agent-a leads', () => a.isLeader(), 10_000, 20);
    const b = elector('agent-b');
    b.start();
    await new Promise((r) => setTimeout(r, TIMING.retryPeriodMs * 3));
    expect(b.isLeader()).toBe(false);
    await a.stop(); // no hand-back: to the others this is a crash
    const lastRenew = Date.parse((await store.get('Lease', LEASE))!.spec!.renewTime!);
    await waitFor('agent-b leads', () => b.isLeader(), 15_000, 20);
    const lease = (await store.get('Lease', LEASE))!;
    expect(lease.spec?.holderIdentity).toBe('agent-b');
    expect(lease.spec?.leaseTransitions).toBe(1);
    // Safety bound: b's acquisition is at least one lease duration after a's last renewal.
    expect(Date.parse(lease.spec!.acquireTime!) - lastRenew).toBeGreaterThanOrEqual(TIMING.leaseDurationMs);
    await b.stop();
  });

  it('a leader that stops hands the Lease back and the other takes over without waiting out the lease', async () => {
    const { client, elector } = cluster();
    const store = client();
    // A lease far longer than the wait below: only a hand-back lets b lead in time.
    const long = { ...TIMING, leaseDurationMs: 120_000, followerPollMs: 500 };
    const a = elector('agent-a', client(), true, long);
    a.start();
    await waitFor('agent-a leads', () => a.isLeader(), 10_000, 20);
    const b = elector('agent-b', client(), true, long);
    b.start();
    await new Promise((r) => setTimeout(r, TIMING.retryPeriodMs * 3));
    expect(b.isLeader()).toBe(false);
    await a.stop();
    await waitFor('agent-b leads', () => b.isLeader(), 15_000, 20);
    expect((await store.get('Lease', LEASE))?.spec?.holderIdentity).toBe('agent-b');
    await b.stop();
  });
});

describe('cluster IPAM GC on etcd', () => {
  async function setup() {
    const { client, elector } = cluster();
    const admin = client();
    await admin.create({
      apiVersion: TERN_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'p' },
      spec: { cidr: '10.90.0.0/24', blockSize: 28 },
    });
    for (const name of ['n1', 'n2'])
      await admin.create({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
    const agent = (name: string) => {
      const ds = client();
      const ipam = new Ipam({ datastore: ds, logger: quiet, sweepIntervalMs: 0 });
      opened.push(ipam);
      const e = elector(name, ds);
      const gc = new ClusterGc({
        datastore: ds,
        ipam,
        isLeader: () => e.isLeader(),
        graceMs: 1_000,
        logger: quiet,
      });
      return { ipam, elector: e, gc };
    };
    const allocated = async () =>
      (await admin.list('IPAMBlock')).items
        .flatMap((b) => Object.values(b.spec.allocations))
        .map((a) => a.pod);
    return { admin, agent, allocated };
  }

  it('only the Lease holder of two agents runs GC; a deleted pod’s address is freed after the grace, a live pod’s and a pod created meanwhile are kept', async () => {
    const { admin, agent, allocated } = await setup();
    const agents = [agent('n1'), agent('n2')];
    for (const a of agents) a.elector.start();
    await waitFor('a leader', () => agents.some((a) => a.elector.isLeader()), 10_000, 20);

    const add = (pod: string, node: string, ipam: Ipam) =>
      ipam.assign({
        attachment: { namespace: 'default', pod, containerID: `ctr-${pod}`, ifname: 'eth0' },
        node,
      });
    await admin.create(podObject('live', 'n1'));
    await add('live', 'n1', agents[0]!.ipam);
    await admin.create(podObject('gone', 'n2'));
    await add('gone', 'n2', agents[1]!.ipam);
    // Its allocation exists before its Pod object is visible to the first GC pass.
    await add('late', 'n2', agents[1]!.ipam);
    await admin.delete('Pod', { namespace: 'default', name: 'gone' });

    const first = await Promise.all(agents.map((a) => a.gc.runOnce()));
    expect(first.filter((r) => r.ran)).toHaveLength(1);
    expect(first.flatMap((r) => r.freed)).toEqual([]);
    expect(first.find((r) => r.ran)?.pending).toBe(2); // gone and late
    await admin.create(podObject('late', 'n2'));

    const freed: string[] = [];
    const ran = [0, 0];
    await waitFor(
      'the deleted pod’s address freed',
      async () => {
        const reports = await Promise.all(agents.map((a) => a.gc.runOnce()));
        reports.forEach((r, i) => (ran[i]! += r.ran ? 1 : 0));
        freed.push(...reports.flatMap((r) => r.freed.map((f) => f.pod!)));
        return freed.length > 0;
      },
      15_000,
      200,
    );
    expect(freed).toEqual(['gone']);
    expect(ran.filter((n) => n > 0)).toHaveLength(1);
    expect((await allocated()).sort()).toEqual(['late', 'live']);
    for (const a of agents) await a.elector.stop();
  });

  it('a deleted node’s block is released after the grace; the address a pod on another node borrowed from it stays', async () => {
    const { admin, agent } = await setup();
    const gcAgent = agent('n1');
    gcAgent.elector.start();
    await waitFor('a leader', () => gcAgent.elector.isLeader(), 10_000, 20);
    // n2 claims a block for its pod; then n2 goes away.
    const add = (pod: string, node: string) =>
      gcAgent.ipam.assign({
        attachment: { namespace: 'default', pod, containerID: `ctr-${pod}`, ifname: 'eth0' },
        node,
      });
    await admin.create(podObject('on-n2', 'n2'));
    await add('on-n2', 'n2');
    const [n2Block] = (await admin.list('IPAMBlock')).items;
    expect(n2Block?.spec.affinity).toBe('n2');
    await admin.delete('Node', { name: 'n2' });
    await admin.delete('Pod', { namespace: 'default', name: 'on-n2' });
    // A pod on n1 holding an address in n2's block (as a borrow would), written by CAS like IPAM does.
    const block = (await admin.get('IPAMBlock', { name: n2Block!.metadata.name }))!;
    block.spec.allocations['9'] = {
      handle: 'default/borrower/ctr-borrower/eth0',
      namespace: 'default',
      pod: 'borrower',
      containerID: 'ctr-borrower',
      interface: 'eth0',
      node: 'n1',
    };
    await admin.update<'IPAMBlock'>(block);
    await admin.create(podObject('borrower', 'n1'));

    const released: string[] = [];
    await waitFor(
      'n2’s block released',
      async () => {
        released.push(...(await gcAgent.gc.runOnce()).releasedBlocks);
        return released.length > 0;
      },
      15_000,
      200,
    );
    expect(released).toEqual([n2Block!.spec.cidr]);
    const after = (await admin.get('IPAMBlock', { name: n2Block!.metadata.name }))!;
    expect(after.spec.affinity).toBeUndefined();
    expect(Object.values(after.spec.allocations).map((a) => a.pod)).toEqual(['borrower']);
    await gcAgent.elector.stop();
  });
});
