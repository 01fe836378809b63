import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../../model/errors.js';
import { LocalApiError, requestJson } from '../../../model/local-api.js';

describe('requestJson over a Unix socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tern-local-api-'));
  const socket = join(dir, 'api.sock');
  let server: Server;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/echo') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              method: req.method,
              body: JSON.parse(Buffer.concat(chunks).toString() || 'null'),
            }),
          );
        } else if (req.url === '/text') {
          res.end('not json');
        } else if (req.url === '/slow') {
          setTimeout(() => res.end('{}'), 1000);
        } else {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'pod: must be <namespace>/<pod>' }));
        }
      });
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the body as JSON with POST and returns the parsed answer', async () => {
    expect(await requestJson(socket, '/echo', { body: { a: 1 } })).toEqual({
      method: 'POST',
      body: { a: 1 },
    });
    expect(await requestJson(socket, '/echo')).toEqual({ method: 'GET', body: null });
  });

  it("turns an error status into LocalApiError carrying the server's own message", async () => {
    const e = await requestJson(socket, '/bad').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LocalApiError);
    expect((e as LocalApiError).message).toBe('pod: must be <namespace>/<pod>');
    expect((e as LocalApiError).status).toBe(400);
  });

  it('names the socket and the service when nothing listens, or the answer is not JSON, or it is late', async () => {
    await expect(requestJson(join(dir, 'none.sock'), '/x', { service: 'tern-node' })).rejects.toThrow(
      new UnavailableError(`no tern-node listening on ${join(dir, 'none.sock')} (is it running?)`),
    );
    await expect(requestJson(socket, '/text', { service: 'tern-bgp' })).rejects.toThrow(
      /tern-bgp at .* answered \/text with non-JSON/,
    );
    await expect(requestJson(socket, '/slow', { timeoutMs: 100 })).rejects.toBeInstanceOf(UnavailableError);
  });
});
