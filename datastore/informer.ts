// Informer: a local, always-converging copy of one kind (list + watch + cache), with
// handlers for every change. When the watch reports that its history is gone (resync), the
// informer lists again and emits the difference between its cache and the new list, so a
// consumer sees the same added/modified/deleted stream it would have seen without the gap.
import { keyOf, keyString, type Kind, type ObjectKey, type ResourceByKind } from '../model/index.js';
import { createLogger, type Logger } from '../model/log.js';
import type { Datastore, Watch, WatchEvent } from './types.js';

export type InformerEvent<K extends Kind> =
  | { type: 'added'; object: ResourceByKind[K] }
  | { type: 'modified'; object: ResourceByKind[K]; old: ResourceByKind[K] }
  | { type: 'deleted'; object: ResourceByKind[K] };

export interface InformerHandlers<K extends Kind> {
  onAdd?(object: ResourceByKind[K]): void;
  onUpdate?(old: ResourceByKind[K], object: ResourceByKind[K]): void;
  onDelete?(object: ResourceByKind[K]): void;
  /** Every change, after the specific handler above. */
  onChange?(event: InformerEvent<K>): void;
}

export interface InformerOptions {
  /** Only objects of this namespace (namespaced kinds). */
  namespace?: string;
  logger?: Logger;
  /** Backoff between failed lists: first delay and cap, in ms (default 100 → 5000). */
  retryDelayMs?: { initial: number; max: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Informer<K extends Kind> {
  private readonly cache = new Map<string, ResourceByKind[K]>();
  private readonly handlers = new Set<InformerHandlers<K>>();
  private readonly log: Logger;
  private watch: Watch | undefined;
  /** Bumped whenever a watch is abandoned, so its late events are ignored. */
  private generation = 0;
  private started = false;
  private stopped = false;
  private lastRevision: string | undefined;
  private relists = 0;
  private readonly syncedPromise: Promise<void>;
  private markSynced!: () => void;
  private failSynced!: (e: Error) => void;

  constructor(
    private readonly store: Datastore,
    readonly kind: K,
    private readonly options: InformerOptions = {},
  ) {
    this.log = (options.logger ?? createLogger('informer')).child({ kind, namespace: options.namespace });
    this.syncedPromise = new Promise<void>((resolve, reject) => {
      this.markSynced = resolve;
      this.failSynced = reject;
    });
    this.syncedPromise.catch(() => undefined); // rejection is for those who wait on it
  }

  /** Adds handlers (before or after start); returns a function that removes them. */
  on(handlers: InformerHandlers<K>): () => void {
    this.handlers.add(handlers);
    return () => this.handlers.delete(handlers);
  }

  /** Lists, fills the cache (emitting 'added' for each object), then watches. Idempotent. */
  start(): this {
    if (!this.started) {
      this.started = true;
      void this.relist('initial list');
    }
    return this;
  }

  /** Resolves once the first list is in the cache; rejects if the informer stops before. */
  synced(): Promise<void> {
    return this.syncedPromise;
  }

  get(key: ObjectKey): ResourceByKind[K] | undefined {
    return this.cache.get(keyString(key));
  }

  list(): Array<ResourceByKind[K]> {
    return [...this.cache.values()];
  }

  /** Revision the cache reflects (undefined before the first list). */
  get revision(): string | undefined {
    return this.lastRevision;
  }

  /** How many times the informer has relisted after losing its watch history. */
  get resyncCount(): number {
    return this.relists;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    this.failSynced(new Error(`informer for ${this.kind} stopped`));
    const w = this.watch;
    this.watch = undefined;
    await w?.close();
  }

  private async relist(why: string): Promise<void> {
    const { initial, max } = this.options.retryDelayMs ?? { initial: 100, max: 5000 };
    let delay = initial;
    for (;;) {
      if (this.stopped) return;
      try {
        const { items, revision } = await this.store.list(this.kind, { namespace: this.options.namespace });
        if (this.stopped) return;
        this.applyList(items);
        this.lastRevision = revision;
        this.log.debug({ why, revision, count: items.length }, 'listed');
        this.markSynced();
        this.startWatch(revision);
        return;
      } catch (e) {
        this.log.warn({ err: e, why, retryInMs: delay }, 'list failed; retrying');
        await sleep(delay);
        delay = Math.min(delay * 2, max);
      }
    }
  }

  private startWatch(fromRevision: string): void {
    const generation = ++this.generation;
    this.watch = this.store.watch(this.kind, { namespace: this.options.namespace, fromRevision }, (event) => {
      if (generation === this.generation && !this.stopped) this.onWatchEvent(event);
    });
  }

  private onWatchEvent(event: WatchEvent<K>): void {
    if (event.type === 'resync') {
      this.log.info({ reason: event.reason }, 'watch history lost; relisting');
      this.relists++;
      this.generation++;
      const w = this.watch;
      this.watch = undefined;
      void w?.close();
      void this.relist(`resync: ${event.reason}`);
      return;
    }
    const k = keyString(keyOf(event.object.metadata));
    const old = this.cache.get(k);
    if (event.type === 'deleted') {
      this.cache.delete(k);
      this.emit({ type: 'deleted', object: old ?? event.object });
    } else {
      this.cache.set(k, event.object);
      this.emit(
        old ? { type: 'modified', object: event.object, old } : { type: 'added', object: event.object },
      );
    }
    this.lastRevision = event.revision;
  }

  /** Replaces the cache with a fresh list, emitting exactly the differences. */
  private applyList(items: Array<ResourceByKind[K]>): void {
    const seen = new Set<string>();
    for (const object of items) {
      const k = keyString(keyOf(object.metadata));
      seen.add(k);
      const old = this.cache.get(k);
      this.cache.set(k, object);
      if (!old) this.emit({ type: 'added', object });
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion)
        this.emit({ type: 'modified', object, old });
    }
    for (const [k, object] of this.cache) {
      if (seen.has(k)) continue;
      this.cache.delete(k);
      this.emit({ type: 'deleted', object });
    }
  }

  private emit(event: InformerEvent<K>): void {
    for (const h of this.handlers) {
      try {
        if (event.type === 'added') h.onAdd?.(event.object);
        else if (event.type === 'modified') h.onUpdate?.(event.old, event.object);
        else h.onDelete?.(event.object);
        h.onChange?.(event);
      } catch (e) {
        this.log.error({ err: e, event: event.type }, 'informer handler threw');
      }
    }
  }
}
