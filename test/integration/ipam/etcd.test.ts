// IPAM's concurrency guarantees against a real etcd: every Ipam below has its own etcd client,
// as separate agents on separate nodes would, so only etcd's compare-and-swap keeps them apart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdDatastore } from '../../../datastore/etcd.js';
import type { Datastore } from '../../../datastore/types.js';
import { ExhaustedError, TERN_API_VERSION, ValidationError, type IPPool } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { ANNOTATIONS, Ipam, type AssignRequest, type AssignResult } from '../../../ipam/index.js';
import { startEtcd, type EtcdServer } from '../../support/etcd.js';
import { counting } from '../../unit/ipam/fixture.js';
import { uniqueSuffix, waitFor } from '../../support/netns.js';

const quiet = createLogger('ipam-etcd-test', { level: 'silent' });

let server: EtcdServer;
const opened: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  server = await startEtcd();
});
afterAll(async () => {
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
  await server?.stop();
});

/** A key space of its own on the shared server, and a way to open clients on it. */
function cluster() {
  const prefix = `/tern-ipam-${uniqueSuffix()}/`;
  const client = (): Datastore => {
    const ds = new EtcdDatastore({ endpoints: [server.endpoint], prefix, logger: quiet });
    opened.push(ds);
    return ds;
  };
  const ipam = (ds: Datastore = client()): Ipam => {
    const i = new Ipam({ datastore: ds, logger: quiet, retry: { maxBackoffMs: 20 } });
    opened.push(i);
    return i;
  };
  return { client, ipam };
}

const pool = (name: string, cidr: string, spec: Partial<IPPool['spec']> = {}): IPPool => ({
  apiVersion: TERN_API_VERSION,
  kind: 'IPPool',
  metadata: { name },
  spec: { cidr, ...spec },
});

const request = (pod: string, node: string, more: Partial<AssignRequest> = {}): AssignRequest => ({
  attachment: { namespace: 'default', pod, containerID: `ctr-${pod}`, ifname: 'eth0' },
  node,
  nodeLabels: {},
  ...more,
});

async function allocated(ds: Datastore): Promise<string[]> {
  const { items } = await ds.list('IPAMBlock');
  return items.flatMap((b) => Object.values(b.spec.allocations).map((a) => a.handle));
}

const addresses = (rs: AssignResult[]) => rs.flatMap((r) => r.addresses.map((a) => a.address));

describe('IPAM on etcd', () => {
  it('two nodes, each its own client, racing until the pool is full: no address twice, the rest exhausted', async () => {
    const c = cluster();
    const admin = c.client();
    await admin.create(pool('p', '10.120.0.0/26', { blockSize: 29 }));
    const [n1, n2] = [c.ipam(), c.ipam()];
    const settled = await Promise.allSettled([
      ...Array.from({ length: 40 }, (_, i) => n1.assign(request(`a${i}`, 'n1'))),
      ...Array.from({ length: 40 }, (_, i) => n2.assign(request(`b${i}`, 'n2'))),
    ]);
    const ok = settled.filter((s): s is PromiseFulfilledResult<AssignResult> => s.status === 'fulfilled');
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(failed.map((f) => f.reason).filter((r) => !(r instanceof ExhaustedError))).toEqual([]);
    expect(ok).toHaveLength(64);
    expect(new Set(addresses(ok.map((o) => o.value))).size).toBe(64);
    const stored = await allocated(admin);
    expect(stored).toHaveLength(64);
    expect(new Set(stored).size).toBe(64);
    // Both nodes got blocks; whoever ran out first borrowed from the other's.
    expect((await n1.blocksOf('n1')).length + (await n1.blocksOf('n2')).length).toBe(8);
  });

  it('two clients serving the same node (no shared lock) never collide, and release everything', async () => {
    const c = cluster();
    await c.client().create(pool('p', '10.121.0.0/24', { blockSize: 28 }));
    const [a, b] = [c.ipam(), c.ipam()];
    const results = await Promise.all([
      ...Array.from({ length: 30 }, (_, i) => a.assign(request(`a${i}`, 'n1'))),
      ...Array.from({ length: 30 }, (_, i) => b.assign(request(`b${i}`, 'n1'))),
    ]);
    expect(new Set(addresses(results)).size).toBe(60);
    // Releases through the other client: found by scanning, freed by CAS.
    const released = await Promise.all([
      ...Array.from({ length: 30 }, (_, i) => b.release({ containerID: `ctr-a${i}`, ifname: 'eth0' })),
      ...Array.from({ length: 30 }, (_, i) => a.release({ containerID: `ctr-b${i}`, ifname: 'eth0' })),
    ]);
    expect(released.map((r) => r.length)).toEqual(Array(60).fill(1));
    expect(await allocated(c.client())).toEqual([]);
  });

  it('50 concurrent dual-stack assigns on one node, then 50 concurrent releases: distinct addresses, nothing leaked', async () => {
    const c = cluster();
    const admin = c.client();
    await admin.create(pool('v4', '10.125.0.0/24'));
    await admin.create(pool('v6', 'fd00:125::/112'));
    const ipam = c.ipam();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ipam.assign(request(`p${i}`, 'n1'))),
    );
    expect(results.every((r) => r.addresses.map((a) => a.family).join() === '4,6')).toBe(true);
    expect(new Set(addresses(results)).size).toBe(100);
    expect(await allocated(admin)).toHaveLength(100);
    const released = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ipam.release({ containerID: `ctr-p${i}`, ifname: 'eth0' })),
    );
    expect(released.map((r) => r.length)).toEqual(Array(50).fill(2));
    expect(await allocated(admin)).toEqual([]);
  });

  it('five nodes asking for the same fixed address at once: exactly one gets it', async () => {
    const c = cluster();
    await c.client().create(pool('p', '10.122.0.0/24'));
    const settled = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        c
          .ipam()
          .assign(request(`p${i}`, `n${i}`, { podAnnotations: { [ANNOTATIONS.ipAddrs]: '["10.122.0.9"]' } })),
      ),
    );
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    expect(await allocated(c.client())).toHaveLength(1);
  });

  it('follows pool changes made through another client (watch)', async () => {
    const c = cluster();
    const admin = c.client();
    const created = await admin.create(pool('p', '10.123.0.0/24'));
    const ipam = c.ipam();
    await ipam.assign(request('before', 'n1'));
    await admin.update({ ...created, spec: { ...created.spec, disabled: true } });
    // Each probe either is refused (the watch delivered the change) or is given back at once.
    const refused = async () => {
      try {
        await ipam.assign(request('probe', 'n1', { podAnnotations: { [ANNOTATIONS.ipv4Pools]: '["p"]' } }));
      } catch (e) {
        return e instanceof ValidationError && e.message.includes('IPPool p is disabled');
      }
      await ipam.release({ containerID: 'ctr-probe', ifname: 'eth0' });
      return false;
    };
    await waitFor('the disabled pool to be refused', refused, 10_000);
  });

  it('warm assign and release cost one etcd write each; prints latency against a raw CAS write', async () => {
    const c = cluster();
    const { ds, calls } = counting(c.client());
    await ds.create(pool('p', '10.124.0.0/16'));
    const ipam = c.ipam(ds);
    await ipam.assign(request('warmup', 'n1'));
    const block = (await ds.list('IPAMBlock')).items[0]!;
    const N = 100;
    const floor: number[] = [];
    let b = block;
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      b = await ds.update(b);
      floor.push(performance.now() - t);
    }
    const assign: number[] = [];
    const release: number[] = [];
    // The floor loop rewrote the block behind the Ipam's back: its next write loses the CAS,
    // re-reads and retries (that is the design). Let it catch up before counting.
    await ipam.assign(request('resync', 'n1'));
    calls.length = 0;
    for (let i = 0; i < N; i++) {
      let t = performance.now();
      await ipam.assign(request(`x${i}`, 'n1'));
      assign.push(performance.now() - t);
      t = performance.now();
      await ipam.release({ containerID: `ctr-x${i}`, ifname: 'eth0' });
      release.push(performance.now() - t);
    }
    expect(calls).toEqual(Array(2 * N).fill('update'));
    const p = (xs: number[], q: number) =>
      [...xs].sort((x, y) => x - y)[Math.floor(q * (xs.length - 1))]!.toFixed(2);
    console.table({
      'raw etcd CAS update (floor)': { p50: p(floor, 0.5), p99: p(floor, 0.99) },
      'ipam.assign (warm)': { p50: p(assign, 0.5), p99: p(assign, 0.99) },
      'ipam.release (warm)': { p50: p(release, 0.5), p99: p(release, 0.99) },
    });
    expect((await allocated(ds)).sort()).toEqual([
      'default/resync/ctr-resync/eth0',
      'default/warmup/ctr-warmup/eth0',
    ]);
  });
});
