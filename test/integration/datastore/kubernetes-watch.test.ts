// The kubernetes backend's protocol behaviour beyond the shared contract, against our
// Kubernetes protocol server: watch streams cut mid-event, bookmarks, both forms of 410,
// paginated lists at one snapshot, and metadata the model does not know surviving an update.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesDatastore } from '../../../datastore/kubernetes/index.js';
import type { WatchEvent } from '../../../datastore/types.js';
import {
  ConflictError,
  formatMicroTime,
  keyString,
  type Kind,
  type Lease,
  type Namespace,
  type Pod,
} from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { startKubeApiServer, type KubeApiServer } from '../../support/kube-api-server.js';
import { waitFor } from '../../support/netns.js';

const quiet = createLogger('kubernetes-watch-test', { level: 'silent' });
const pod = (ns: string, name: string): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace: ns, name },
  spec: { containers: [{ name: 'c' }] },
});
const namespace = (name: string): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

function recorder<K extends Kind>(store: KubernetesDatastore, kind: K, fromRevision?: string) {
  const events: string[] = [];
  const revisions: bigint[] = [];
  const watch = store.watch(kind, { fromRevision }, (e: WatchEvent<K>) => {
    if (e.type === 'resync') events.push('resync');
    else {
      events.push(`${e.type} ${keyString(e.object.metadata)}`);
      revisions.push(BigInt(e.revision));
    }
  });
  return { events, revisions, watch };
}

describe('kubernetes datastore: watch and list protocol', () => {
  let server: KubeApiServer;
  const stores: KubernetesDatastore[] = [];
  const open = () => {
    const s = new KubernetesDatastore({
      server: server.newTenant(),
      logger: quiet,
      watchBackoff: { initialMs: 10, maxMs: 200 },
      listPageSize: 10,
    });
    stores.push(s);
    return s;
  };
  beforeAll(async () => {
    // Bookmarks rarely, so resumes here depend on the events' own resourceVersions.
    server = await startKubeApiServer({ bookmarkIntervalMs: 60_000 });
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await server.close();
  });

  it('resumes a watch whose stream was cut in the middle of an event, losing and repeating nothing', async () => {
    const store = open();
    const { revision } = await store.list('Pod');
    const w = recorder(store, 'Pod', revision);
    for (let i = 0; i < 3; i++) await store.create(pod('a', `p${i}`));
    await waitFor('first events', () => w.events.length >= 3, 5000, 10);
    const watchesBefore = server.requests.WATCH ?? 0;

    expect(server.cutWatchesMidEvent(store.server)).toBe(1);
    const p1 = (await store.get('Pod', { namespace: 'a', name: 'p1' }))!;
    await store.update({ ...p1, metadata: { ...p1.metadata, labels: { v: '2' } } }); // written half, then cut
    await store.delete('Pod', { namespace: 'a', name: 'p0' });
    for (let i = 3; i < 6; i++) await store.create(pod('a', `p${i}`));
    await waitFor('events after the cut', () => w.events.length >= 8, 10_000, 10);
    await new Promise((r) => setTimeout(r, 200)); // room for a duplicate to show up
    await w.watch.close();

    expect(server.midEventCuts()).toBe(1); // half an event really went out before the cut
    expect(server.requests.WATCH ?? 0).toBeGreaterThan(watchesBefore); // and the watch reconnected
    expect(w.events).toEqual([
      'added a/p0',
      'added a/p1',
      'added a/p2',
      'modified a/p1',
      'deleted a/p0',
      'added a/p3',
      'added a/p4',
      'added a/p5',
    ]);
    expect(w.revisions).toEqual([...w.revisions].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
  });

  it('resumes from the latest BOOKMARK, so a quiet watch survives compaction of history it never needed', async () => {
    const fast = await startKubeApiServer({ bookmarkIntervalMs: 50 });
    const store = new KubernetesDatastore({
      server: fast.url,
      logger: quiet,
      watchBackoff: { initialMs: 10, maxMs: 200 },
    });
    try {
      const { revision } = await store.list('Pod');
      const w = recorder(store, 'Pod', revision);
      await waitFor('watch open', () => fast.openWatches() === 1, 5000, 10);
      // Other kinds move the resourceVersion on; the Pod watch hears of it only through bookmarks.
      for (let i = 0; i < 5; i++) await store.create(namespace(`other-${i}`));
      const moved = fast.tenant().rv;
      await waitFor('a bookmark at the new resourceVersion', () => fast.lastBookmark() >= moved, 5000, 10);
      await new Promise((r) => setTimeout(r, 150)); // for the client to read it
      fast.compact();
      expect(fast.tenant().compactedThrough).toBe(moved);
      fast.cutWatches();
      await store.create(pod('b', 'after'));
      await waitFor('event after the resume', () => w.events.length >= 1, 10_000, 10);
      await w.watch.close();
      expect(w.events).toEqual(['added b/after']);
    } finally {
      await store.close();
      await fast.close();
    }
  });

  it('without a bookmark to resume from, the same compaction ends the watch with resync (the control)', async () => {
    const slow = await startKubeApiServer({ bookmarkIntervalMs: 60_000 });
    const store = new KubernetesDatastore({
      server: slow.url,
      logger: quiet,
      watchBackoff: { initialMs: 10, maxMs: 200 },
    });
    try {
      const { revision } = await store.list('Pod');
      const w = recorder(store, 'Pod', revision);
      await waitFor('watch open', () => slow.openWatches() === 1, 5000, 10);
      for (let i = 0; i < 5; i++) await store.create(namespace(`other-${i}`));
      slow.compact();
      slow.cutWatches();
      await waitFor('resync', () => w.events.length >= 1, 10_000, 10);
      await store.create(pod('b', 'after'));
      await new Promise((r) => setTimeout(r, 200));
      await w.watch.close();
      expect(w.events).toEqual(['resync']);
    } finally {
      await store.close();
      await slow.close();
    }
  });

  it.each(['event', 'status'] as const)(
    'ends a watch from a compacted resourceVersion with one resync when 410 comes as %s',
    async (mode) => {
      const store = open();
      const { revision } = await store.list('Namespace');
      await store.create(namespace('x'));
      server.compact(store.server);
      server.setGoneAs(mode);
      try {
        const w = recorder(store, 'Namespace', revision);
        await waitFor('resync', () => w.events.length >= 1, 5000, 10);
        await store.create(namespace('y'));
        await new Promise((r) => setTimeout(r, 150));
        await w.watch.close();
        expect(w.events).toEqual(['resync']);
      } finally {
        server.setGoneAs('event');
      }
    },
  );

  it('renews a stream the server ends at its timeoutSeconds, and abandons one that went silent, missing nothing', async () => {
    const store = new KubernetesDatastore({
      server: server.newTenant(),
      logger: quiet,
      watchBackoff: { initialMs: 10, maxMs: 200 },
      watchMinTimeoutSeconds: 1, // streams of 1–2 s, abandoned 1 s after that if still open
    });
    stores.push(store);
    const { revision } = await store.list('Namespace');
    const w = recorder(store, 'Namespace', revision);
    const watchesAtStart = server.requests.WATCH ?? 0;
    await store.create(namespace('t0'));
    await waitFor('a renewed stream', () => (server.requests.WATCH ?? 0) >= watchesAtStart + 2, 10_000, 20);
    await store.create(namespace('t1'));
    await waitFor('t1', () => w.events.length >= 2, 5000, 10);

    // The connection dies silently: the server writes nothing more and never ends the stream.
    expect(server.freezeWatches(store.server)).toBe(1);
    const watchesAtFreeze = server.requests.WATCH ?? 0;
    await store.create(namespace('t2'));
    await store.create(namespace('t3'));
    await waitFor('events after the silent stream was abandoned', () => w.events.length >= 4, 15_000, 20);
    await w.watch.close();
    expect(server.requests.WATCH ?? 0).toBeGreaterThan(watchesAtFreeze);
    expect(w.events).toEqual(['added t0', 'added t1', 'added t2', 'added t3']);
  });

  it('a watch without fromRevision delivers only changes made after it started, not the current state', async () => {
    const store = open();
    await store.create(namespace('before'));
    const w = recorder(store, 'Namespace');
    await waitFor('watch open', () => server.openWatches(store.server) === 1, 5000, 10);
    await store.create(namespace('after'));
    await waitFor('event', () => w.events.length >= 1, 5000, 10);
    await new Promise((r) => setTimeout(r, 100));
    await w.watch.close();
    expect(w.events).toEqual(['added after']);
  });

  it('lists in pages at one snapshot: writes between pages are not in the result', async () => {
    const store = open();
    for (let i = 0; i < 25; i++) await store.create(pod('pg', `p${String(i).padStart(2, '0')}`));
    const url = store.server;
    let pages = 0;
    server.beforeRequest = async ({ method, query }) => {
      if (method !== 'GET' || !query.get('continue')) return;
      if (pages++ === 0) {
        // Between page 1 and 2: one object goes, one comes (sorting after every page-1 key).
        await store.delete('Pod', { namespace: 'pg', name: 'p24' });
        await store.create(pod('pg', 'p99'));
      }
    };
    try {
      const { items, revision } = await store.list('Pod', { namespace: 'pg' });
      expect(pages).toBe(2); // 25 objects, pages of 10
      expect(items.map((p) => p.metadata.name)).toEqual(
        Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, '0')}`),
      );
      expect(BigInt(revision)).toBeLessThan(BigInt(server.tenant(url).rv));
    } finally {
      server.beforeRequest = undefined;
    }
  });

  it('starts a paginated list over when its snapshot is compacted between pages', async () => {
    const store = open();
    for (let i = 0; i < 15; i++) await store.create(pod('pc', `p${String(i).padStart(2, '0')}`));
    let compacted = false;
    server.beforeRequest = async ({ method, query }) => {
      if (method !== 'GET' || !query.get('continue') || compacted) return;
      compacted = true;
      await store.create(pod('pc', 'p15'));
      server.compact(store.server);
    };
    try {
      const { items, revision } = await store.list('Pod', { namespace: 'pc' });
      expect(compacted).toBe(true);
      expect(items).toHaveLength(16);
      expect(revision).toBe(String(server.tenant(store.server).rv));
    } finally {
      server.beforeRequest = undefined;
    }
  });

  it('stores a Lease at coordination.k8s.io/v1 with compare-and-swap, as leader election needs', async () => {
    const store = open();
    const lease: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { namespace: 'kube-system', name: 'tern-ipam-gc' },
      spec: { holderIdentity: 'node-a', leaseDurationSeconds: 15, renewTime: formatMicroTime(Date.now()) },
    };
    const held = await store.create(lease);
    expect(server.tenant(store.server).objects.has('Lease/kube-system/tern-ipam-gc')).toBe(true);
    const renewed = await store.update({
      ...held,
      spec: { ...held.spec, renewTime: formatMicroTime(Date.now() + 1) },
    });
    // A contender that read before the renewal loses.
    await expect(
      store.update({ ...held, spec: { ...held.spec, holderIdentity: 'node-b' } }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect((await store.get('Lease', { namespace: 'kube-system', name: 'tern-ipam-gc' }))?.spec).toEqual(
      renewed.spec,
    );
  });

  it('keeps metadata the model does not know (ownerReferences, finalizers) through get → update', async () => {
    const store = open();
    const owner = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u-1', controller: true }];
    const withOwner = {
      ...pod('o', 'x'),
      metadata: { ...pod('o', 'x').metadata, ownerReferences: owner, finalizers: ['tern.network/test'] },
    };
    await store.create(withOwner as Pod);
    const cur = (await store.get('Pod', { namespace: 'o', name: 'x' }))!;
    await store.update({ ...cur, metadata: { ...cur.metadata, labels: { changed: 'yes' } } });
    const stored = server.tenant(store.server).objects.get('Pod/o/x')!;
    expect(stored.metadata).toMatchObject({
      ownerReferences: owner,
      finalizers: ['tern.network/test'],
      labels: { changed: 'yes' },
    });
  });
});
