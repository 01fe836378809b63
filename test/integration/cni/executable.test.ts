// The `tern` executable on its own: VERSION answered locally, every other command forwarded, and
// the agent's absence reported as CNI wants it (code 11 "try again later", STATUS code 50).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniServer } from '../../../cni/server.js';
import { TERN_BIN, buildCni, runPlugin } from './harness.js';

let dir = '';
let missing = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tern-exe-'));
  missing = join(dir, 'nobody-listens.sock');
  await buildCni();
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (env: Record<string, string>, stdin: string) =>
  runPlugin(
    TERN_BIN,
    { PATH: process.env.PATH ?? '/usr/bin:/bin', TERN_CNI_SOCKET: missing, ...env },
    stdin,
    [process.execPath],
  );

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

  it('forwards env and stdin byte for byte, prints the answer verbatim and exits with its code', async () => {
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
        TERN_BIN,
        { ...fullEnv('ADD'), CNI_ARGS: 'A=1', NOT_CNI: 'secret', TERN_CNI_SOCKET: sock },
        stdin,
        [process.execPath],
      );
      expect([r.code, r.stdout, r.stderr]).toEqual([3, '{"answer":1}', 'log line']);
      expect(seen[0]?.stdin).toBe(stdin);
      expect(seen[0]?.env).toEqual({ ...fullEnv('ADD'), CNI_ARGS: 'A=1' });
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
        [process.execPath],
      );
      expect(r.code).toBe(0);
    } finally {
      await server.close();
    }
  });
});
