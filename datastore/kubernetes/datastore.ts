// The kubernetes backend: every Datastore call is one API request (list, get, POST, PUT with
// metadata.resourceVersion, DELETE with preconditions), and watch is a resumable watch
// stream. revision = resourceVersion.
import type { KubeConfig } from '@kubernetes/client-node';
import {
  NotFoundError,
  ValidationError,
  keyString,
  type Kind,
  type ObjectKey,
  type ResourceByKind,
} from '../../model/index.js';
import { createLogger, type Logger } from '../../model/log.js';
import type { Datastore, ListResult, Watch, WatchEvent, WatchOptions } from '../types.js';
import { requireResourceVersion, validateKey, validateWrite } from '../validate.js';
import { decodeObject, encodeObject } from './codec.js';
import { loadKubeConfig, type KubeConnection } from './kubeconfig.js';
import { resourceOf, resourcePath } from './resources.js';
import { GoneError } from './status.js';
import { KubeTransport } from './transport.js';
import { KubeWatch, type BackoffOptions } from './watch.js';

export interface KubernetesDatastoreOptions extends KubeConnection {
  /** Deadline of each API request (not watches); default 10000 ms. */
  requestTimeoutMs?: number;
  /** Retries of a transient failure (5xx, 429, connection refused); default 4 (100 ms doubling). */
  retries?: number;
  /** Backoff between watch reconnects; default 100 ms → 5 s. */
  watchBackoff?: BackoffOptions;
  /** Watch streams are renewed after a random [min, 2·min) s; default 300 (see KubeWatchOptions). */
  watchMinTimeoutSeconds?: number;
  /** Objects per list page (limit/continue); default 500. */
  listPageSize?: number;
  logger?: Logger;
}

const listSchemaError = (what: string) =>
  new ValidationError('', `${what}: the API server's answer is not a list`);

interface RawList {
  items: unknown[];
  resourceVersion: string;
  continueToken?: string;
}

function parseList(body: unknown, what: string): RawList {
  const b = body as { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } } | null;
  if (!b || !Array.isArray(b.items) || typeof b.metadata?.resourceVersion !== 'string')
    throw listSchemaError(what);
  const cont = b.metadata.continue;
  return {
    items: b.items,
    resourceVersion: b.metadata.resourceVersion,
    ...(typeof cont === 'string' && cont ? { continueToken: cont } : {}),
  };
}

export class KubernetesDatastore implements Datastore {
  readonly backend = 'kubernetes' as const;
  readonly kubeConfig: KubeConfig;
  private readonly transport: KubeTransport;
  private readonly log: Logger;
  private readonly watches = new Set<Watch>();
  private readonly backoff: BackoffOptions;
  private readonly pageSize: number;
  private readonly watchMinTimeoutSeconds: number | undefined;

  constructor(options: KubernetesDatastoreOptions = {}) {
    this.kubeConfig = loadKubeConfig(options);
    this.transport = new KubeTransport(this.kubeConfig, {
      requestTimeoutMs: options.requestTimeoutMs,
      retries: options.retries,
    });
    this.log = options.logger ?? createLogger('datastore-kubernetes');
    this.backoff = options.watchBackoff ?? { initialMs: 100, maxMs: 5000 };
    this.pageSize = options.listPageSize ?? 500;
    this.watchMinTimeoutSeconds = options.watchMinTimeoutSeconds;
  }

  /** The API server this store talks to. */
  get server(): string {
    return this.transport.server;
  }

  private static what(verb: string, kind: Kind, key?: ObjectKey): string {
    const r = resourceOf(kind);
    return key
      ? `${verb} ${r.qualifiedName} ${JSON.stringify(keyString(key))}`
      : `${verb} ${r.qualifiedName}`;
  }

  async get<K extends Kind>(kind: K, key: ObjectKey): Promise<ResourceByKind[K] | undefined> {
    validateKey(kind, key);
    try {
      const body = await this.transport.request({
        method: 'GET',
        path: resourcePath(kind, key),
        retry: 'read',
        what: KubernetesDatastore.what('get', kind, key),
      });
      return decodeObject(kind, body);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  async list<K extends Kind>(kind: K, options: { namespace?: string } = {}): Promise<ListResult<K>> {
    const path = resourcePath(kind, { namespace: options.namespace });
    const what = KubernetesDatastore.what('list', kind);
    // Pages of one snapshot: the server pins the first page's resourceVersion in its continue
    // token. If that snapshot expires between pages (410), the list starts over.
    for (;;) {
      const items: Array<ResourceByKind[K]> = [];
      let revision: string | undefined;
      let continueToken: string | undefined;
      try {
        do {
          const body = await this.transport.request({
            method: 'GET',
            path,
            query: { limit: String(this.pageSize), continue: continueToken },
            retry: 'read',
            what,
          });
          const page = parseList(body, what);
          revision ??= page.resourceVersion;
          for (const raw of page.items) {
            try {
              items.push(decodeObject(kind, raw));
            } catch (e) {
              this.log.error({ err: e, kind }, 'skipping invalid object in list');
            }
          }
          continueToken = page.continueToken;
        } while (continueToken);
        return { items, revision };
      } catch (e) {
        if (!(e instanceof GoneError && continueToken)) throw e;
        this.log.debug({ kind }, 'list snapshot expired between pages; listing again');
      }
    }
  }

  watch<K extends Kind>(kind: K, options: WatchOptions, onEvent: (event: WatchEvent<K>) => void): Watch {
    const path = resourcePath(kind, { namespace: options.namespace });
    const log = this.log.child({ watch: kind, namespace: options.namespace });
    let watch: KubeWatch<K> | undefined;
    let closed = false;
    const handle: Watch = {
      close: async () => {
        closed = true;
        this.watches.delete(handle);
        await watch?.close();
      },
    };
    this.watches.add(handle);
    const start = (fromRevision: string) => {
      if (closed) return;
      watch = new KubeWatch(this.kubeConfig, {
        kind,
        path,
        fromRevision,
        onEvent,
        backoff: this.backoff,
        minTimeoutSeconds: this.watchMinTimeoutSeconds,
        log,
      });
    };
    if (options.fromRevision !== undefined) start(options.fromRevision);
    else {
      // "From now on": a watch without resourceVersion would first replay the whole state
      // as ADDED events, so ask for the collection's current resourceVersion first.
      void this.currentRevision(kind, path).then(start, (e: unknown) => {
        log.error({ err: e }, 'cannot read the current resourceVersion; the watch ends');
        if (!closed) onEvent({ type: 'resync', reason: `watch could not start: ${(e as Error).message}` });
      });
    }
    return handle;
  }

  private async currentRevision(kind: Kind, path: string): Promise<string> {
    const what = KubernetesDatastore.what('list', kind);
    const body = await this.transport.request({
      method: 'GET',
      path,
      query: { limit: '1' },
      retry: 'read',
      what,
    });
    return parseList(body, what).resourceVersion;
  }

  async create<K extends Kind>(obj: ResourceByKind[K] & { kind: K }): Promise<ResourceByKind[K]> {
    const { kind, key, object } = validateWrite<K>(obj);
    const body = encodeObject(object, obj);
    delete (body.metadata as { resourceVersion?: string }).resourceVersion;
    const created = await this.transport.request({
      method: 'POST',
      path: resourcePath(kind, { namespace: key.namespace }),
      body,
      retry: 'write',
      what: KubernetesDatastore.what('create', kind, key),
    });
    return decodeObject(kind, created);
  }

  async update<K extends Kind>(obj: ResourceByKind[K] & { kind: K }): Promise<ResourceByKind[K]> {
    const { kind, key, object } = validateWrite<K>(obj);
    requireResourceVersion(object);
    const updated = await this.transport.request({
      method: 'PUT',
      path: resourcePath(kind, key),
      body: encodeObject(object, obj),
      retry: 'write',
      what: KubernetesDatastore.what('update', kind, key),
    });
    return decodeObject(kind, updated);
  }

  async delete<K extends Kind>(
    kind: K,
    key: ObjectKey,
    options: { resourceVersion?: string } = {},
  ): Promise<void> {
    validateKey(kind, key);
    const rv = options.resourceVersion;
    await this.transport.request({
      method: 'DELETE',
      path: resourcePath(kind, key),
      body: {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        ...(rv !== undefined ? { preconditions: { resourceVersion: rv } } : {}),
      },
      retry: 'write',
      what: KubernetesDatastore.what('delete', kind, key),
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.close()));
    this.watches.clear();
    this.transport.close();
  }
}
