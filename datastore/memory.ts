// In-process datastore for unit tests. Keeps a bounded history so that watches can resume
// from a revision, and `compact` lets tests exercise the resync path.
import {
  AlreadyExistsError,
  ConflictError,
  KINDS,
  NotFoundError,
  keyString,
  type Kind,
  type ObjectKey,
  type ResourceByKind,
} from '../model/index.js';
import type { ChangeType, Datastore, ListResult, Watch, WatchEvent, WatchOptions } from './types.js';
import { requireResourceVersion, validateKey, validateWrite } from './validate.js';

interface HistoryEntry {
  kind: Kind;
  type: ChangeType;
  object: ResourceByKind[Kind];
  revision: number;
}

interface Subscriber {
  kind: Kind;
  namespace?: string;
  deliver(e: HistoryEntry): void;
}

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryDatastore implements Datastore {
  readonly backend = 'memory' as const;
  private revision = 0;
  private compactedThrough = 0;
  private readonly objects = new Map<string, ResourceByKind[Kind]>();
  private readonly history: HistoryEntry[] = [];
  private readonly subscribers = new Set<Subscriber>();

  constructor(private readonly historyLimit = 10_000) {}

  /** A namespace filter means nothing for cluster-scoped kinds (as in etcd and Kubernetes). */
  private static namespaceFilter(kind: Kind, namespace: string | undefined): string | undefined {
    return KINDS[kind]?.namespaced ? namespace : undefined;
  }

  private static storageKey(kind: Kind, key: ObjectKey): string {
    return `${kind}/${keyString(key)}`;
  }

  async get<K extends Kind>(kind: K, key: ObjectKey): Promise<ResourceByKind[K] | undefined> {
    validateKey(kind, key);
    const o = this.objects.get(MemoryDatastore.storageKey(kind, key));
    return o ? (clone(o) as ResourceByKind[K]) : undefined;
  }

  async list<K extends Kind>(kind: K, options: { namespace?: string } = {}): Promise<ListResult<K>> {
    const namespace = MemoryDatastore.namespaceFilter(kind, options.namespace);
    const items: Array<ResourceByKind[K]> = [];
    for (const [k, o] of this.objects) {
      if (!k.startsWith(`${kind}/`)) continue;
      if (namespace && o.metadata.namespace !== namespace) continue;
      items.push(clone(o) as ResourceByKind[K]);
    }
    return { items, revision: String(this.revision) };
  }

  watch<K extends Kind>(kind: K, options: WatchOptions, onEvent: (event: WatchEvent<K>) => void): Watch {
    const namespace = MemoryDatastore.namespaceFilter(kind, options.namespace);
    const wanted = (e: HistoryEntry) =>
      e.kind === kind && (!namespace || e.object.metadata.namespace === namespace);
    const toEvent = (e: HistoryEntry): WatchEvent<K> => ({
      type: e.type,
      object: clone(e.object) as ResourceByKind[K],
      revision: String(e.revision),
    });
    const sub: Subscriber = {
      kind,
      namespace,
      deliver: (e) => {
        if (!wanted(e)) return;
        try {
          onEvent(toEvent(e));
        } catch (err) {
          // A throwing consumer must not fail the writer whose commit it was told about.
          queueMicrotask(() => {
            throw err;
          });
        }
      },
    };
    const from = options.fromRevision === undefined ? this.revision : Number(options.fromRevision);
    // Deliver asynchronously, as real backends do, so callers never re-enter themselves.
    queueMicrotask(() => {
      if (from < this.compactedThrough) {
        onEvent({
          type: 'resync',
          reason: `revision ${from} has been compacted (oldest kept: ${this.compactedThrough})`,
        });
        return;
      }
      for (const e of this.history) if (e.revision > from) sub.deliver(e);
      this.subscribers.add(sub);
    });
    return {
      close: async () => {
        this.subscribers.delete(sub);
      },
    };
  }

  async create<K extends Kind>(obj: ResourceByKind[K] & { kind: K }): Promise<ResourceByKind[K]> {
    const { kind, key, object } = validateWrite<K>(obj);
    if (this.objects.has(MemoryDatastore.storageKey(kind, key)))
      throw new AlreadyExistsError(`${kind} ${keyString(key)} already exists`);
    return this.commit(kind, 'added', object);
  }

  async update<K extends Kind>(obj: ResourceByKind[K] & { kind: K }): Promise<ResourceByKind[K]> {
    const { kind, key, object } = validateWrite<K>(obj);
    const rv = requireResourceVersion(object);
    const current = this.objects.get(MemoryDatastore.storageKey(kind, key));
    if (!current) throw new NotFoundError(`${kind} ${keyString(key)} not found`);
    if (rv !== current.metadata.resourceVersion) {
      throw new ConflictError(
        `${kind} ${keyString(key)} was modified (have resourceVersion ${rv}, stored ${current.metadata.resourceVersion})`,
      );
    }
    return this.commit(kind, 'modified', object);
  }

  async delete<K extends Kind>(
    kind: K,
    key: ObjectKey,
    options: { resourceVersion?: string } = {},
  ): Promise<void> {
    validateKey(kind, key);
    const sk = MemoryDatastore.storageKey(kind, key);
    const current = this.objects.get(sk);
    if (!current) throw new NotFoundError(`${kind} ${keyString(key)} not found`);
    if (
      options.resourceVersion !== undefined &&
      options.resourceVersion !== current.metadata.resourceVersion
    ) {
      throw new ConflictError(
        `${kind} ${keyString(key)} was modified since resourceVersion ${options.resourceVersion}`,
      );
    }
    this.objects.delete(sk);
    this.record(kind, 'deleted', current, ++this.revision);
  }

  /** Drops history up to `revision`: watches from older revisions then get 'resync'. */
  compact(revision = this.revision): void {
    this.compactedThrough = Math.max(this.compactedThrough, revision);
    while (this.history.length && this.history[0]!.revision <= this.compactedThrough) this.history.shift();
  }

  async close(): Promise<void> {
    this.subscribers.clear();
  }

  private commit<K extends Kind>(kind: K, type: ChangeType, obj: ResourceByKind[K]): ResourceByKind[K] {
    const revision = ++this.revision;
    const stored = clone(obj);
    stored.metadata.resourceVersion = String(revision);
    if (KINDS[kind].namespaced === false) delete stored.metadata.namespace;
    this.objects.set(MemoryDatastore.storageKey(kind, stored.metadata), stored);
    this.record(kind, type, stored, revision);
    return clone(stored);
  }

  private record(kind: Kind, type: ChangeType, object: ResourceByKind[Kind], revision: number): void {
    const entry = { kind, type, object: clone(object), revision };
    this.history.push(entry);
    if (this.history.length > this.historyLimit)
      this.compact(this.history[this.history.length - this.historyLimit - 1]!.revision);
    for (const s of this.subscribers) s.deliver(entry);
  }
}
