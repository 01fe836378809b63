// One resumable watch of a collection over client-node's Watch (chunked JSON lines).
//
// The resume point is the resourceVersion of the last event delivered or of the last
// BOOKMARK. A stream the server closes (timeout, restart, a cut connection) is reopened from
// it with backoff; events at or below it are replays and are dropped. 410 Gone, as the HTTP
// status or as an ERROR event carrying a Status with code 410, means the history is gone:
// one 'resync' event, then the watch is over.
import { Watch as ClientWatch, type KubeConfig } from '@kubernetes/client-node';
import type { Kind, ResourceByKind } from '../../model/index.js';
import type { Logger } from '../../model/log.js';
import type { WatchEvent } from '../types.js';
import { decodeObject } from './codec.js';
import { parseStatus } from './status.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export interface KubeWatchOptions<K extends Kind> {
  kind: K;
  /** Collection path (resourcePath(kind, {namespace})). */
  path: string;
  /** Exclusive: events after this resourceVersion. */
  fromRevision: string;
  onEvent: (event: WatchEvent<K>) => void;
  backoff: BackoffOptions;
  /**
   * Each stream asks the server to end it after a random time in [min, 2·min) s, as client-go
   * does, and is abandoned if it has not ended min(30, min) s after that: a connection that died without
   * a FIN or RST (a vanished API server node) is noticed within minutes, not TCP keepalive's
   * eleven. Default 300.
   */
  minTimeoutSeconds?: number;
  log: Logger;
}

const TYPES = { ADDED: 'added', MODIFIED: 'modified', DELETED: 'deleted' } as const;

/** Compares resourceVersions when both are decimal (every API server in practice); undefined otherwise. */
function compareVersions(a: string, b: string): number | undefined {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export class KubeWatch<K extends Kind> {
  private resumeFrom: string;
  private ended = false;
  private controller: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private failures = 0;
  /** Bumped per stream, so a late callback of an abandoned stream is ignored. */
  private stream = 0;
  private readonly client: ClientWatch;
  /** Streams opened so far (1 + resumes), for tests and metrics. */
  connects = 0;

  constructor(
    kc: KubeConfig,
    private readonly o: KubeWatchOptions<K>,
  ) {
    this.client = new ClientWatch(kc);
    this.resumeFrom = o.fromRevision;
    this.connect();
  }

  private connect(): void {
    if (this.ended) return;
    const stream = ++this.stream;
    this.connects++;
    const live = () => stream === this.stream && !this.ended;
    const min = this.o.minTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.floor(min + Math.random() * min);
    const query = { resourceVersion: this.resumeFrom, allowWatchBookmarks: true, timeoutSeconds };
    clearTimeout(this.deadline);
    this.deadline = setTimeout(
      () => {
        if (!live()) return;
        this.o.log.warn({ timeoutSeconds }, 'watch stream outlived its timeout; reopening');
        this.reopen();
      },
      (timeoutSeconds + Math.min(30, min)) * 1000,
    );
    this.deadline.unref();
    this.client
      .watch(
        this.o.path,
        query,
        (type: string, object: unknown) => {
          if (live()) this.onLine(type, object);
        },
        (err: unknown) => {
          if (live()) this.onStreamEnd(err);
        },
      )
      .then((controller) => {
        if (stream === this.stream && !this.ended) this.controller = controller;
        else controller.abort();
      })
      .catch((err: unknown) => {
        if (live()) this.onStreamEnd(err);
      });
  }

  private onLine(type: string, object: unknown): void {
    this.failures = 0;
    if (type === 'BOOKMARK') {
      const rv = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
      if (typeof rv === 'string' && rv) this.resumeFrom = rv;
      return;
    }
    if (type === 'ERROR') {
      const status = parseStatus(object);
      if (status?.code === 410)
        this.finish(`watch from resourceVersion ${this.resumeFrom}: ${status.message ?? 'Gone'}`);
      else {
        this.o.log.warn({ status: object }, 'watch ERROR event; reopening');
        this.reopen();
      }
      return;
    }
    if (!(type in TYPES)) {
      this.o.log.warn({ type }, 'unknown watch event type; ignored');
      return;
    }
    const rv = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
    if (typeof rv !== 'string' || !rv) {
      this.o.log.error({ type }, 'watch event without resourceVersion; ignored');
      return;
    }
    if ((compareVersions(rv, this.resumeFrom) ?? 1) <= 0) return; // replayed after a resume
    this.resumeFrom = rv;
    let decoded: ResourceByKind[K];
    try {
      decoded = decodeObject(this.o.kind, object);
    } catch (e) {
      // Someone else wrote an object the model refuses: skip it, keep the stream.
      this.o.log.error({ err: e, resourceVersion: rv }, 'skipping invalid object in watch');
      return;
    }
    this.deliver({ type: TYPES[type as keyof typeof TYPES], object: decoded, revision: rv });
  }

  private onStreamEnd(err: unknown): void {
    this.stream++;
    clearTimeout(this.deadline);
    this.controller = undefined;
    const status = (err as { statusCode?: unknown } | null)?.statusCode;
    if (status === 410) {
      this.finish(`watch from resourceVersion ${this.resumeFrom}: 410 Gone`);
      return;
    }
    // A clean close is the server's watch timeout: reopen at once. Errors back off.
    const delay = err ? this.backoffDelay() : 0;
    if (err) {
      // A refusal (401, 403, 404: RBAC, a missing CRD) will not heal by itself: say so loudly.
      // Transport failures are normal during API server restarts until they persist.
      const refused = typeof status === 'number' && status >= 400 && status < 500 && status !== 429;
      const level = refused || this.failures > 5 ? 'warn' : 'debug';
      this.o.log[level](
        { err: (err as Error).message ?? err, httpStatus: status, retryInMs: Math.round(delay) },
        'watch stream failed; reopening',
      );
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  private backoffDelay(): number {
    const { initialMs, maxMs } = this.o.backoff;
    const d = Math.min(maxMs, initialMs * 2 ** this.failures++);
    return d / 2 + (Math.random() * d) / 2;
  }

  private reopen(): void {
    const c = this.controller;
    this.onStreamEnd(new Error('reopening'));
    c?.abort();
  }

  private finish(reason: string): void {
    this.stop();
    this.deliver({ type: 'resync', reason });
  }

  private deliver(event: WatchEvent<K>): void {
    try {
      this.o.onEvent(event);
    } catch (e) {
      this.o.log.error({ err: e, kind: this.o.kind }, 'watch consumer threw');
    }
  }

  private stop(): void {
    this.ended = true;
    this.stream++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.deadline);
    this.controller?.abort();
    this.controller = undefined;
  }

  async close(): Promise<void> {
    this.stop();
  }
}
