// Host-side reads and writes through /proc and /sys: in the agent's own netns these cost
// microseconds, where an exec of sysctl(8) or ip(8) costs milliseconds.
//
// Synchronous on purpose: these files live in memory and a sync open/read/close takes a few
// microseconds, where fs/promises sends each of open, read and close to the libuv threadpool
// (~0.1 ms apiece, more when the pool is busy).
import { accessSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';

export async function readText(path: string): Promise<string | undefined> {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    accessSync(path);
    return true;
  } catch {
    return false;
  }
}

export const linkExists = (name: string) => exists(`/sys/class/net/${name}`);

export async function listLinks(): Promise<string[]> {
  try {
    return readdirSync('/sys/class/net');
  } catch {
    return [];
  }
}

export const DEFAULT_PROC_SYS_NET = '/proc/sys/net';

/**
 * Where the `net.*` sysctls are: `TERN_PROC_SYS_NET`, else /proc/sys/net. An unprivileged
 * container sees /proc/sys read-only, so the DaemonSet mounts the host's /proc/sys/net
 * writable elsewhere and names it here.
 */
export function procSysNet(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.TERN_PROC_SYS_NET;
  if (root === undefined || root === '') return DEFAULT_PROC_SYS_NET;
  if (!root.startsWith('/'))
    throw new Error(`TERN_PROC_SYS_NET: must be an absolute path, got ${JSON.stringify(root)}`);
  return root.replace(/\/+$/, '');
}

/** The file of `net.<section>.<ifname>.<key>` (dots → slashes, interface names kept whole). */
export function sysctlPath(section: string, ifname: string, key: string, root = procSysNet()): string {
  return `${root}/${section.replace('.', '/')}/${ifname}/${key}`;
}

/** Writes `net.<key>`, e.g. writeSysctl('ipv4.conf', 'eth0', 'proxy_arp', '1'). */
export function writeSysctl(section: string, ifname: string, key: string, value: string): void {
  writeFileSync(sysctlPath(section, ifname, key), value);
}

export const readSysctl = (section: string, ifname: string, key: string) =>
  readText(sysctlPath(section, ifname, key));

export const ipv6Enabled = (): boolean => existsSync(`${procSysNet()}/ipv6/conf`);

/** The interface of the node's IPv4 default route with the lowest metric, from /proc/net/route. */
export async function defaultRouteInterface(): Promise<string | undefined> {
  const text = await readText('/proc/net/route');
  if (!text) return undefined;
  let best: { iface: string; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; flag 0x1 = RTF_UP
    if (f.length < 8 || f[1] !== '00000000' || f[7] !== '00000000' || !(parseInt(f[3]!, 16) & 1)) continue;
    const metric = Number(f[6]);
    if (!best || metric < best.metric) best = { iface: f[0]!, metric };
  }
  return best?.iface;
}
