import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniServer } from '../../../../felix/cni/server.js';

// Created in beforeAll, so a run that filters every test out (hooks skipped) leaves nothing behind.
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tern-cni-server-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function send(path: string, body: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(path, () => s.end(body));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

describe('CniServer', () => {
  it('creates the socket with mode 0600, answers one request per connection, removes the socket on close', async () => {
    const path = join(dir, 'a', 'cni.sock');
    const server = new CniServer({
      socketPath: path,
      handle: async (r) => ({ exitCode: 0, stdout: r.env.CNI_COMMAND! }),
    });
    await server.start();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const answer = JSON.parse(await send(path, JSON.stringify({ env: { CNI_COMMAND: 'DEL' }, stdin: '' })));
    expect(answer).toEqual({ exitCode: 0, stdout: 'DEL' });
    await server.close();
    expect(() => statSync(path)).toThrow();
  });

  it('a malformed request gets a decode error (code 6), an oversized one an I/O error (code 5)', async () => {
    const path = join(dir, 'b.sock');
    const server = new CniServer({
      socketPath: path,
      maxRequestBytes: 1000,
      handle: async () => ({ exitCode: 0, stdout: '' }),
    });
    await server.start();
    try {
      const bad = JSON.parse(await send(path, '{"env": 1}'));
      expect(JSON.parse(bad.stdout)).toMatchObject({ code: 6 });
      const big = JSON.parse(await send(path, Buffer.alloc(5000, 'x')));
      expect(JSON.parse(big.stdout)).toMatchObject({ code: 5 });
    } finally {
      await server.close();
    }
  });

  it('a request past its deadline is answered with code 11', async () => {
    const path = join(dir, 'c.sock');
    const server = new CniServer({
      socketPath: path,
      requestTimeoutMs: 50,
      handle: () => new Promise((r) => setTimeout(() => r({ exitCode: 0, stdout: '' }), 500)),
    });
    await server.start();
    try {
      const answer = JSON.parse(await send(path, JSON.stringify({ env: {}, stdin: '' })));
      expect(JSON.parse(answer.stdout)).toMatchObject({ code: 11 });
    } finally {
      await server.close();
    }
  });

  it('replaces a stale socket file left by a crashed agent', async () => {
    const path = join(dir, 'd.sock');
    const first = new CniServer({ socketPath: path, handle: async () => ({ exitCode: 0, stdout: '1' }) });
    await first.start();
    // Simulate a crash: the file stays, nobody listens.
    const second = new CniServer({ socketPath: path, handle: async () => ({ exitCode: 0, stdout: '2' }) });
    await second.start();
    expect(JSON.parse(await send(path, JSON.stringify({ env: {}, stdin: '' }))).stdout).toBe('2');
    await second.close();
    await first.close();
  });
});
