// The etcd backend (bare metal, the lab, integration tests) on the `etcd3` client.
//
// Layout: <prefix><Kind>/<namespace>/<name> for namespaced kinds, <prefix><Kind>/<name> for
// cluster-scoped ones (prefix default `/tern/v1/`); value = the object's JSON without
// resourceVersion. resourceVersion = the key's mod revision, so every write is a txn that
// compares it: create needs create_revision == 0, update/conditional delete mod_revision == rv.
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, noop } from 'cockatiel';
import {
  Etcd3,
  isRecoverableError,
  type IKeyValue,
  type IOptions,
  type IWatchResponse,
  type Namespace,
  type Watcher,
} from 'etcd3';
import {
  AlreadyExistsError,
  ConflictError,
  KINDS,
  NotFoundError,
  UnavailableError,
  ValidationError,
  isKind,
  keyString,
  parseResource,
  type Kind,
  type ObjectKey,
  type ResourceByKind,
} from '../model/index.js';
import { createLogger, type Logger } from '../model/log.js';
import type { ChangeType, Datastore, ListResult, Watch, WatchEvent, WatchOptions } from './types.js';
import { requireResourceVersion, validateKey, validateWrite } from './validate.js';

export const DEFAULT_ETCD_PREFIX = '/tern/v1/';

export interface EtcdDatastoreOptions {
  /**
   * Client endpoints: `http://127.0.0.1:2379`, `127.0.0.1:2379`, or a Unix socket
   * `unix:///run/tern/etcd.sock` (etcd 3.4 names its socket `<host>:<port>`, e.g.
   * `--listen-client-urls unix://etcd.sock:0` creates `./etcd.sock:0`).
   */
  endpoints: string[];
  /** Key prefix of everything tern stores; default `/tern/v1/`. */
  prefix?: string;
  /** Deadline of each unary call; default 5000 ms. Watches have none. */
  requestTimeoutMs?: number;
  logger?: Logger;
}

const LIST_PAGE_SIZE = 500;
/** Retries of a read on UnavailableError (100, 200, 400, 800 ms apart). */
const READ_RETRIES = 4;

/** Normalizes an endpoint for grpc-js; TLS is not wired yet, so `https://` is refused. */
export function parseEtcdEndpoint(endpoint: string, field = 'etcdEndpoints'): string {
  const e = endpoint.trim();
  if (/^unix:/.test(e)) {
    if (e.replace(/^unix:(\/\/)?/, '') === '') throw new ValidationError(field, `${e}: socket path is empty`);
    return e;
  }
  if (/^https:\/\//.test(e)) throw new ValidationError(field, `${e}: TLS to etcd is not supported yet`);
  const hostPort = e.replace(/^http:\/\//, '').replace(/\/$/, '');
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(hostPort)) {
    throw new ValidationError(field, `${JSON.stringify(endpoint)} is not http://host:port or unix:///path`);
  }
  return `http://${hostPort}`;
}

export class EtcdDatastore implements Datastore {
  readonly backend = 'etcd' as const;
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly watches = new Set<Watch>();

  constructor(options: EtcdDatastoreOptions) {
    if (options.endpoints.length === 0)
      throw new ValidationError('etcdEndpoints', 'must name at least one endpoint');
    const hosts = options.endpoints.map((e) => parseEtcdEndpoint(e));
    this.prefix = options.prefix ?? DEFAULT_ETCD_PREFIX;
    this.log = options.logger ?? createLogger('datastore-etcd');
    const timeout = options.requestTimeoutMs ?? 5000;
    const clientOptions: IOptions = {
      hosts,
      dialTimeout: timeout,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      grpcOptions: {
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
        // grpc-js's default redial backoff (1 s growing to 120 s) would leave the agent blind
        // for minutes after an etcd restart; redial quickly, capped at 2 s.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2000,
      },
      faultHandling: {
        // No blind retries: a write whose reply was lost may have been applied, and retrying
        // it would turn one CAS into two. Callers see UnavailableError and decide.
        global: noop,
        // etcd3's default breaker stays open 5 s after 3 failures; with one endpoint that only
        // delays recovery after an etcd restart. Trip it only with several endpoints to rotate.
        host: () =>
          hosts.length > 1
            ? circuitBreaker(handleWhen(isRecoverableError), {
                halfOpenAfter: 1000,
                breaker: new ConsecutiveBreaker(3),
              })
            : noop,
        // etcd3 wants a backoff instance (it types the factory wrongly); reconnect within 2 s.
        watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 2000 }).next(),
      },
    };
    this.client = new Etcd3(clientOptions);
  }

  private keyOf(kind: Kind, key: ObjectKey): string {
    return KINDS[kind].namespaced
      ? `${this.prefix}${kind}/${key.namespace}/${key.name}`
      : `${this.prefix}${kind}/${key.name}`;
  }

  private rangeOf(kind: Kind, namespace?: string): string {
    return namespace && KINDS[kind].namespaced
      ? `${this.prefix}${kind}/${namespace}/`
      : `${this.prefix}${kind}/`;
  }

  /** Decodes a stored value; throws ValidationError when it is not a valid object of `kind`. */
  private decode<K extends Kind>(kind: K, kv: IKeyValue): ResourceByKind[K] {
    const key = kv.key.toString();
    let raw: unknown;
    try {
      raw = JSON.parse(kv.value.toString());
    } catch {
      throw new ValidationError(key, 'stored value is not JSON');
    }
    const obj = parseResource(raw, kind);
    if (this.keyOf(kind, obj.metadata) !== key)
      throw new ValidationError(key, 'stored object does not match its key');
    obj.metadata.resourceVersion = kv.mod_revision;
    return obj;
  }

  /** A value someone else wrote badly must not hide every other object from list or watch. */
  private decodeOrSkip<K extends Kind>(kind: K, kv: IKeyValue): ResourceByKind[K] | undefined {
    try {
      return this.decode(kind, kv);
    } catch (e) {
      this.log.error({ key: kv.key.toString(), err: e }, 'skipping invalid stored object');
      return undefined;
    }
  }

  private static encode(obj: ResourceByKind[Kind]): string {
    const { resourceVersion: _rv, ...metadata } = obj.metadata;
    return JSON.stringify({ ...obj, metadata });
  }

  /** Runs one etcd call, turning transport failures into UnavailableError. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof Error && (isRecoverableError(e) || /deadline|unavailable|closed/i.test(e.message))) {
        throw new UnavailableError(`etcd ${what}: ${e.message}`, { cause: e });
      }
      throw e;
    }
  }

  /** Reads are idempotent, so they ride out a short outage (an etcd restart) before failing. */
  private async read<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.call(what, fn);
      } catch (e) {
        if (!(e instanceof UnavailableError) || attempt >= READ_RETRIES) throw e;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  async get<K extends Kind>(kind: K, key: ObjectKey): Promise<ResourceByKind[K] | undefined> {
    validateKey(kind, key);
    const res = await this.read('get', () => this.client.get(this.keyOf(kind, key)).exec());
    const kv = res.kvs[0];
    return kv ? this.decode(kind, kv) : undefined;
  }

  async list<K extends Kind>(kind: K, options: { namespace?: string } = {}): Promise<ListResult<K>> {
    if (!isKind(kind)) throw new ValidationError('kind', `unknown kind ${JSON.stringify(kind)}`);
    const range = this.rangeOf(kind, options.namespace);
    const end = rangeEnd(range);
    // Pages at one pinned revision: a consistent snapshot without one huge message. If that
    // revision is compacted between pages, start over at a new one.
    for (;;) {
      const items: Array<ResourceByKind[K]> = [];
      let revision: string | undefined;
      let start = range;
      try {
        for (;;) {
          const page = this.client.getAll().inRange({ start, end }).limit(LIST_PAGE_SIZE);
          if (revision) page.revision(revision);
          const res = await this.read('list', () => page.exec());
          revision ??= res.header.revision;
          for (const kv of res.kvs) {
            const obj = this.decodeOrSkip(kind, kv);
            if (obj) items.push(obj);
          }
          if (!res.more || res.kvs.length === 0) return { items, revision };
          start = `${res.kvs[res.kvs.length - 1]!.key.toString()}\0`;
        }
      } catch (e) {
        if (!(e instanceof Error && /compacted/.test(e.message))) throw e;
        this.log.debug({ kind, revision }, 'list revision compacted between pages; listing again');
      }
    }
  }

  async create<K extends Kind>(obj: ResourceByKind[K] & { kind: K }): Promise<ResourceByKind[K]> {
    const { kind, key, object } = validateWrite<K>(obj);
    const k = this.keyOf(kind, key);
    const res = await this.call('create', () =>
      this.client
        .if(k, 'Create', '==', 0)
        .then(this.client.put(k).value(EtcdDatastore.encode(object)))
        .commit(),
    );
    if (!res.succeeded) throw new AlreadyExistsError(`${kind} ${keyString(key)} already exists`);
    return withVersion(object, res.header.revision);
  }

  async update<K extends Kind>(obj: ResourceByKind[K] & { kind: K }): Promise<ResourceByKind[K]> {
    const { kind, key, object } = validateWrite<K>(obj);
    const rv = requireResourceVersion(object);
    const k = this.keyOf(kind, key);
    const res = await this.call('update', () =>
      this.client
        .if(k, 'Mod', '==', revisionNumber(rv))
        .then(this.client.put(k).value(EtcdDatastore.encode(object)))
        .else(this.client.get(k))
        .commit(),
    );
    if (!res.succeeded) throw this.casFailure(kind, key, rv, res.responses[0]?.response_range.kvs[0]);
    return withVersion(object, res.header.revision);
  }

  async delete<K extends Kind>(
    kind: K,
    key: ObjectKey,
    options: { resourceVersion?: string } = {},
  ): Promise<void> {
    validateKey(kind, key);
    const k = this.keyOf(kind, key);
    const rv = options.resourceVersion;
    if (rv === undefined) {
      const res = await this.call('delete', () => this.client.delete().key(k).exec());
      if (res.deleted === '0') throw new NotFoundError(`${kind} ${keyString(key)} not found`);
      return;
    }
    const res = await this.call('delete', () =>
      this.client
        .if(k, 'Mod', '==', revisionNumber(rv))
        .then(this.client.delete().key(k))
        .else(this.client.get(k))
        .commit(),
    );
    if (!res.succeeded) throw this.casFailure(kind, key, rv, res.responses[0]?.response_range.kvs[0]);
  }

  private casFailure(kind: Kind, key: ObjectKey, rv: string, current: IKeyValue | undefined): Error {
    return current
      ? new ConflictError(
          `${kind} ${keyString(key)} was modified (have resourceVersion ${rv}, stored ${current.mod_revision})`,
        )
      : new NotFoundError(`${kind} ${keyString(key)} not found`);
  }

  watch<K extends Kind>(kind: K, options: WatchOptions, onEvent: (event: WatchEvent<K>) => void): Watch {
    if (!isKind(kind)) throw new ValidationError('kind', `unknown kind ${JSON.stringify(kind)}`);
    const fromRevision = options.fromRevision;
    if (fromRevision !== undefined && !/^\d+$/.test(fromRevision)) {
      throw new ValidationError('fromRevision', `${JSON.stringify(fromRevision)} is not an etcd revision`);
    }
    const from = fromRevision === undefined ? undefined : BigInt(fromRevision);
    // A throwing consumer must not take the watch (or, through etcd3, the process) down.
    const deliver = (event: WatchEvent<K>) => {
      try {
        onEvent(event);
      } catch (e) {
        this.log.error({ err: e, kind }, 'watch consumer threw');
      }
    };
    const watch = new EtcdWatch(
      // A namespace of its own gives the watch its own WatchManager: in etcd3 1.1.2 a
      // watcher cancelled at creation (compacted revision) wedges its manager's attach
      // queue, which would stall every later watch sharing it.
      this.client.namespace(''),
      this.rangeOf(kind, options.namespace),
      from,
      {
        change: (type, kv, revision) => {
          const obj = this.decodeOrSkip(kind, kv);
          if (obj) deliver({ type, object: obj, revision });
        },
        resync: (reason) => deliver({ type: 'resync', reason }),
      },
      this.log.child({ watch: kind, namespace: options.namespace }),
    );
    const handle: Watch = {
      close: async () => {
        this.watches.delete(handle);
        await watch.close();
      },
    };
    this.watches.add(handle);
    return handle;
  }

  /** The etcd client, for tools and tests that need raw access (compaction, status). */
  get rawClient(): Etcd3 {
    return this.client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.close()));
    this.client.close();
  }
}

interface WatchSink {
  /** For 'deleted', `kv` is the object as it was before the delete; `revision` is the change's. */
  change(type: ChangeType, kv: IKeyValue, revision: string): void;
  resync(reason: string): void;
}

/**
 * One watch over a key range. Resumes after disconnects from the last revision it
 * delivered, not from the response header etcd3 would use: a catching-up watcher gets
 * batches whose header is ahead of their last event, and resuming from that header after a
 * disconnect would skip the rest of the batch.
 */
class EtcdWatch {
  private readonly watcher: Watcher;
  /** Everything up to this revision has been delivered (or was before the watch began). */
  private delivered: bigint | undefined;
  private ended = false;

  constructor(ns: Namespace, range: string, from: bigint | undefined, sink: WatchSink, log: Logger) {
    this.delivered = from;
    const builder = ns.watch().prefix(range).withPreviousKV();
    if (from !== undefined) builder.startRevision((from + 1n).toString());
    this.watcher = builder.watcher();
    const pinResume = () => {
      if (this.delivered !== undefined)
        this.watcher.request.start_revision = (this.delivered + 1n).toString();
    };
    this.watcher.on('connected', (res: IWatchResponse) => {
      this.delivered ??= BigInt(res.header.revision);
      pinResume();
      log.debug({ from: this.watcher.request.start_revision }, 'watch connected');
    });
    this.watcher.on('data', (res: IWatchResponse) => {
      if (this.ended) return;
      for (const ev of res.events) {
        const rev = BigInt(ev.kv.mod_revision);
        if (this.delivered !== undefined && rev <= this.delivered) continue; // replayed after a resume
        this.delivered = rev;
        if (ev.type === 'Delete') {
          if (ev.prev_kv) sink.change('deleted', ev.prev_kv, ev.kv.mod_revision);
          else log.warn({ key: ev.kv.key.toString() }, 'delete without previous value; not delivered');
        } else sink.change(ev.kv.version === '1' ? 'added' : 'modified', ev.kv, ev.kv.mod_revision);
      }
      // An empty response is a progress notification: nothing in range changed up to its header.
      if (res.events.length === 0 && this.delivered !== undefined) {
        const progress = BigInt(res.header.revision);
        if (progress > this.delivered) this.delivered = progress;
      }
      pinResume();
    });
    this.watcher.on('disconnected', (err: Error) => log.debug({ err: err.message }, 'watch disconnected'));
    // etcd cancels a watch only when it cannot serve it, chiefly because the revision was
    // compacted; the history is gone either way, so the consumer must relist.
    this.watcher.on('error', (err: Error) => {
      if (this.ended) return;
      this.ended = true;
      void this.watcher.cancel().catch(() => undefined);
      sink.resync(
        `etcd cancelled the watch from revision ${this.watcher.request.start_revision}: ${err.message}`,
      );
    });
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.watcher.cancel().catch(() => undefined);
  }
}

function rangeEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  b[b.length - 1]!++;
  return b;
}

function revisionNumber(rv: string): string {
  if (!/^\d+$/.test(rv))
    throw new ConflictError(`resourceVersion ${JSON.stringify(rv)} is not an etcd revision`);
  return rv;
}

function withVersion<T extends { metadata: { resourceVersion?: string } }>(obj: T, revision: string): T {
  return { ...obj, metadata: { ...obj.metadata, resourceVersion: revision } };
}
