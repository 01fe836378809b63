// Finds the node's own address: the source address of the interface that carries the
// default route (the uplink), else the first global address on any non-pod interface.
// Route lookups only; no packet is sent.
import { execa } from 'execa';
import { HOST_VETH_PREFIX } from '../model/index.js';

interface IpAddrJson {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; scope: string; prefixlen: number }>;
}

export async function detectNodeAddress(family: 4 | 6): Promise<string | undefined> {
  const flag = family === 4 ? '-4' : '-6';
  const routes = JSON.parse(
    (await execa('ip', ['-j', flag, 'route', 'show', 'default'])).stdout || '[]',
  ) as Array<{
    dev?: string;
    prefsrc?: string;
  }>;
  const addrs = JSON.parse((await execa('ip', ['-j', flag, 'addr', 'show'])).stdout || '[]') as IpAddrJson[];
  const globalOf = (ifname: string) =>
    addrs.find((a) => a.ifname === ifname)?.addr_info?.find((i) => i.scope === 'global')?.local;
  for (const r of routes) {
    if (r.prefsrc) return r.prefsrc;
    const a = r.dev ? globalOf(r.dev) : undefined;
    if (a) return a;
  }
  for (const a of addrs) {
    if (a.ifname === 'lo' || a.ifname.startsWith(HOST_VETH_PREFIX)) continue;
    const g = globalOf(a.ifname);
    if (g) return g;
  }
  return undefined;
}
