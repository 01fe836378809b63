// Support for the TCP MD5 / GTSM interop tests: a private build of tern-bgp (outside dist/, which
// other builds rewrite at any moment) run in a BgpLab's namespaces with the native addon, and
// readers for what the kernel says about the sockets (ss, /proc/net/netstat).
import { execa } from 'execa';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseMd5Counters, type Md5Counters } from '../../../native/tcp-security.js';
import {
  BGP_BUILD,
  buildTernBgp as buildSharedTernBgp,
  type BgpLab,
  type TernHandle,
} from '../../support/bgp-daemons.js';
import { stopProcess } from '../../support/netns.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
export const ADDON = path.join(ROOT, 'native/build/Release/tern_native.node');
/** Where the tests' tern-bgp is built (the bench's feeder loads the codec from there). */
export const BUILD_DIR = BGP_BUILD;

/** The tests' private build of tern-bgp (shared with the other interop tests), and the addon it needs. */
export async function buildTernBgp(): Promise<void> {
  await stat(ADDON).catch(() => {
    throw new Error(`${ADDON} is missing: run scripts/setup.sh (or node-gyp rebuild in native/)`);
  });
  await buildSharedTernBgp();
}

/** Starts the lab's tern-bgp in `ns`, also listed in `started` so a test can stop its own (`stopAll`). */
export async function startTern(
  lab: BgpLab,
  ns: string,
  name: string,
  config: Record<string, unknown>,
  started: TernHandle[],
): Promise<TernHandle> {
  await buildTernBgp();
  const handle = await lab.tern(ns, name, config);
  started.push(handle);
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
