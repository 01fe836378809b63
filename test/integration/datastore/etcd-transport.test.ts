// The etcd backend over a Unix socket (the lab's setup), and the test server's own cleanup.
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatastore, type Datastore } from '../../../datastore/index.js';
import type { Namespace } from '../../../model/index.js';
import { startEtcd, type EtcdServer } from '../../support/etcd.js';
import { waitFor } from '../../support/netns.js';

const ns = (name: string): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

describe('etcd over a Unix socket', () => {
  let server: EtcdServer | undefined;
  let store: Datastore | undefined;
  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  it('serves CRUD and watch through openDatastore with a unix:// endpoint', async () => {
    server = await startEtcd({ transport: 'unix' });
    expect(server.endpoint).toMatch(/^unix:\/\/\/.*client\.sock:0$/);
    store = await openDatastore({ backend: 'etcd', etcdEndpoints: [server.endpoint] });
    const { revision } = await store.list('Namespace');
    const seen: string[] = [];
    const w = store.watch('Namespace', { fromRevision: revision }, (e) => {
      if (e.type !== 'resync') seen.push(`${e.type} ${e.object.metadata.name}`);
    });
    const a = await store.create(ns('over-unix'));
    expect(await store.get('Namespace', { name: 'over-unix' })).toEqual(a);
    await store.delete('Namespace', { name: 'over-unix' });
    await waitFor('watch events', () => seen.length >= 2, 5000, 10);
    await w.close();
    expect(seen).toEqual(['added over-unix', 'deleted over-unix']);
  });
});

describe('test etcd server lifecycle', () => {
  it('stop() ends the process and removes the data dir, and is safe to call twice', async () => {
    const s = await startEtcd();
    const pid = s.pid!;
    const dir = s.dataDir;
    expect(existsSync(dir)).toBe(true);
    await s.stop();
    await s.stop();
    expect(existsSync(dir)).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('restart() keeps the data', async () => {
    const s = await startEtcd();
    try {
      const store = await openDatastore({ backend: 'etcd', etcdEndpoints: [s.endpoint] });
      await store.create(ns('survives'));
      await s.restart();
      expect((await store.get('Namespace', { name: 'survives' }))?.metadata.name).toBe('survives');
      await store.close();
    } finally {
      await s.stop();
    }
  });
});
