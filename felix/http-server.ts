// The agent's local HTTP endpoint: /livez, /readyz, /metrics, and the JSON status routes
// that ternctl reads. Bound to loopback (or a Unix socket) only.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { unlinkSync } from 'node:fs';
import type { Registry } from 'prom-client';

export type StatusRoute = (url: URL, body: unknown) => Promise<unknown>;

export interface HttpEndpointOptions {
  /** `host:port` for TCP, or an absolute path for a Unix socket. */
  listen: string;
  registry: Registry;
  /** Returns undefined when live, else the reason it is not. */
  liveness: () => string | undefined;
  /** Returns undefined when ready, else what it is waiting for. */
  readiness: () => string | undefined;
  /** JSON routes under /v1/…, e.g. '/v1/status'. POST bodies are parsed as JSON. */
  routes: Record<string, StatusRoute>;
}

const MAX_BODY = 1 << 20;

export class HttpEndpoint {
  private server?: Server;
  constructor(private readonly options: HttpEndpointOptions) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    const { listen } = this.options;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (listen.startsWith('/')) {
        try {
          unlinkSync(listen);
        } catch {
          /* no stale socket */
        }
        server.listen(listen, resolve);
      } else {
        const i = listen.lastIndexOf(':');
        server.listen(Number(listen.slice(i + 1)), listen.slice(0, i).replace(/^\[|\]$/g, ''), resolve);
      }
    });
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections?.();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    try {
      if (url.pathname === '/livez' || url.pathname === '/readyz') {
        const problem = url.pathname === '/livez' ? this.options.liveness() : this.options.readiness();
        res.writeHead(problem ? 503 : 200, { 'content-type': 'text/plain' });
        res.end(problem ?? 'ok');
        return;
      }
      if (url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': this.options.registry.contentType });
        res.end(await this.options.registry.metrics());
        return;
      }
      const route = this.options.routes[url.pathname];
      if (!route) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `no such endpoint: ${url.pathname}` }));
        return;
      }
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const result = await route(url, body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(result));
    } catch (e) {
      const err = e as Error & { code?: string };
      res.writeHead(err.code === 'invalid' || err.code === 'not-found' ? 400 : 500, {
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ error: err.message, code: err.code }));
    }
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error('request body too large'), { code: 'invalid' });
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw Object.assign(new Error('request body is not JSON'), { code: 'invalid' });
  }
}
