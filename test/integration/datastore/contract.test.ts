// One contract, every backend: what any Datastore must guarantee to the IPAM, the agent and
// the policy engine. A backend joins by adding a factory to BACKENDS (kubernetes: issue 9).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EtcdDatastore } from '../../../datastore/etcd.js';
import { KubernetesDatastore } from '../../../datastore/kubernetes/index.js';
import { Informer } from '../../../datastore/informer.js';
import { MemoryDatastore } from '../../../datastore/memory.js';
import type { Datastore, Watch, WatchEvent } from '../../../datastore/types.js';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  ValidationError,
  keyString,
  type ClusterNetworkPolicy,
  type IPPool,
  type Kind,
  type Pod,
  type ResourceByKind,
} from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { startEtcd, type EtcdServer } from '../../support/etcd.js';
import { startKubeApiServer } from '../../support/kube-api-server.js';
import { startKubeCluster } from '../../support/kube-cluster.js';
import { uniqueSuffix, waitFor } from '../../support/netns.js';

const quiet = createLogger('contract-test', { level: 'silent' });

interface BackendFixture {
  /** A fresh, empty datastore (its own key space on a shared server). */
  open(): Datastore;
  /** Drops history up to the current revision, so watches from before must resync. */
  compactNow(store: Datastore): Promise<void>;
  /** Restarts the server under open watches, when the backend has one. */
  restart?(): Promise<void>;
  /**
   * A restart may lose the history a watch resumes from, which then ends with resync: the real
   * kube-apiserver rebuilds its watch cache from "now" when it starts, and a watch from an older
   * resourceVersion gets 410.
   */
  restartMayForgetHistory?: boolean;
  /** Before each test, for a backend whose stores share one key space: empties it. */
  reset?(): Promise<void>;
  teardown(): Promise<void>;
}

interface BackendFactory {
  name: string;
  setup(): Promise<BackendFixture>;
}

const memoryBackend: BackendFactory = {
  name: 'memory',
  setup: async () => ({
    open: () => new MemoryDatastore(),
    compactNow: async (store) => (store as MemoryDatastore).compact(),
    teardown: async () => undefined,
  }),
};

const etcdBackend: BackendFactory = {
  name: 'etcd',
  setup: async () => {
    const server: EtcdServer = await startEtcd();
    return {
      open: () =>
        new EtcdDatastore({
          endpoints: [server.endpoint],
          prefix: `/tern-test-${uniqueSuffix()}/`,
          logger: quiet,
        }),
      compactNow: async () => server.compact(await server.revision()),
      restart: () => server.restart(),
      teardown: () => server.stop(),
    };
  },
};

// Our Kubernetes protocol server (test/support/kube-api-server.ts), one tenant (its own
// resourceVersion counter) per store. The real-cluster variant is kubernetes-cluster.test.ts.
const kubernetesBackend: BackendFactory = {
  name: 'kubernetes',
  setup: async () => {
    const server = await startKubeApiServer({ bookmarkIntervalMs: 200 });
    return {
      open: () =>
        new KubernetesDatastore({
          server: server.newTenant(),
          logger: quiet,
          watchBackoff: { initialMs: 20, maxMs: 500 },
        }),
      compactNow: async (store) => server.compact((store as KubernetesDatastore).server),
      restart: () => server.restart(),
      teardown: () => server.close(),
    };
  },
};

/**
 * Namespaces the tests put Pods in. A real API server admits a Pod only into a namespace that
 * exists, so the real backend creates these first.
 */
const POD_NAMESPACES = ['a', 'b', 'ab', 'many', 't', 'ns'];

// The real kube-apiserver (test/support/kube-cluster.ts), as production runs it (watch cache on).
// It has one key space: before each test the kinds the tests write are emptied. Compaction is
// etcd's plus an API server restart: the watch cache keeps serving history etcd has compacted
// until it is rebuilt, which is how a long-running server forgets history too.
const realKubernetesBackend: BackendFactory = {
  name: 'kubernetes (real kube-apiserver)',
  setup: async () => {
    const cluster = await startKubeCluster({ name: 'contract' });
    try {
      await cluster.applyCrds();
      for (const ns of POD_NAMESPACES) await cluster.createNamespace(ns);
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    const emptied = [
      ...POD_NAMESPACES.map((ns) => `/api/v1/namespaces/${ns}/pods`),
      '/apis/tern.network/v1/ippools',
      '/apis/policy.networking.k8s.io/v1beta1/clusternetworkpolicies',
    ];
    return {
      open: () =>
        new KubernetesDatastore({
          kubeconfigPath: cluster.adminKubeconfig,
          logger: quiet,
          watchBackoff: { initialMs: 20, maxMs: 500 },
        }),
      reset: async () => {
        for (const path of emptied) {
          const r = await cluster.request('DELETE', path);
          if (r.status !== 200) throw new Error(`DELETE ${path}: ${r.status} ${JSON.stringify(r.body)}`);
        }
      },
      compactNow: async () => {
        await cluster.compact();
        await cluster.restartApiServer();
      },
      restart: () => cluster.restartApiServer(),
      restartMayForgetHistory: true,
      teardown: () => cluster.stop(),
    };
  },
};

const BACKENDS: BackendFactory[] = [memoryBackend, etcdBackend, kubernetesBackend, realKubernetesBackend];

// ---- objects ----
// The cluster-scoped object of these tests is an IPPool, not a Namespace: a real API server
// deletes a Namespace only after its controller has emptied it (it lingers, Terminating), and
// always has its own (default, kube-system, …).
const pool = (name: string, cidr = '10.10.0.0/16', annotations?: Record<string, string>): IPPool => ({
  apiVersion: 'tern.network/v1',
  kind: 'IPPool',
  metadata: { name, ...(annotations ? { annotations } : {}) },
  spec: { cidr },
});
// A real API server requires a container image.
const pod = (ns: string, name: string, labels: Record<string, string> = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace: ns, name, labels },
  spec: { containers: [{ name: 'c', image: 'tern.invalid/none:1' }] },
});

type ChangeRecord = { type: string; name: string; revision?: string };

/** Collects a watch's events as (type, name, revision). */
function record<K extends Kind>(store: Datastore, kind: K, fromRevision?: string) {
  const events: ChangeRecord[] = [];
  const watch: Watch = store.watch(kind, { fromRevision }, (e: WatchEvent<K>) =>
    events.push(
      e.type === 'resync'
        ? { type: 'resync', name: '' }
        : { type: e.type, name: keyString(e.object.metadata), revision: e.revision },
    ),
  );
  return { events, watch };
}

const names = (objs: Array<{ metadata: { name: string; namespace?: string } }>) =>
  objs.map((o) => keyString(o.metadata)).sort();

/** Sets `backend` up for the enclosing describe: `open()` gives a fresh store, closed at the end. */
function useBackend(backend: BackendFactory) {
  let fixture: BackendFixture | undefined;
  const stores: Datastore[] = [];
  beforeAll(async () => {
    fixture = await backend.setup();
  }, 180_000);
  beforeEach(async () => {
    await fixture?.reset?.();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await fixture?.teardown();
  });
  return {
    fixture: () => fixture!,
    open: () => {
      const s = fixture!.open();
      stores.push(s);
      return s;
    },
  };
}

describe.each(BACKENDS)('datastore contract: $name', (backend) => {
  const { open, fixture } = useBackend(backend);

  it('creates, reads, lists, updates and deletes namespaced and cluster-scoped objects', async () => {
    const store = open();
    const created = await store.create(pool('p1', '10.10.0.0/16'));
    expect(created.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(await store.get('IPPool', { name: 'p1' })).toEqual(created);
    await expect(store.create(pool('p1', '10.11.0.0/16'))).rejects.toBeInstanceOf(AlreadyExistsError);

    await store.create(pod('a', 'x'));
    await store.create(pod('a', 'y'));
    await store.create(pod('b', 'x'));
    expect(names((await store.list('Pod')).items)).toEqual(['a/x', 'a/y', 'b/x']);
    expect(names((await store.list('Pod', { namespace: 'a' })).items)).toEqual(['a/x', 'a/y']);
    expect(await store.get('Pod', { namespace: 'c', name: 'x' })).toBeUndefined();

    const updated = await store.update({ ...created, spec: { ...created.spec, disabled: true } });
    expect(updated.spec.disabled).toBe(true);
    expect(BigInt(updated.metadata.resourceVersion!)).toBeGreaterThan(
      BigInt(created.metadata.resourceVersion!),
    );
    expect(await store.get('IPPool', { name: 'p1' })).toEqual(updated);
    const listed = await store.list('IPPool');
    expect(BigInt(listed.revision)).toBeGreaterThanOrEqual(BigInt(updated.metadata.resourceVersion!));

    await store.delete('IPPool', { name: 'p1' });
    expect(await store.get('IPPool', { name: 'p1' })).toBeUndefined();
    await expect(store.delete('IPPool', { name: 'p1' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.update(updated)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('filters list and watch by namespace for namespaced kinds and ignores the filter for cluster-scoped ones', async () => {
    const store = open();
    const { revision } = await store.list('Pod');
    const events: string[] = [];
    const w = store.watch('Pod', { namespace: 'a', fromRevision: revision }, (e) => {
      if (e.type !== 'resync') events.push(keyString(e.object.metadata));
    });
    await store.create(pod('b', 'x'));
    await store.create(pod('a', 'x'));
    await store.create(pod('ab', 'x')); // a namespace sharing a prefix with 'a'
    await store.create(pool('cluster-wide'));
    await waitFor('event for a/x', () => events.length >= 1, 5000, 10);
    await new Promise((r) => setTimeout(r, 100));
    await w.close();
    expect(events).toEqual(['a/x']);
    expect(names((await store.list('Pod', { namespace: 'a' })).items)).toEqual(['a/x']);
    expect(names((await store.list('IPPool', { namespace: 'a' })).items)).toEqual(['cluster-wide']);
  });

  it('lists more objects than one etcd page (600) completely, at one revision', async () => {
    const store = open();
    for (let b = 0; b < 6; b++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => store.create(pod('many', `p-${b * 100 + i}`))));
    }
    const { items, revision } = await store.list('Pod', { namespace: 'many' });
    expect(items).toHaveLength(600);
    expect(new Set(items.map((p) => p.metadata.name)).size).toBe(600);
    const newest = items.reduce(
      (m, p) => (BigInt(p.metadata.resourceVersion!) > m ? BigInt(p.metadata.resourceVersion!) : m),
      0n,
    );
    expect(BigInt(revision)).toBeGreaterThanOrEqual(newest);
  });

  it('gives ConflictError to an update or delete based on a stale resourceVersion, and keeps the winner', async () => {
    const store = open();
    const base = await store.create(pool('n1', '10.10.0.0/16', { owner: 'nobody' }));
    const winner = await store.update({
      ...base,
      metadata: { ...base.metadata, annotations: { owner: 'a' } },
    });
    await expect(
      store.update({ ...base, metadata: { ...base.metadata, annotations: { owner: 'b' } } }),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(
      store.delete('IPPool', { name: 'n1' }, { resourceVersion: base.metadata.resourceVersion }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(await store.get('IPPool', { name: 'n1' })).toEqual(winner);

    await store.delete('IPPool', { name: 'n1' }, { resourceVersion: winner.metadata.resourceVersion });
    expect(await store.get('IPPool', { name: 'n1' })).toBeUndefined();
  });

  it('loses no update among 100 concurrent compare-and-swap writers on one key', async () => {
    const store = open();
    await store.create(pool('counter', '10.10.0.0/16', { count: '0' }));
    let conflicts = 0;
    const increment = async () => {
      for (let attempt = 0; ; attempt++) {
        const cur = (await store.get('IPPool', { name: 'counter' }))!;
        const next = String(Number(cur.metadata.annotations!.count) + 1);
        try {
          await store.update({ ...cur, metadata: { ...cur.metadata, annotations: { count: next } } });
          return;
        } catch (e) {
          if (!(e instanceof ConflictError)) throw e;
          conflicts++;
          // Jittered exponential backoff, as real writers do, so they do not retry in lockstep.
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
        }
      }
    };
    await Promise.all(Array.from({ length: 100 }, increment));
    const final = await store.get('IPPool', { name: 'counter' });
    expect(final?.metadata.annotations?.count).toBe('100');
    expect(conflicts).toBeGreaterThan(0); // the writers really did race
  }, 90_000); // ~1000–2500 round trips: seconds when idle, much more on a loaded CI machine

  it('resumes a watch from a revision with exactly the later changes, in order', async () => {
    const store = open();
    const { revision: r0 } = await store.list('IPPool');
    const first = record(store, 'IPPool', r0);
    const a = await store.create(pool('a'));
    await store.update({ ...a, metadata: { ...a.metadata, labels: { x: 'y' } } });
    await waitFor('two events', () => first.events.length >= 2, 5000, 10);
    await first.watch.close();
    const resumeFrom = first.events[first.events.length - 1]!.revision!;

    await store.create(pool('b'));
    await store.delete('IPPool', { name: 'a' });
    const resumed = record(store, 'IPPool', resumeFrom);
    await waitFor('two resumed events', () => resumed.events.length >= 2, 5000, 10);
    await store.create(pool('c'));
    await waitFor('live event', () => resumed.events.length >= 3, 5000, 10);
    await resumed.watch.close();

    expect(first.events.map((e) => [e.type, e.name])).toEqual([
      ['added', 'a'],
      ['modified', 'a'],
    ]);
    expect(resumed.events.map((e) => [e.type, e.name])).toEqual([
      ['added', 'b'],
      ['deleted', 'a'],
      ['added', 'c'],
    ]);
    const revs = [...first.events, ...resumed.events].map((e) => BigInt(e.revision!));
    expect(revs).toEqual([...revs].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
  });

  it('ends a watch from a compacted revision with a resync event and nothing else', async () => {
    const store = open();
    const { revision: old } = await store.list('IPPool');
    const p = await store.create(pool('old', '10.20.0.0/16'));
    await store.update({ ...p, spec: { ...p.spec, disabled: true } });
    await store.create(pool('newer', '10.21.0.0/16'));
    await fixture().compactNow(store);

    const w = record(store, 'IPPool', old);
    await waitFor('resync', () => w.events.length >= 1, 5000, 10);
    await store.create(pool('after', '10.22.0.0/16'));
    await new Promise((r) => setTimeout(r, 100));
    await w.watch.close();
    expect(w.events.map((e) => e.type)).toEqual(['resync']);
  });

  it('lets an informer whose watch history was compacted recover by relisting, emitting the difference', async () => {
    const store = open();
    const gated = new GatedWatchStore(store);
    await store.create(pod('t', 'stays'));
    await store.create(pod('t', 'changes'));
    await store.create(pod('t', 'goes'));

    const informer = new Informer(gated, 'Pod', { logger: quiet, retryDelayMs: { initial: 10, max: 100 } });
    // The consumer's own view, built only from the informer's events.
    const view = new Map<string, ResourceByKind['Pod']>();
    const seen: string[] = [];
    informer.on({
      onChange: (e) => {
        const k = keyString(e.object.metadata);
        if (e.type === 'deleted') view.delete(k);
        else view.set(k, e.object);
        seen.push(`${e.type} ${k}`);
      },
    });
    informer.start();
    await informer.synced();
    expect([...view.keys()].sort()).toEqual(['t/changes', 't/goes', 't/stays']);

    // While the informer's watch is held back, the store moves on and forgets its history.
    const changes = (await store.get('Pod', { namespace: 't', name: 'changes' }))!;
    await store.update({ ...changes, metadata: { ...changes.metadata, labels: { v: '2' } } });
    await store.delete('Pod', { namespace: 't', name: 'goes' });
    await store.create(pod('t', 'new'));
    await fixture().compactNow(store);
    seen.length = 0;
    gated.release();

    await waitFor('informer to relist', () => informer.resyncCount >= 1 && seen.length >= 3, 10_000, 10);
    await store.create(pod('t', 'live'));
    await waitFor('live event after relist', () => view.has('t/live'), 10_000, 10);

    const truth = (await store.list('Pod')).items;
    expect(names(informer.list())).toEqual(names(truth));
    expect([...view.values()].map((o) => [keyString(o.metadata), o.metadata.resourceVersion]).sort()).toEqual(
      truth.map((o) => [keyString(o.metadata), o.metadata.resourceVersion]).sort(),
    );
    expect(seen.sort()).toEqual(['added t/live', 'added t/new', 'deleted t/goes', 'modified t/changes']);
    await informer.stop();
  });

  it('rejects a malformed resource with a ValidationError naming the field, and writes nothing', async () => {
    const store = open();
    const before = await store.list('IPPool');
    const writes = record(store, 'IPPool', before.revision);
    const bad = pool('bad', '10.30.0.1/16'); // host bits set
    const err = await store.create(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('spec.cidr');

    const noNamespace = { ...pod('x', 'p'), metadata: { name: 'p' } } as unknown as Pod;
    await expect(store.create(noNamespace)).rejects.toMatchObject({ field: 'metadata.namespace' });

    const good = await store.create(pool('good', '10.31.0.0/16'));
    const err2 = await store
      .update({ ...good, spec: { ...good.spec, blockSize: 8 } })
      .catch((e: unknown) => e as ValidationError);
    expect(err2).toMatchObject({ field: 'spec.blockSize' });

    expect(await store.get('IPPool', { name: 'bad' })).toBeUndefined();
    expect(await store.get('IPPool', { name: 'good' })).toEqual(good);
    // Exactly one write (the good create) happened since `before`. (Not counted by revisions:
    // a real API server's resourceVersion is etcd's, moved by its own leases too.)
    await waitFor('the good create', () => writes.events.length >= 1, 5000, 10);
    await new Promise((r) => setTimeout(r, 200));
    await writes.watch.close();
    expect(writes.events.map((e) => `${e.type} ${e.name}`)).toEqual(['added good']);
  });

  it('stores ClusterNetworkPolicy (cluster-scoped, v1alpha2 written as v1beta1), watches it, refuses a bad one', async () => {
    const store = open();
    // From a listed revision: a watch without one starts whenever it connects and could miss the create.
    const { revision } = await store.list('ClusterNetworkPolicy');
    const { events, watch } = record(store, 'ClusterNetworkPolicy', revision);
    const cnp = (name: string, priority: number): ClusterNetworkPolicy => ({
      apiVersion: 'policy.networking.k8s.io/v1beta1',
      kind: 'ClusterNetworkPolicy',
      metadata: { name },
      spec: {
        tier: 'Admin',
        priority,
        subject: { namespaces: { matchLabels: { tenant: 'a' } } },
        egress: [{ action: 'Deny', to: [{ networks: ['10.0.0.0/8'] }] }],
      },
    });
    const alpha = { ...cnp('deny-10', 5), apiVersion: 'policy.networking.k8s.io/v1alpha2' };
    const created = await store.create(alpha as unknown as ClusterNetworkPolicy);
    expect(created.apiVersion).toBe('policy.networking.k8s.io/v1beta1');
    expect(await store.get('ClusterNetworkPolicy', { name: 'deny-10' })).toEqual(created);
    const err = await store.create(cnp('too-late', 1001)).catch((e: unknown) => e);
    expect(err).toMatchObject({ field: 'spec.priority' });
    await store.update({ ...created, spec: { ...created.spec, priority: 6 } });
    await waitFor('both events', () => events.length >= 2, 10_000);
    expect(events.map((e) => [e.type, e.name])).toEqual([
      ['added', 'deny-10'],
      ['modified', 'deny-10'],
    ]);
    expect(names((await store.list('ClusterNetworkPolicy')).items)).toEqual(['deny-10']);
    await watch.close();
  });
});

/** Holds back every watch until released, to model a watch that (re)connects late. */
class GatedWatchStore implements Datastore {
  readonly backend;
  private released = false;
  private readonly pending: Array<() => void> = [];
  constructor(private readonly inner: Datastore) {
    this.backend = inner.backend;
  }
  release(): void {
    this.released = true;
    for (const start of this.pending.splice(0)) start();
  }
  get: Datastore['get'] = (kind, key) => this.inner.get(kind, key);
  list: Datastore['list'] = (kind, options) => this.inner.list(kind, options);
  create: Datastore['create'] = (obj) => this.inner.create(obj);
  update: Datastore['update'] = (obj) => this.inner.update(obj);
  delete: Datastore['delete'] = (kind, key, options) => this.inner.delete(kind, key, options);
  close = () => this.inner.close();
  watch: Datastore['watch'] = (kind, options, onEvent) => {
    let inner: Watch | undefined;
    let closed = false;
    const start = () => {
      if (!closed) inner = this.inner.watch(kind, options, onEvent);
    };
    if (this.released) start();
    else this.pending.push(start);
    return {
      close: async () => {
        closed = true;
        await inner?.close();
      },
    };
  };
}

// Backends with a server to restart (memory has none; its watch resume is covered above).
describe.each([etcdBackend, kubernetesBackend, realKubernetesBackend])(
  'datastore contract across a server restart: $name',
  (backend) => {
    const { open, fixture } = useBackend(backend);

    it('keeps a watch open across a server restart and misses no event written around it', async () => {
      const store = open();
      const { revision } = await store.list('Pod');
      const w = record(store, 'Pod', revision);
      await store.create(pod('ns', 'before-1'));
      await store.create(pod('ns', 'before-2'));
      await waitFor('events before the restart', () => w.events.length >= 2, 5000, 10);

      await fixture().restart!();
      // Written while the watch is still reconnecting: the resumed stream must replay them.
      for (let i = 0; i < 5; i++) await store.create(pod('ns', `after-${i}`));
      await store.delete('Pod', { namespace: 'ns', name: 'before-1' });
      const resynced = () => w.events.some((e) => e.type === 'resync');
      await waitFor('events after the restart', () => w.events.length >= 8 || resynced(), 15_000, 20);
      await new Promise((r) => setTimeout(r, 200)); // room for a duplicate to show up
      await w.watch.close();

      const before = ['added ns/before-1', 'added ns/before-2'];
      const seen = w.events.map((e) => `${e.type} ${e.name}`);
      if (fixture().restartMayForgetHistory && resynced()) {
        // The history this watch resumes from is gone with the server's watch cache: the watch
        // ends with resync (the Informer relists) and has delivered nothing out of order.
        expect(seen).toEqual([...before, 'resync ']);
        return;
      }
      expect(seen).toEqual([
        ...before,
        ...[0, 1, 2, 3, 4].map((i) => `added ns/after-${i}`),
        'deleted ns/before-1',
      ]);
    });
  },
);
