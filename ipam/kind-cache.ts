// Objects of one kind kept current by list + watch, and a value derived from them, so that
// the allocation path reads none of them from the datastore. Started on first use; a lost
// watch history lists again. Used for IPPools and IPReservations.
import type { Datastore, Watch } from '../datastore/types.js';
import { keyString, type Kind, type ResourceByKind } from '../model/index.js';

export class KindCache<K extends Kind, S> {
  private readonly objects = new Map<string, ResourceByKind[K]>();
  private snapshot: S | undefined;
  private ready: Promise<void> | undefined;
  private watch: Watch | undefined;
  private closed = false;

  constructor(
    private readonly datastore: Datastore,
    private readonly kind: K,
    private readonly derive: (objects: Iterable<ResourceByKind[K]>) => S,
  ) {}

  async get(): Promise<S> {
    if (!this.ready) {
      this.ready = this.start().catch((e: unknown) => {
        this.ready = undefined;
        throw e;
      });
    }
    await this.ready;
    this.snapshot ??= this.derive(this.objects.values());
    return this.snapshot;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watch?.close();
    this.watch = undefined;
  }

  private async start(): Promise<void> {
    const { items, revision } = await this.datastore.list(this.kind);
    this.objects.clear();
    for (const o of items) this.objects.set(keyString(o.metadata), o);
    this.snapshot = undefined;
    if (this.closed) return;
    await this.watch?.close();
    this.watch = this.datastore.watch(this.kind, { fromRevision: revision }, (event) => {
      if (event.type === 'resync') {
        this.ready = this.start();
        this.ready.catch(() => (this.ready = undefined));
        return;
      }
      const key = keyString(event.object.metadata);
      if (event.type === 'deleted') this.objects.delete(key);
      else this.objects.set(key, event.object);
      this.snapshot = undefined;
    });
  }
}
