// Connection settings and the retry rules of the API transport: reads ride out transient
// failures, writes are sent again only when the server provably did not act on them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesDatastore, loadKubeConfig } from '../../../datastore/kubernetes/index.js';
import { ConflictError, UnavailableError, ValidationError, type Namespace } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { waitFor } from '../../support/netns.js';

const ns = (name: string, resourceVersion?: string): Namespace => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, ...(resourceVersion ? { resourceVersion } : {}) },
});

/** A server that answers each request with the next scripted [status, body], counting requests. */
async function scriptedServer() {
  const script: Array<[number, unknown]> = [];
  const seen: Array<{ method: string; url: string; auth?: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        auth: req.headers.authorization,
        body: Buffer.concat(chunks).toString(),
      });
      const [code, body] = script.shift() ?? [500, { kind: 'Status', code: 500, message: 'script ran out' }];
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, script, seen, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const unavailable = [
  503,
  { kind: 'Status', status: 'Failure', reason: 'ServiceUnavailable', code: 503, message: 'etcd down' },
] as [number, unknown];

describe('KubernetesDatastore transport', () => {
  let s: Awaited<ReturnType<typeof scriptedServer>>;
  const dir = mkdtempSync(join(tmpdir(), 'tern-kubeconfig-'));
  beforeAll(async () => {
    s = await scriptedServer();
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await new Promise((r) => s.server.close(r));
  });

  const open = (extra: object = {}) => new KubernetesDatastore({ server: s.url, retries: 3, ...extra });

  it('retries a read through transient 503s and returns the answer', async () => {
    s.seen.length = 0;
    s.script.push(unavailable, unavailable, [200, ns('a', '5')]);
    const ds = open();
    expect((await ds.get('Namespace', { name: 'a' }))?.metadata.resourceVersion).toBe('5');
    expect(s.seen.map((r) => r.method)).toEqual(['GET', 'GET', 'GET']);
    await ds.close();
  });

  it('gives a read UnavailableError after the bounded retries', async () => {
    s.seen.length = 0;
    s.script.push(unavailable, unavailable, unavailable, unavailable, [200, ns('a', '5')]);
    const ds = open();
    await expect(ds.get('Namespace', { name: 'a' })).rejects.toBeInstanceOf(UnavailableError);
    expect(s.seen).toHaveLength(4); // 1 + 3 retries
    s.script.length = 0;
    await ds.close();
  });

  it('does not resend a write the server may have applied (5xx), but does after 429', async () => {
    s.seen.length = 0;
    s.script.push(unavailable);
    const ds = open();
    await expect(ds.update(ns('a', '5'))).rejects.toBeInstanceOf(UnavailableError);
    expect(s.seen.map((r) => r.method)).toEqual(['PUT']);

    s.seen.length = 0;
    s.script.push(
      [429, { kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'slow down' }],
      [409, { kind: 'Status', code: 409, reason: 'Conflict', message: 'the object has been modified' }],
    );
    await expect(ds.update(ns('a', '5'))).rejects.toBeInstanceOf(ConflictError);
    expect(s.seen.map((r) => r.method)).toEqual(['PUT', 'PUT']);
    await ds.close();
  });

  it('sends a write again when the connection was refused (nothing reached a server), until one answers', async () => {
    const late = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(ns('late', '2')));
      });
    });
    await new Promise<void>((r) => late.listen(0, '127.0.0.1', r));
    const port = (late.address() as AddressInfo).port;
    await new Promise((r) => late.close(r));
    const ds = new KubernetesDatastore({ server: `http://127.0.0.1:${port}`, retries: 5 });
    const created = ds.create(ns('late'));
    setTimeout(() => late.listen(port, '127.0.0.1'), 20); // up after the first attempt was refused
    expect((await created).metadata.resourceVersion).toBe('2');
    await ds.close();
    await new Promise((r) => late.close(r));

    const never = new KubernetesDatastore({ server: `http://127.0.0.1:${port}`, retries: 1 });
    const err = await never.create(ns('a')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    await never.close();
  });

  it('sends the PUT with metadata.resourceVersion and the DELETE with a resourceVersion precondition', async () => {
    s.seen.length = 0;
    s.script.push([200, ns('a', '6')], [200, ns('a', '7')]);
    const ds = open();
    await ds.update(ns('a', '5'));
    await ds.delete('Namespace', { name: 'a' }, { resourceVersion: '6' });
    expect(s.seen[0]).toMatchObject({ method: 'PUT', url: '/api/v1/namespaces/a' });
    expect(JSON.parse(s.seen[0]!.body)).toMatchObject({ metadata: { name: 'a', resourceVersion: '5' } });
    expect(s.seen[1]).toMatchObject({ method: 'DELETE', url: '/api/v1/namespaces/a' });
    expect(JSON.parse(s.seen[1]!.body)).toEqual({
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      preconditions: { resourceVersion: '6' },
    });
    await ds.close();
  });

  it('authenticates with the kubeconfig user and overrides its server when asked', async () => {
    const path = join(dir, 'config');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]',
        'users: [{name: u, user: {token: secret-token}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    s.seen.length = 0;
    s.script.push([200, ns('a', '5')]);
    const ds = new KubernetesDatastore({ kubeconfigPath: path, server: s.url });
    expect(ds.server).toBe(s.url);
    await ds.get('Namespace', { name: 'a' });
    expect(s.seen[0]?.auth).toBe('Bearer secret-token');
    await ds.close();
  });
});

describe('KubernetesDatastore watch refused by the server', () => {
  it('keeps retrying with backoff and logs the refusal (403) as a warning naming the status', async () => {
    const s = await scriptedServer();
    const forbidden: [number, unknown] = [
      403,
      { kind: 'Status', code: 403, reason: 'Forbidden', message: 'bgppeers.tern.network is forbidden' },
    ];
    s.script.push(forbidden, forbidden, forbidden);
    const lines: string[] = [];
    const logger = createLogger('watch-403', {
      level: 'debug',
      destination: { write: (l: string) => void lines.push(l) },
    });
    const ds = new KubernetesDatastore({ server: s.url, logger, watchBackoff: { initialMs: 10, maxMs: 20 } });
    const events: unknown[] = [];
    const w = ds.watch('BGPPeer', { fromRevision: '5' }, (e) => events.push(e));
    const warnings = () =>
      lines.map((l) => JSON.parse(l) as { level: number; httpStatus?: number }).filter((l) => l.level === 40);
    await waitFor('three refusals logged', () => warnings().length >= 3, 5000, 10);
    await w.close();
    await ds.close();
    await new Promise((r) => s.server.close(r));
    expect(
      s.seen.every((r) => r.url.startsWith('/apis/tern.network/v1/bgppeers?watch=true&resourceVersion=5')),
    ).toBe(true);
    expect(events).toEqual([]); // not a resync: the history is not gone, access is
    const warned = warnings();
    expect(warned.slice(0, 3).map((l) => l.httpStatus)).toEqual([403, 403, 403]);
  });
});

describe('loadKubeConfig', () => {
  it.each([
    [{ server: 'not a url' }, 'kubeServer'],
    [{ server: 'ftp://x' }, 'kubeServer'],
    [{ kubeconfigPath: '/nonexistent/kubeconfig' }, 'kubeconfig'],
  ])('rejects %j naming %s', (conn, field) => {
    const err = (() => {
      try {
        loadKubeConfig(conn);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });

  it('accepts a plain-http server (kubectl proxy) without demanding skipTLSVerify', () => {
    const kc = loadKubeConfig({ server: 'http://127.0.0.1:8001' });
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'http://127.0.0.1:8001', skipTLSVerify: true });
    const tls = loadKubeConfig({ server: 'https://10.0.0.1:6443' });
    expect(tls.getCurrentCluster()?.skipTLSVerify).toBe(false);
  });
});
