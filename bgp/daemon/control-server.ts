// The daemon's local control API: HTTP + JSON on a Unix socket.
//   GET /peers                 → PeerStatus[]
//   GET /rib[?prefix=P]        → RibEntry[]
//   POST /routes {prefix,...}  → originate
//   DELETE /routes?prefix=P    → withdraw
import { chmod, rm } from 'node:fs/promises';
import http from 'node:http';
import type { BgpSpeaker, OriginateAttributes } from '../speaker.js';
import { TernError } from '../../model/errors.js';

const MAX_BODY = 64 * 1024;

export async function startControlServer(speaker: BgpSpeaker, socketPath: string): Promise<http.Server> {
  await rm(socketPath, { force: true });
  const server = http.createServer((req, res) => {
    handle(speaker, req)
      .then(({ status, body }) => reply(res, status, body))
      .catch((err: unknown) => {
        const status = err instanceof TernError ? 400 : 500;
        reply(res, status, { error: (err as Error).message });
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  await chmod(socketPath, 0o600);
  return server;
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

async function handle(
  speaker: BgpSpeaker,
  req: http.IncomingMessage,
): Promise<{ status: number; body: unknown }> {
  const url = new URL(req.url ?? '/', 'http://local');
  const prefix = url.searchParams.get('prefix') ?? undefined;
  if (req.method === 'GET' && url.pathname === '/peers') return { status: 200, body: speaker.peers() };
  if (req.method === 'GET' && url.pathname === '/rib')
    return { status: 200, body: speaker.rib(prefix ? { prefix } : {}) };
  if (req.method === 'POST' && url.pathname === '/routes') {
    const body = (await readBody(req)) as OriginateAttributes & { prefix?: unknown };
    if (typeof body.prefix !== 'string') return { status: 400, body: { error: 'prefix: required string' } };
    const { prefix: p, ...attrs } = body;
    speaker.originate(p, attrs);
    return { status: 200, body: { ok: true } };
  }
  if (req.method === 'DELETE' && url.pathname === '/routes') {
    if (!prefix) return { status: 400, body: { error: 'prefix: required' } };
    speaker.withdraw(prefix);
    return { status: 200, body: { ok: true } };
  }
  return { status: 404, body: { error: `no ${req.method} ${url.pathname}` } };
}
