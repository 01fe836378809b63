// The IPPools, kept current by list + watch so that the allocation path reads no pool from
// the datastore. Started on first use; a lost watch history lists again.
import type { Datastore, Watch } from '../datastore/types.js';
import type { IPPool } from '../model/index.js';
import { poolSet, type PoolSet } from './pools.js';

export class PoolCache {
  private readonly objects = new Map<string, IPPool>();
  private snapshot: PoolSet | undefined;
  private ready: Promise<void> | undefined;
  private watch: Watch | undefined;
  private closed = false;

  constructor(private readonly datastore: Datastore) {}

  async get(): Promise<PoolSet> {
    if (!this.ready) {
      this.ready = this.start().catch((e: unknown) => {
        this.ready = undefined;
        throw e;
      });
    }
    await this.ready;
    this.snapshot ??= poolSet(this.objects.values());
    return this.snapshot;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watch?.close();
    this.watch = undefined;
  }

  private async start(): Promise<void> {
    const { items, revision } = await this.datastore.list('IPPool');
    this.objects.clear();
    for (const p of items) this.objects.set(p.metadata.name, p);
    this.snapshot = undefined;
    if (this.closed) return;
    await this.watch?.close();
    this.watch = this.datastore.watch('IPPool', { fromRevision: revision }, (event) => {
      if (event.type === 'resync') {
        this.ready = this.start();
        this.ready.catch(() => (this.ready = undefined));
        return;
      }
      if (event.type === 'deleted') this.objects.delete(event.object.metadata.name);
      else this.objects.set(event.object.metadata.name, event.object);
      this.snapshot = undefined;
    });
  }
}
