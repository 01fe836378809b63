// 100 concurrent ADDs mixing ordinal-list replicas, reserved pods, sticky pods and ordinary
// pods over three nodes, each node an Ipam with its own etcd client (as three agents would):
// only etcd's compare-and-swap keeps them apart. Then every pod is deleted, the holds expire,
// and nothing is left but what is reserved on purpose, which goes when its owner is released.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdDatastore } from '../../../datastore/etcd.js';
import type { Datastore } from '../../../datastore/types.js';
import { ANNOTATIONS, Ipam, type AssignRequest } from '../../../ipam/index.js';
import { TERN_API_VERSION } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { startEtcd, type EtcdServer } from '../../support/etcd.js';
import { uniqueSuffix } from '../../support/netns.js';

const quiet = createLogger('stable-etcd-test', { level: 'silent' });
const NODES = ['n1', 'n2', 'n3'];
const HOLD_SECONDS = 2;

let server: EtcdServer;
const opened: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  server = await startEtcd();
});
afterAll(async () => {
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
  await server?.stop();
});

function client(prefix: string): Datastore {
  const ds = new EtcdDatastore({ endpoints: [server.endpoint], prefix, logger: quiet });
  opened.push(ds);
  return ds;
}

const SET = Array.from({ length: 20 }, (_, i) => `10.21.0.${100 + i}`);
const PINNED = Array.from({ length: 10 }, (_, i) => `10.20.0.${230 + i}`);
const KV = Array.from({ length: 10 }, (_, i) => `10.20.0.${240 + i}`);

interface Pod {
  name: string;
  kind: 'listed' | 'reserved' | 'sticky' | 'ordinary';
  expect?: string;
  annotations?: Record<string, string>;
}

function pods(): Pod[] {
  const out: Pod[] = [];
  const byOrdinal = { [ANNOTATIONS.ipAddrsByOrdinal]: JSON.stringify(SET) };
  SET.forEach((ip, i) => out.push({ name: `db-${i}`, kind: 'listed', expect: ip, annotations: byOrdinal }));
  PINNED.forEach((ip, i) =>
    out.push({ name: `pinned-${String.fromCharCode(97 + i)}`, kind: 'reserved', expect: ip }),
  );
  KV.forEach((ip, i) => out.push({ name: `kv-${i}`, kind: 'reserved', expect: ip }));
  for (let i = 0; i < 30; i++)
    out.push({ name: `s${i}`, kind: 'sticky', annotations: { [ANNOTATIONS.stickyIp]: 'true' } });
  for (let i = 0; i < 30; i++) out.push({ name: `o${i}`, kind: 'ordinary' });
  return out;
}

describe('stable addresses under concurrency on etcd', () => {
  it('100 concurrent ADDs (listed, reserved, sticky, ordinary) on 3 nodes: no duplicate, each bound pod its address, nothing leaked after DEL and hold expiry', async () => {
    const prefix = `/tern-stable-${uniqueSuffix()}/`;
    const admin = client(prefix);
    await admin.create({
      apiVersion: TERN_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'main' },
      spec: { cidr: '10.20.0.0/24', blockSize: 28, stickyHoldSeconds: HOLD_SECONDS },
    });
    // The ordinal list lives in a pool no node allocates from by itself.
    await admin.create({
      apiVersion: TERN_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'stable' },
      spec: { cidr: '10.21.0.0/24', nodeSelector: { matchLabels: { 'tern.network/never': 'true' } } },
    });
    await admin.create({
      apiVersion: TERN_API_VERSION,
      kind: 'IPReservation',
      metadata: { namespace: 'app', name: 'pins' },
      spec: {
        pods: PINNED.map((ip, i) => ({ name: `pinned-${String.fromCharCode(97 + i)}`, addresses: [ip] })),
        statefulSets: [{ name: 'kv', addresses: KV }],
      },
    });
    const ipams = NODES.map(() => {
      const i = new Ipam({
        datastore: client(prefix),
        logger: quiet,
        retry: { maxBackoffMs: 20 },
        sweepIntervalMs: 0,
      });
      opened.push(i);
      return i;
    });
    const all = pods();
    const req = (p: Pod, i: number): AssignRequest => ({
      attachment: { namespace: 'app', pod: p.name, containerID: `c-${p.name}`, ifname: 'eth0' },
      node: NODES[i % 3]!,
      nodeLabels: {},
      ...(p.annotations ? { podAnnotations: p.annotations } : {}),
    });
    const results = await Promise.all(all.map((p, i) => ipams[i % 3]!.assign(req(p, i))));
    const addresses = results.map((r) => r.addresses.map((a) => a.address));
    expect(addresses.every((a) => a.length === 1)).toBe(true);
    const flat = addresses.flat();
    expect(new Set(flat).size).toBe(100);
    all.forEach((p, i) => {
      if (p.expect) expect(addresses[i]).toEqual([p.expect]);
      else expect([...SET, ...PINNED, ...KV]).not.toContain(addresses[i]![0]);
    });
    const stored = (await admin.list('IPAMBlock')).items.flatMap((b) => Object.keys(b.spec.allocations));
    expect(stored).toHaveLength(100);

    await Promise.all(
      all.map((p, i) => ipams[i % 3]!.release({ containerID: `c-${p.name}`, ifname: 'eth0' })),
    );
    const after = await ipams[0]!.bindings();
    const count = (state: string) => after.filter((b) => b.state === state).length;
    expect([count('in use'), count('held'), count('reserved')]).toEqual([0, 30, 40]);

    await new Promise((r) => setTimeout(r, HOLD_SECONDS * 1000 + 100));
    await ipams[1]!.sweep();
    const left = await ipams[2]!.bindings();
    expect(left.map((b) => b.address).sort()).toEqual([...SET, ...PINNED, ...KV].sort());
    expect(left.every((b) => b.state === 'reserved')).toBe(true);

    // The owners go: the StatefulSet's list is released, the IPReservation deleted.
    await ipams[0]!.releaseReserved('app/db');
    const pins = await admin.get('IPReservation', { namespace: 'app', name: 'pins' });
    await admin.delete(
      'IPReservation',
      { namespace: 'app', name: 'pins' },
      { resourceVersion: pins!.metadata.resourceVersion },
    );
    await ipams[1]!.sweep();
    const blocks = (await admin.list('IPAMBlock')).items;
    expect(blocks.flatMap((b) => Object.keys(b.spec.allocations))).toEqual([]);
  }, 120_000);
});
