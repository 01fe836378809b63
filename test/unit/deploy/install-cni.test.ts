// Runs deploy/kubernetes/install-cni.sh against temporary directories standing in for the host's
// /opt/cni/bin and /etc/cni/net.d, with a stub plugin bundle that echoes what it was given.
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parseRequest } from '../../../cni/request.js';

const CNI_MAIN = fileURLToPath(new URL('../../../cni/main.ts', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../../deploy/kubernetes/install-cni.sh', import.meta.url));
const STUB = `const s = require('node:fs').readFileSync(0, 'utf8');
console.log(JSON.stringify({ args: process.argv.slice(2), cmd: process.env.CNI_COMMAND, stdin: s }));
`;

const root = mkdtempSync(join(tmpdir(), 'tern-install-cni-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
let dirs: { bin: string; net: string; plugin: string };
beforeEach(() => {
  const base = join(root, String(n++));
  dirs = { bin: join(base, 'bin'), net: join(base, 'net'), plugin: join(base, 'tern.cjs') };
  for (const d of [dirs.bin, dirs.net]) mkdirSync(d, { recursive: true });
  writeFileSync(dirs.plugin, STUB);
});
const install = (env: Record<string, string> = {}) =>
  execa('sh', [SCRIPT], {
    reject: false,
    env: {
      CNI_BIN_DIR: dirs.bin,
      HOST_CNI_BIN_DIR: dirs.bin,
      CNI_NET_DIR: dirs.net,
      TERN_PLUGIN_JS: dirs.plugin,
      ...env,
    },
  });
const conflist = () =>
  JSON.parse(readFileSync(join(dirs.net, '10-tern.conflist'), 'utf8')) as {
    cniVersion: string;
    cniVersions: string[];
    name: string;
    plugins: Array<Record<string, unknown>>;
  };
const payloads = () => readdirSync(dirs.bin).filter((f) => f.startsWith('.tern-'));
const leftovers = () =>
  [...readdirSync(dirs.bin), ...readdirSync(dirs.net)].filter((f) => f.includes('.tmp.'));

describe('install-cni.sh', () => {
  it('installs tern, the bundled plugin run by the payload node, which gets the runtime arguments, environment and stdin', async () => {
    const r = await install();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(payloads()).toHaveLength(1);
    const out = await execa(join(dirs.bin, 'tern'), ['x'], {
      input: '{"cniVersion":"1.1.0"}',
      env: { CNI_COMMAND: 'VERSION' },
    });
    expect(JSON.parse(out.stdout)).toEqual({ args: ['x'], cmd: 'VERSION', stdin: '{"cniVersion":"1.1.0"}' });
    expect(leftovers()).toEqual([]);
  });

  it('the real plugin, bundled as the Containerfile does and installed, answers VERSION and reports a missing agent as code 11', async () => {
    // The image bundles dist/cni/main.js; rolldown reads the TypeScript source just as well.
    await execa('npx', [
      'rolldown',
      CNI_MAIN,
      '--format',
      'cjs',
      '--platform',
      'node',
      '--file',
      dirs.plugin,
    ]);
    expect((await install()).exitCode).toBe(0);
    const tern = join(dirs.bin, 'tern');
    const version = await execa(tern, { input: '{"cniVersion":"1.0.0"}', env: { CNI_COMMAND: 'VERSION' } });
    expect(JSON.parse(version.stdout)).toMatchObject({
      cniVersion: '1.0.0',
      supportedVersions: expect.arrayContaining(['0.4.0', '1.0.0', '1.1.0']),
    });
    const c = conflist();
    const socket = join(dirs.bin, 'no-agent.sock');
    const add = await execa(tern, {
      reject: false,
      input: JSON.stringify({ ...c.plugins[0], agentSocket: socket, name: c.name, cniVersion: c.cniVersion }),
      env: {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'abc',
        CNI_NETNS: '/var/run/netns/x',
        CNI_IFNAME: 'eth0',
        CNI_PATH: dirs.bin,
      },
    });
    expect(add.exitCode).not.toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ cniVersion: '1.0.0', code: 11 });
  }, 60_000);

  it('writes a conflist with cniVersion 1.0.0 and cniVersions, whose tern entry the plugin parser accepts', async () => {
    expect((await install()).exitCode).toBe(0);
    const c = conflist();
    expect(c.cniVersion).toBe('1.0.0');
    expect(c.cniVersions).toEqual(['0.4.0', '1.0.0', '1.1.0']);
    expect(c.plugins.map((p) => p.type)).toEqual(['tern']);
    // As libcni hands one plugin of a list to the plugin: with the list's name and version.
    const stdin = JSON.stringify({ ...c.plugins[0], name: c.name, cniVersion: c.cniVersion });
    const env = {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'abc',
      CNI_NETNS: '/var/run/netns/x',
      CNI_IFNAME: 'eth0',
      CNI_PATH: dirs.bin,
    };
    const req = parseRequest(env, stdin);
    expect(req.conf.type).toBe('tern');
    expect(c.plugins[0]!.agentSocket).toBe('/run/tern/cni.sock');
  });

  it('chains portmap and bandwidth only when the host has them, and never with TERN_CNI_CHAIN=none', async () => {
    for (const p of ['portmap', 'bandwidth']) {
      writeFileSync(join(dirs.bin, p), '');
      chmodSync(join(dirs.bin, p), 0o755);
    }
    expect((await install()).exitCode).toBe(0);
    expect(conflist().plugins.map((p) => p.type)).toEqual(['tern', 'portmap', 'bandwidth']);
    expect(conflist().plugins[1]).toMatchObject({ capabilities: { portMappings: true } });
    expect((await install({ TERN_CNI_CHAIN: 'none' })).exitCode).toBe(0);
    expect(conflist().plugins.map((p) => p.type)).toEqual(['tern']);
  });

  it('writes the MTU when TERN_CNI_MTU is set', async () => {
    expect((await install({ TERN_CNI_MTU: '1450' })).exitCode).toBe(0);
    expect(conflist().plugins[0]!.mtu).toBe(1450);
  });

  it('is idempotent, and an upgrade keeps the previous payload for in-flight calls and removes older ones', async () => {
    expect((await install()).exitCode).toBe(0);
    const v1 = payloads();
    expect((await install()).exitCode).toBe(0);
    expect(payloads()).toEqual(v1);
    appendFileSync(dirs.plugin, '// v2\n');
    expect((await install()).exitCode).toBe(0);
    const v2 = payloads();
    expect(v2).toHaveLength(2);
    expect(v2).toEqual(expect.arrayContaining(v1));
    appendFileSync(dirs.plugin, '// v3\n');
    expect((await install()).exitCode).toBe(0);
    const v3 = payloads();
    expect(v3).toHaveLength(2);
    expect(v3).not.toEqual(expect.arrayContaining(v1));
    const plugin = readFileSync(join(dirs.bin, 'tern'), 'utf8');
    expect(v3.some((p) => plugin.startsWith(`#!${dirs.bin}/${p}/node\n`))).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  it('the plugin names its interpreter by the host path of the payload, not by the path mounted in the container', async () => {
    expect((await install({ HOST_CNI_BIN_DIR: '/opt/cni/bin' })).exitCode).toBe(0);
    const plugin = readFileSync(join(dirs.bin, 'tern'), 'utf8');
    expect(plugin.split('\n')[0]).toMatch(/^#!\/opt\/cni\/bin\/\.tern-[0-9a-f]{12}\/node$/);
    // The bundle follows, its own interpreter line replaced.
    expect(plugin.split('\n').slice(1).join('\n')).toBe(STUB);
  });

  it('an upgrade from the sh wrapper of earlier versions keeps the payload that wrapper names', async () => {
    const old = join(dirs.bin, '.tern-0123456789ab');
    mkdirSync(old);
    writeFileSync(
      join(dirs.bin, 'tern'),
      `#!/bin/sh\nTERN_DIR=${dirs.bin}/.tern-0123456789ab\nexec "$TERN_DIR/node" "$TERN_DIR/tern.cjs" "$@"\n`,
    );
    expect((await install()).exitCode).toBe(0);
    expect(payloads()).toContain('.tern-0123456789ab');
    expect(payloads()).toHaveLength(2);
  });

  it('warns when another configuration sorts before its conflist (the runtime would use that one)', async () => {
    writeFileSync(join(dirs.net, '05-other.conflist'), '{}');
    const r = await install();
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('05-other.conflist sorts before 10-tern.conflist');
    expect(existsSync(join(dirs.net, '05-other.conflist'))).toBe(true);
  });

  it.each([
    [{ TERN_CNI_SOCKET: '/run/tern/"x.sock' }, 'unsafe characters'],
    [{ CNI_CONF_NAME: 'tern.conf' }, 'must end in .conflist'],
    [{ TERN_CNI_CHAIN: 'yes' }, 'TERN_CNI_CHAIN'],
    [{ TERN_CNI_MTU: '15x' }, 'TERN_CNI_MTU'],
    [{ TERN_PLUGIN_JS: '/nonexistent/tern.cjs' }, 'plugin bundle'],
  ])('refuses bad settings %j and writes nothing', async (env, message) => {
    const r = await install(env);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(message);
    expect(readdirSync(dirs.bin)).toEqual([]);
    expect(readdirSync(dirs.net)).toEqual([]);
  });
});
