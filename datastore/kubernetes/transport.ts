// One HTTP(S) round trip to the API server, authenticated by a client-node KubeConfig.
// client-node builds a new Agent (so a new TCP+TLS connection) for every call; this keeps one
// keep-alive agent per datastore, built once from the kubeconfig's TLS settings, and
// refreshes the auth headers (bearer token file, exec plugin, …) every few seconds.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { UnavailableError } from '../../model/index.js';
import { errorFromStatus } from './status.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface KubeRequest {
  method: Method;
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** `read`: idempotent, retried on any transient failure. `write`: retried only when provably unsent. */
  retry: 'read' | 'write';
  /** Names the call in error messages: `update ippools.tern.network "p1"`. */
  what: string;
}

export interface KubeTransportOptions {
  requestTimeoutMs?: number;
  /** Attempts after the first for transient failures (default 4: 100, 200, 400, 800 ms apart). */
  retries?: number;
}

/** Auth headers are re-read this often (a token file rotates hourly; exec credentials carry their own expiry). */
const AUTH_REFRESH_MS = 10_000;

/** Errors that prove the request never reached the server, so even a write may be sent again. */
const UNSENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

class TransportError extends UnavailableError {
  constructor(
    message: string,
    readonly unsent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class KubeTransport {
  readonly server: string;
  private readonly isHttps: boolean;
  private agent: http.Agent | undefined;
  private headers: Record<string, string> = {};
  private headersAt = -Infinity;
  private refreshing: Promise<Record<string, string>> | undefined;
  private readonly timeoutMs: number;
  private readonly retries: number;

  constructor(
    private readonly kc: KubeConfig,
    options: KubeTransportOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new UnavailableError('kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
    this.isHttps = this.server.startsWith('https:');
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.retries = options.retries ?? 4;
  }

  /** Sends the request, retrying transient failures; resolves with the 2xx body, throws a typed error otherwise. */
  async request(req: KubeRequest): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        const { status, body } = await this.once(req);
        if (status >= 200 && status < 300) return body;
        const err = errorFromStatus(status, body, req.what);
        // 429: the server refused before doing anything, so a write may be retried too.
        const retryable = status === 429 || (req.retry === 'read' && err instanceof UnavailableError);
        if (!retryable || attempt >= this.retries) throw err;
      } catch (e) {
        if (!(e instanceof TransportError)) throw e;
        if ((req.retry === 'write' && !e.unsent) || attempt >= this.retries) throw e;
      }
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }

  private async once(req: KubeRequest): Promise<{ status: number; body: unknown }> {
    const url = new URL(this.server + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
    const headers: Record<string, string> = { ...(await this.authHeaders()), Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const agent = this.agent!;
    return new Promise((resolve, reject) => {
      const request = (this.isHttps ? https : http).request(
        url,
        { method: req.method, headers, agent, timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) =>
            reject(new TransportError(`${req.what}: ${e.message}`, false, { cause: e })),
          );
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              // not JSON (a proxy's error page): kept as text for the error message
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      request.on('error', (e: NodeJS.ErrnoException) =>
        reject(
          new TransportError(`${req.what}: ${this.server}: ${e.message}`, UNSENT.has(e.code ?? ''), {
            cause: e,
          }),
        ),
      );
      request.end(payload);
    });
  }

  private authHeaders(): Promise<Record<string, string>> | Record<string, string> {
    if (Date.now() - this.headersAt < AUTH_REFRESH_MS) return this.headers;
    // One refresh for all the requests that find the headers stale at once.
    this.refreshing ??= this.refreshAuth().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshAuth(): Promise<Record<string, string>> {
    const now = Date.now();
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    this.agent ??= this.isHttps
      ? new https.Agent({
          keepAlive: true,
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          servername: opts.servername,
          ...(opts.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
        })
      : new http.Agent({ keepAlive: true });
    this.headers = headers;
    this.headersAt = now;
    return headers;
  }

  close(): void {
    this.agent?.destroy();
  }
}
