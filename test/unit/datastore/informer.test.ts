import { describe, expect, it } from 'vitest';
import { Informer, type InformerEvent } from '../../../datastore/informer.js';
import { MemoryDatastore } from '../../../datastore/memory.js';
import type { Datastore } from '../../../datastore/types.js';
import { UnavailableError, keyString, type Namespace, type Pod } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';

const logger = createLogger('informer-test', { level: 'silent' });
const ns = (name: string, labels: Record<string, string> = {}): Namespace => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
const pod = (namespace: string, name: string): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace, name },
  spec: { containers: [{ name: 'c' }] },
});
const until = async (what: string, cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};
const describeEvent = (e: InformerEvent<'Namespace'>) =>
  e.type === 'modified'
    ? `modified ${e.object.metadata.name} ${JSON.stringify(e.old.metadata.labels)}→${JSON.stringify(e.object.metadata.labels)}`
    : `${e.type} ${e.object.metadata.name}`;

describe('Informer', () => {
  it('emits adds for the initial list, resolves synced, then follows changes with old and new objects', async () => {
    const store = new MemoryDatastore();
    await store.create(ns('a'));
    const events: string[] = [];
    const specific: string[] = [];
    const inf = new Informer(store, 'Namespace', { logger });
    inf.on({
      onAdd: (o) => specific.push(`add ${o.metadata.name}`),
      onUpdate: (old, o) =>
        specific.push(`update ${old.metadata.resourceVersion}→${o.metadata.resourceVersion}`),
      onDelete: (o) => specific.push(`delete ${o.metadata.name}`),
      onChange: (e) => events.push(describeEvent(e)),
    });
    inf.start();
    await inf.synced();
    expect(events).toEqual(['added a']);
    expect(inf.get({ name: 'a' })?.metadata.name).toBe('a');

    const a = (await store.get('Namespace', { name: 'a' }))!;
    const a2 = await store.update({ ...a, metadata: { ...a.metadata, labels: { x: '1' } } });
    await store.create(ns('b'));
    await store.delete('Namespace', { name: 'a' });
    await until('3 more events', () => events.length === 4);
    expect(events).toEqual(['added a', 'modified a {}→{"x":"1"}', 'added b', 'deleted a']);
    expect(specific).toEqual([
      'add a',
      `update ${a.metadata.resourceVersion}→${a2.metadata.resourceVersion}`,
      'add b',
      'delete a',
    ]);
    expect(inf.list().map((o) => o.metadata.name)).toEqual(['b']);
    expect(inf.revision).toBe((await store.list('Namespace')).revision);
    await inf.stop();
  });

  it('watches only its namespace when given one', async () => {
    const store = new MemoryDatastore();
    await store.create(pod('x', 'p1'));
    await store.create(pod('y', 'p1'));
    const inf = new Informer(store, 'Pod', { namespace: 'x', logger }).start();
    await inf.synced();
    await store.create(pod('y', 'p2'));
    await store.create(pod('x', 'p2'));
    await until('x/p2', () => inf.get({ namespace: 'x', name: 'p2' }) !== undefined);
    expect(
      inf
        .list()
        .map((p) => keyString(p.metadata))
        .sort(),
    ).toEqual(['x/p1', 'x/p2']);
    await inf.stop();
  });

  it('after a compaction, relists and emits only the difference', async () => {
    const store = new MemoryDatastore();
    await store.create(ns('keep'));
    await store.create(ns('change'));
    await store.create(ns('drop'));
    const { items: staleItems, revision: stale } = await store.list('Namespace');
    const change = (await store.get('Namespace', { name: 'change' }))!;
    await store.update({ ...change, metadata: { ...change.metadata, labels: { v: '2' } } });
    await store.delete('Namespace', { name: 'drop' });
    await store.create(ns('new'));
    store.compact();

    // An informer whose first list is the old view (as if it had listed long ago), so its
    // watch starts from a revision the store has compacted away.
    let first = true;
    const lagging: Datastore = Object.assign(Object.create(store) as Datastore, {
      list: async () => {
        if (!first) return store.list('Namespace');
        first = false;
        return { items: staleItems, revision: stale };
      },
    });
    const inf2 = new Informer(lagging, 'Namespace', { logger });
    const events2: string[] = [];
    inf2.on({ onChange: (e) => events2.push(describeEvent(e)) });
    inf2.start();
    await until('relist', () => inf2.resyncCount === 1 && events2.length === 6);
    expect(events2.slice(3).sort()).toEqual(['added new', 'deleted drop', 'modified change {}→{"v":"2"}']);
    expect(
      inf2
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['change', 'keep', 'new']);
    await inf2.stop();
  });

  it('retries a failing list until the store answers, then syncs', async () => {
    const store = new MemoryDatastore();
    await store.create(ns('a'));
    let failures = 3;
    const flaky: Datastore = Object.assign(Object.create(store) as Datastore, {
      list: async (...args: Parameters<Datastore['list']>) => {
        if (failures-- > 0) throw new UnavailableError('etcd down');
        return store.list(...args);
      },
    });
    const inf = new Informer(flaky, 'Namespace', { logger, retryDelayMs: { initial: 1, max: 5 } }).start();
    await inf.synced();
    expect(inf.list().map((o) => o.metadata.name)).toEqual(['a']);
    await inf.stop();
  });

  it('keeps delivering to other handlers when one throws', async () => {
    const store = new MemoryDatastore();
    const inf = new Informer(store, 'Namespace', { logger });
    const seen: string[] = [];
    inf.on({
      onAdd: () => {
        throw new Error('boom');
      },
    });
    inf.on({ onAdd: (o) => seen.push(o.metadata.name) });
    inf.start();
    await inf.synced();
    await store.create(ns('a'));
    await until('a', () => seen.length === 1);
    expect(seen).toEqual(['a']);
    await inf.stop();
  });

  it('rejects synced() when stopped before the first list', async () => {
    const never: Datastore = Object.assign(Object.create(new MemoryDatastore()) as Datastore, {
      list: () => new Promise<never>(() => undefined),
    });
    const inf = new Informer(never, 'Namespace', { logger }).start();
    await inf.stop();
    await expect(inf.synced()).rejects.toThrow(/stopped/);
  });
});
