// Support for the TCP MD5 / GTSM interop tests: a private build of tern-bgp (outside dist/, which
// other builds rewrite at any moment) run in a BgpLab's namespaces with the native addon, and
// readers for what the kernel says about the sockets (ss, /proc/net/netstat).
import { execa, type ResultPromise } from 'execa';
import { mkdir, readdir, readFile, rmdir, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getPeers, getRib, originateRoute, withdrawRoute } from '../../../bgp/control-client.js';
import { parseMd5Counters, type Md5Counters } from '../../../bgp/native/index.js';
import type { BgpLab, TernHandle } from '../../support/bgp-daemons.js';
import { stopProcess, waitFor } from '../../support/netns.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
export const BUILD_DIR = path.join(tmpdir(), 'tern-bgp-tcp-security-build');
const MAIN = path.join(BUILD_DIR, 'bgp/main.js');
export const ADDON = path.join(ROOT, 'bgp/native/build/Release/tern_tcp.node');

async function newest(dir: string): Promise<number> {
  let t = 0;
  for (const e of await readdir(path.join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts'))
      t = Math.max(t, (await stat(path.join(e.parentPath, e.name))).mtimeMs);
  }
  return t;
}

/** Compiles tern-bgp into a private directory (once, under a lock, when its sources are newer). */
export async function buildTernBgp(): Promise<void> {
  await stat(ADDON).catch(() => {
    throw new Error(`${ADDON} is missing: run scripts/setup.sh (or node-gyp rebuild in bgp/native)`);
  });
  const lock = `${BUILD_DIR}.lock`;
  await waitFor(
    'the tern-bgp build lock',
    async () => {
      try {
        await mkdir(lock);
        return true;
      } catch {
        const s = await stat(lock).catch(() => undefined);
        if (s && Date.now() - s.mtimeMs > 300_000) await rmdir(lock).catch(() => undefined);
        return false;
      }
    },
    300_000,
    200,
  );
  try {
    const built = await stat(MAIN).then(
      (s) => s.mtimeMs,
      () => 0,
    );
    const sources = Math.max(await newest('bgp'), await newest('model'));
    if (built > sources) return;
    await mkdir(BUILD_DIR, { recursive: true });
    await writeFile(path.join(BUILD_DIR, 'package.json'), '{"type":"module"}\n');
    await symlink(path.join(ROOT, 'node_modules'), path.join(BUILD_DIR, 'node_modules')).catch(
      () => undefined,
    );
    const r = await execa(
      'npx',
      [
        'tsc',
        '-p',
        path.join(ROOT, 'test/integration/bgp/tsconfig.tcp-security-build.json'),
        '--outDir',
        BUILD_DIR,
      ],
      { cwd: ROOT, reject: false },
    );
    await stat(MAIN).catch(() => {
      throw new Error(`tern-bgp build failed: ${r.stdout}\n${r.stderr}`);
    });
  } finally {
    await rmdir(lock).catch(() => undefined);
  }
}

/** Starts the privately built tern-bgp in `ns` (stopped by `stopAll`). */
export async function startTern(
  lab: BgpLab,
  ns: string,
  name: string,
  config: Record<string, unknown>,
  started: TernHandle[],
): Promise<TernHandle> {
  const d = path.join(lab.dir, name);
  await mkdir(d, { recursive: true });
  const conf = path.join(d, 'tern-bgp.json');
  const sock = path.join(d, 'control.sock');
  await writeFile(conf, JSON.stringify({ logLevel: 'debug', ...config, controlSocket: sock }));
  const logFile = path.join(d, 'tern-bgp.log');
  const child: ResultPromise = execa('ip', ['netns', 'exec', ns, process.execPath, MAIN, '--config', conf], {
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
    env: { TERN_TCP_ADDON: ADDON },
    reject: false,
  });
  const pid = child.pid!;
  const handle: TernHandle = {
    kind: 'tern',
    name,
    pid,
    socket: sock,
    status: () => getPeers(sock),
    rib: () => getRib(sock),
    routes: async () =>
      (await getRib(sock)).flatMap((e) =>
        e.paths
          .filter((p) => p.best && p.source !== 'local')
          .map((p) => ({ prefix: e.prefix, nextHop: p.nextHop ?? '', asPath: p.asPath })),
      ),
    peers: async () =>
      (await getPeers(sock)).map((p) => ({ address: p.address, established: p.state === 'Established' })),
    originate: async (prefix) => void (await originateRoute(sock, prefix)),
    withdraw: async (prefix) => void (await withdrawRoute(sock, prefix)),
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    stop: async () => {
      await stopProcess(pid);
      await Promise.race([child, new Promise((r) => setTimeout(r, 2000))]);
    },
  };
  started.push(handle);
  await waitFor(
    `${name} control socket`,
    async () => Array.isArray(await getPeers(sock).catch(() => undefined)),
    15_000,
  );
  return handle;
}

export async function stopAll(started: TernHandle[]): Promise<void> {
  for (const h of started.splice(0).reverse()) await h.stop().catch(() => stopProcess(h.pid));
}

/** The state of tern's session with `peer`. */
export async function ternState(t: TernHandle, peer: string): Promise<string | undefined> {
  return (await t.status()).find((p) => p.address === peer)?.state;
}

export async function ternPeer(t: TernHandle, peer: string) {
  return (await t.status()).find((p) => p.address === peer);
}

/** `ss -tie` of the established BGP connections in `ns` (shows `md5keys:` / the md5 option per socket). */
export async function ssBgp(ns: string): Promise<string> {
  return (
    await execa('ip', [
      'netns',
      'exec',
      ns,
      'ss',
      '-tnie',
      'state',
      'established',
      '( sport = :179 or dport = :179 )',
    ])
  ).stdout;
}

/** Listening sockets on 179 in `ns`, with their MD5 keys. */
export async function ssListen(ns: string): Promise<string> {
  return (await execa('ip', ['netns', 'exec', ns, 'ss', '-tlnie', 'sport = :179'])).stdout;
}

export async function md5CountersIn(ns: string): Promise<Md5Counters> {
  return parseMd5Counters((await execa('ip', ['netns', 'exec', ns, 'cat', '/proc/net/netstat'])).stdout);
}
