// An in-process HTTP server that speaks the Kubernetes list/watch protocol for the kinds tern
// stores: GET list (limit/continue, list resourceVersion), GET one, POST, PUT with a
// resourceVersion check, DELETE with preconditions, and watch (chunked JSON lines, BOOKMARKs,
// 410 Gone for compacted history). Errors are Status objects as kube-apiserver writes them.
//
// Each tenant (URL prefix /tenants/<id>) is a separate API server with its own
// resourceVersion counter, so tests sharing one process never see each other's writes.
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { KINDS } from '../../model/index.js';
import { parseResourcePath, type ResourceInfo } from '../../datastore/kubernetes/resources.js';
import * as status from './kube-api/status.js';
import { Tenant, type Change, type Json } from './kube-api/tenant.js';
import { uniqueSuffix } from './netns.js';

export interface KubeApiServerOptions {
  /** Serve HTTPS with this key and certificate; with `ca`, also demand a client certificate signed by it. */
  tls?: { key: string; cert: string; ca?: string };
  /** Interval of BOOKMARK events on watches that allow them; default 1000 ms. */
  bookmarkIntervalMs?: number;
  /**
   * How a watch from a compacted resourceVersion fails: 'event' (HTTP 200, then an ERROR
   * event with a 410 Status: what kube-apiserver does since 1.x with the watch cache) or
   * 'status' (HTTP 410 with the Status as body: older servers, no watch cache). Default 'event'.
   */
  goneAs?: 'event' | 'status';
}

export interface RequestInfo {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The Authorization header, if any. */
  authorization?: string;
  /** CN of the verified client certificate (TLS with `ca`). */
  clientCommonName?: string;
}

interface OpenWatch {
  tenant: Tenant;
  res: http.ServerResponse;
  /** When set, the next event is written only half and the connection then cut. */
  cutMidway: boolean;
  /** A dead connection: nothing more is written, and the stream never ends (not even at timeoutSeconds). */
  frozen: boolean;
}

export interface KubeApiServer {
  /** URL of the default tenant. */
  readonly url: string;
  /** URL of a new, empty tenant. */
  newTenant(): string;
  tenant(url?: string): Tenant;
  /** Compacts a tenant's history (default tenant without url). */
  compact(url?: string): void;
  /** Cuts every open watch stream now (connection reset). Returns how many. */
  cutWatches(url?: string): number;
  /** The next event on each open watch is written half, then the connection is reset. */
  cutWatchesMidEvent(url?: string): number;
  /** Makes every open watch stream a dead connection that stays open silently. Returns how many. */
  freezeWatches(url?: string): number;
  /** Events written half before a cut (cutWatchesMidEvent taking effect). */
  readonly midEventCuts: () => number;
  /** The highest resourceVersion a BOOKMARK has carried to the tenant's watches (0: none yet). */
  lastBookmark(url?: string): number;
  /** Open watch streams (of a tenant). */
  openWatches(url?: string): number;
  /** Requests served, by method (watches counted as WATCH). */
  readonly requests: Record<string, number>;
  setGoneAs(mode: 'event' | 'status'): void;
  /** Runs before each request is served (after it is counted): lets a test act between a list's pages. */
  beforeRequest:
    ((req: { method: string; path: string; query: URLSearchParams }) => void | Promise<void>) | undefined;
  /** Stops listening and resets every connection, then listens again on the same port after `downMs`; storage survives. */
  restart(downMs?: number): Promise<void>;
  close(): Promise<void>;
}

const BUILT_IN_GROUPS = new Set(['', 'networking.k8s.io', 'coordination.k8s.io']);

function send(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw status.badRequest('the request body is not JSON');
  }
}

function objectBody(raw: unknown, r: ResourceInfo, ns: string | undefined, name?: string): Json {
  const b = raw as Json | undefined;
  if (typeof b !== 'object' || b === null || typeof b.metadata !== 'object' || b.metadata === null)
    throw status.badRequest('Object has no metadata');
  const apiVersion = r.group ? `${r.group}/${r.version}` : r.version;
  if (b.kind !== r.kind || b.apiVersion !== apiVersion)
    throw status.badRequest(
      `the API version in the data (${String(b.apiVersion)}) and kind (${String(b.kind)}) do not match ${apiVersion} ${r.kind}`,
    );
  if (r.namespaced) {
    b.metadata.namespace ??= ns;
    if (b.metadata.namespace !== ns)
      throw status.badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
  }
  if (name !== undefined && b.metadata.name !== name)
    throw status.badRequest('the name of the object does not match the name on the URL');
  return b;
}

/** Built-in kinds' list items carry no apiVersion/kind; custom resources' do. */
function listItem(r: ResourceInfo, o: Json): Json {
  if (!BUILT_IN_GROUPS.has(r.group)) return o;
  const { apiVersion: _a, kind: _k, ...rest } = o;
  return rest as Json;
}

interface ContinueToken {
  rv: number;
  after: string;
}

export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const bookmarkMs = options.bookmarkIntervalMs ?? 1000;
  let goneAs = options.goneAs ?? 'event';
  const tenants = new Map<string, Tenant>([['', new Tenant()]]);
  const watches = new Set<OpenWatch>();
  const sockets = new Set<Socket>();
  const requests: Record<string, number> = {};
  const bookmarked = new Map<Tenant, number>();
  let midEventCuts = 0;

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof status.ApiFailure) send(res, e.status.code, e.status);
      else
        send(res, 500, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'InternalError',
          message: String(e),
          code: 500,
        });
    });
  };
  const tls = options.tls;
  const server = tls
    ? https.createServer(
        {
          key: tls.key,
          cert: tls.cert,
          ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
        },
        onRequest,
      )
    : http.createServer(onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const stop = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };

  const tenantOf = (url?: string): Tenant => {
    const id = url === undefined ? '' : (/\/tenants\/([^/]+)$/.exec(url)?.[1] ?? '');
    const t = tenants.get(id);
    if (!t) throw new Error(`no tenant ${url}`);
    return t;
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', base);
    const m = /^\/tenants\/([^/]+)(\/.*)$/.exec(url.pathname);
    const tenant = tenants.get(m?.[1] ?? '');
    const parsed = tenant ? parseResourcePath(m?.[2] ?? url.pathname) : undefined;
    if (!tenant || !parsed) throw status.pathNotFound();
    const { resource: r, namespace: ns, name } = parsed;
    const q = url.searchParams;
    const method = req.method === 'GET' && q.get('watch') === 'true' ? 'WATCH' : (req.method ?? '');
    requests[method] = (requests[method] ?? 0) + 1;
    const peer = tls ? (req.socket as TLSSocket).getPeerCertificate() : undefined;
    const cn = peer?.subject?.CN;
    await api.beforeRequest?.({
      method,
      path: m?.[2] ?? url.pathname,
      query: q,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(typeof cn === 'string' ? { clientCommonName: cn } : {}),
    });
    const body = await readBody(req);
    switch (method) {
      case 'WATCH':
        if (name !== undefined) throw status.methodNotAllowed();
        return watch(tenant, r, ns, q, res);
      case 'GET': {
        if (name === undefined) return send(res, 200, list(tenant, r, ns, q));
        const o = tenant.objects.get(Tenant.storageKey(r.kind, ns, name));
        if (!o) throw status.notFound(r, name);
        return send(res, 200, o);
      }
      case 'POST': {
        if (name !== undefined) throw status.methodNotAllowed();
        const obj = objectBody(body, r, ns);
        Tenant.validate(r, obj);
        return send(res, 201, tenant.create(r, obj));
      }
      case 'PUT': {
        if (name === undefined) throw status.methodNotAllowed();
        const obj = objectBody(body, r, ns, name);
        Tenant.validate(r, obj);
        return send(res, 200, tenant.update(r, obj));
      }
      case 'DELETE': {
        if (name === undefined) throw status.methodNotAllowed();
        const pre = (body as { preconditions?: { resourceVersion?: unknown } } | undefined)?.preconditions;
        const rv = typeof pre?.resourceVersion === 'string' ? pre.resourceVersion : undefined;
        return send(res, 200, tenant.delete(r, ns, name, rv));
      }
      default:
        throw status.methodNotAllowed();
    }
  }

  function list(tenant: Tenant, r: ResourceInfo, ns: string | undefined, q: URLSearchParams) {
    const limit = Number(q.get('limit') ?? '0');
    let token: ContinueToken | undefined;
    const cont = q.get('continue');
    if (cont) {
      try {
        token = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as ContinueToken;
      } catch {
        throw status.badRequest('continue key is not valid');
      }
      if (token.rv < tenant.compactedThrough)
        throw status.expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
    }
    const atRv = token?.rv ?? tenant.rv;
    let entries = tenant.snapshot(r.kind, ns, atRv);
    if (token) entries = entries.filter(([k]) => k > token.after);
    const page = limit > 0 ? entries.slice(0, limit) : entries;
    const more = page.length < entries.length;
    const apiVersion = r.group ? `${r.group}/${r.version}` : r.version;
    return {
      kind: `${r.kind}List`,
      apiVersion,
      metadata: {
        resourceVersion: String(atRv),
        ...(more
          ? {
              continue: Buffer.from(JSON.stringify({ rv: atRv, after: page[page.length - 1]![0] })).toString(
                'base64url',
              ),
              remainingItemCount: entries.length - page.length,
            }
          : {}),
      },
      items: page.map(([, o]) => listItem(r, o)),
    };
  }

  function watch(
    tenant: Tenant,
    r: ResourceInfo,
    ns: string | undefined,
    q: URLSearchParams,
    res: http.ServerResponse,
  ) {
    const rvParam = q.get('resourceVersion') ?? '';
    const from = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (from !== undefined && !Number.isInteger(from))
      throw status.badRequest(`invalid resourceVersion ${rvParam}`);
    const apiVersion = r.group ? `${r.group}/${r.version}` : r.version;
    if (from !== undefined && from < tenant.compactedThrough) {
      const gone = status.expired(`too old resource version: ${from} (${tenant.compactedThrough})`);
      if (goneAs === 'status') return send(res, 410, gone.status);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: gone.status })}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = { tenant, res, cutMidway: false, frozen: false };
    watches.add(w);
    const write = (line: string) => {
      if (w.frozen) return;
      if (w.cutMidway) {
        res.write(line.slice(0, Math.floor(line.length / 2)));
        midEventCuts++;
        w.cutMidway = false;
        res.socket?.destroy();
        return;
      }
      res.write(`${line}\n`);
    };
    const sendChange = (c: Change) => write(JSON.stringify({ type: c.type, object: c.object }));
    if (from === undefined) {
      // No resourceVersion: the current state as ADDED events, then changes.
      for (const [, o] of tenant.snapshot(r.kind, ns, tenant.rv))
        write(JSON.stringify({ type: 'ADDED', object: o }));
    } else {
      for (const c of tenant.history) {
        if (c.rv > from && c.kind === r.kind && (ns === undefined || c.object.metadata.namespace === ns))
          sendChange(c);
      }
    }
    const sub = { kind: r.kind, namespace: KINDS[r.kind].namespaced ? ns : undefined, send: sendChange };
    tenant.subscribers.add(sub);
    const bookmarks =
      q.get('allowWatchBookmarks') === 'true'
        ? setInterval(() => {
            bookmarked.set(tenant, Math.max(bookmarked.get(tenant) ?? 0, tenant.rv));
            write(
              JSON.stringify({
                type: 'BOOKMARK',
                object: { kind: r.kind, apiVersion, metadata: { resourceVersion: String(tenant.rv) } },
              }),
            );
          }, bookmarkMs)
        : undefined;
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? '0');
    const timeout =
      timeoutSeconds > 0
        ? setTimeout(() => {
            if (!w.frozen) res.end();
          }, timeoutSeconds * 1000)
        : undefined;
    res.on('close', () => {
      tenant.subscribers.delete(sub);
      clearInterval(bookmarks);
      clearTimeout(timeout);
      watches.delete(w);
    });
  }

  const watchesOf = (url?: string) => {
    const t = tenantOf(url);
    return [...watches].filter((w) => w.tenant === t);
  };

  const api: KubeApiServer = {
    beforeRequest: undefined,
    url: base,
    newTenant() {
      const id = uniqueSuffix();
      tenants.set(id, new Tenant());
      return `${base}/tenants/${id}`;
    },
    tenant: tenantOf,
    compact: (url) => tenantOf(url).compact(),
    cutWatches(url) {
      const ws = watchesOf(url);
      for (const w of ws) w.res.socket?.destroy();
      return ws.length;
    },
    cutWatchesMidEvent(url) {
      const ws = watchesOf(url);
      for (const w of ws) w.cutMidway = true;
      return ws.length;
    },
    freezeWatches(url) {
      const ws = watchesOf(url);
      for (const w of ws) w.frozen = true;
      return ws.length;
    },
    openWatches: (url) => watchesOf(url).length,
    midEventCuts: () => midEventCuts,
    lastBookmark: (url) => bookmarked.get(tenantOf(url)) ?? 0,
    requests,
    setGoneAs(mode) {
      goneAs = mode;
    },
    async restart(downMs = 200) {
      const port = (server.address() as AddressInfo).port;
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    close: stop,
  };
  return api;
}
