// The `tern` executable on its own: VERSION answered locally, every other command forwarded, and
// the agent's absence reported as CNI wants it (code 11 "try again later", STATUS code 50).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniServer } from '../../../felix/cni/server.js';
import { TERN_BIN, TERN_ESM, buildCni, runPlugin } from './harness.js';

let dir = '';
let missing = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tern-exe-'));
  missing = join(dir, 'nobody-listens.sock');
  await buildCni();
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (env: Record<string, string>, stdin: string) =>
  runPlugin(TERN_BIN, { PATH: process.env.PATH ?? '/usr/bin:/bin', TERN_CNI_SOCKET: missing, ...env }, stdin);

const fullEnv = (command: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/var/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/usr/lib/cni',
});

describe('tern executable', () => {
  it('VERSION without stdin: the supported versions, exit 0, nothing on stderr', async () => {
    const r = await run({ CNI_COMMAND: 'VERSION' }, '');
    expect(r.code).toBe(0);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    expect(r.stderr).toBe('');
  });

  it('VERSION echoes the config cniVersion and ignores podman dummy env', async () => {
    const r = await run(
      {
        CNI_COMMAND: 'VERSION',
        CNI_PATH: 'dummy',
        CNI_NETNS: 'dummy',
        CNI_IFNAME: 'dummy',
        CNI_CONTAINERID: '',
      },
      '{"cniVersion":"0.4.0"}',
    );
    expect(r.json?.cniVersion).toBe('0.4.0');
  });

  it.each(['ADD', 'DEL', 'CHECK', 'GC'])(
    '%s without an agent → code 11 naming the socket',
    async (command) => {
      const r = await run(fullEnv(command), '{"cniVersion":"1.1.0","name":"n","type":"tern"}');
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ cniVersion: '1.1.0', code: 11 });
      expect(String(r.json?.details)).toContain(missing);
    },
  );

  it('STATUS without an agent → code 50 (not ready)', async () => {
    const r = await run(
      { CNI_COMMAND: 'STATUS', CNI_PATH: '' },
      '{"cniVersion":"1.1.0","name":"n","type":"tern"}',
    );
    expect(r.json).toMatchObject({ code: 50 });
  });

  it('an empty or unknown CNI_COMMAND → code 4 without asking the agent', async () => {
    expect((await run({ CNI_COMMAND: '' }, '{}')).json).toMatchObject({ code: 4 });
    expect((await run({ CNI_COMMAND: 'FROB' }, '{}')).json).toMatchObject({ code: 4 });
  });

  // The installed form (the bundle, over node's pipe handle), its node:net fallback, and the
  // unbundled tsc output must be indistinguishable to the agent and to the runtime.
  const variants: [string, string, string[], Record<string, string>][] = [
    ['the installed bundle', TERN_BIN, [], {}],
    ['the bundle on its node:net fallback', TERN_BIN, [], { TERN_CNI_NODE_NET: '1' }],
    ['the unbundled ESM build', TERN_ESM, [process.execPath], {}],
  ];

  it.each(variants)(
    '%s forwards env and stdin byte for byte, prints the answer verbatim and exits with its code',
    async (_name, bin, prefix, extraEnv) => {
      const sock = join(dir, 'echo.sock');
      const seen: { env: Record<string, string>; stdin: string }[] = [];
      const server = new CniServer({
        socketPath: sock,
        handle: async (r) => {
          seen.push(r);
          return { exitCode: 3, stdout: '{"answer":1}\n', stderr: 'log line\n' };
        },
      });
      await server.start();
      try {
        const stdin = '{"cniVersion":"1.0.0","name":"n","type":"tern","x":"é ✓"}';
        const r = await runPlugin(
          bin,
          { ...fullEnv('ADD'), CNI_ARGS: 'A=1', NOT_CNI: 'secret', TERN_CNI_SOCKET: sock, ...extraEnv },
          stdin,
          prefix,
        );
        expect([r.code, r.stdout, r.stderr]).toEqual([3, '{"answer":1}', 'log line']);
        expect(seen[0]?.stdin).toBe(stdin);
        expect(seen[0]?.env).toEqual({ ...fullEnv('ADD'), CNI_ARGS: 'A=1' });
      } finally {
        await server.close();
      }
    },
  );

  it.each(variants)(
    '%s reads a large request and a large answer whole (many socket reads)',
    async (_name, bin, prefix, extraEnv) => {
      const sock = join(dir, 'big.sock');
      const big = 'x'.repeat(300_000);
      const server = new CniServer({
        socketPath: sock,
        handle: async (r) => ({ exitCode: 0, stdout: JSON.stringify({ echoed: r.stdin.length, big }) }),
      });
      await server.start();
      try {
        const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tern', prevResult: { big } });
        const r = await runPlugin(
          bin,
          { ...fullEnv('DEL'), TERN_CNI_SOCKET: sock, ...extraEnv },
          stdin,
          prefix,
        );
        expect(r.code, r.stderr).toBe(0);
        expect(r.json).toEqual({ echoed: stdin.length, big });
      } finally {
        await server.close();
      }
    },
  );

  it.each(variants)(
    '%s: an agent that hangs up without answering, or never answers, is code 11',
    async (_name, bin, prefix, extraEnv) => {
      const sock = join(dir, 'rude.sock');
      let hangUp = true;
      const open = new Set<Socket>();
      const server = createServer({ allowHalfOpen: true }, (s) => {
        open.add(s);
        s.on('close', () => open.delete(s));
        s.on('error', () => undefined);
        s.on('data', () => undefined);
        s.on('end', () => {
          if (hangUp) s.destroy();
        });
      });
      await new Promise<void>((resolve) => server.listen(sock, resolve));
      try {
        const conf = '{"cniVersion":"1.0.0","name":"n","type":"tern"}';
        const env = { ...fullEnv('ADD'), TERN_CNI_SOCKET: sock, TERN_CNI_TIMEOUT_MS: '300', ...extraEnv };
        const closed = await runPlugin(bin, env, conf, prefix);
        expect(closed.json).toMatchObject({ cniVersion: '1.0.0', code: 11 });
        expect(String(closed.json?.details)).toContain('without answering');
        hangUp = false;
        const silent = await runPlugin(bin, env, conf, prefix);
        expect(silent.json).toMatchObject({ cniVersion: '1.0.0', code: 11 });
        expect(String(silent.json?.details)).toContain('no answer within 300 ms');
      } finally {
        for (const s of open) s.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  );

  it('the installed bundle, on the ADD path, loads no node module that an empty script does not', async () => {
    const sock = join(dir, 'mods.sock');
    const server = new CniServer({ socketPath: sock, handle: async () => ({ exitCode: 0, stdout: '{}' }) });
    await server.start();
    // A preload that records, at exit, every internal module and binding node loaded.
    const preload = join(dir, 'record-modules.cjs');
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(process.env.RECORD, JSON.stringify(process.moduleLoadList)));\n`,
    );
    const empty = join(dir, 'empty.cjs');
    writeFileSync(empty, '');
    const loaded = async (
      name: string,
      bin: string,
      prefix: string[],
      extra: Record<string, string> = {},
    ) => {
      const record = join(dir, `modules-${name}.json`);
      const env = {
        ...fullEnv('ADD'),
        TERN_CNI_SOCKET: sock,
        NODE_OPTIONS: `--require ${preload}`,
        RECORD: record,
      };
      const r = await runPlugin(
        bin,
        { ...env, ...extra },
        '{"cniVersion":"1.0.0","name":"n","type":"tern"}',
        prefix,
      );
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return JSON.parse(readFileSync(record, 'utf8')) as string[];
    };
    try {
      const floor = new Set(await loaded('empty', empty, [process.execPath]));
      const beyond = (mods: string[]) => mods.filter((m) => !floor.has(m));
      // Only the two C++ bindings of the pipe handle: no JavaScript module (node:net, streams, ESM loader).
      expect(beyond(await loaded('bundle', TERN_BIN, []))).toEqual([
        'Internal Binding pipe_wrap',
        'Internal Binding stream_wrap',
      ]);
      // The check can see what it guards against: the node:net fallback loads net and streams.
      expect(beyond(await loaded('net', TERN_BIN, [], { TERN_CNI_NODE_NET: '1' }))).toContain(
        'NativeModule net',
      );
    } finally {
      await server.close();
    }
  });

  it('the netconf agentSocket is used when TERN_CNI_SOCKET is not set', async () => {
    const sock = join(dir, 'conf.sock');
    const server = new CniServer({ socketPath: sock, handle: async () => ({ exitCode: 0, stdout: '' }) });
    await server.start();
    try {
      const r = await runPlugin(
        TERN_BIN,
        { ...fullEnv('DEL') },
        JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tern', agentSocket: sock }),
      );
      expect(r.code).toBe(0);
    } finally {
      await server.close();
    }
  });
});
