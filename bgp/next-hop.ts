// Our own next hops towards one peer, per address family (RFC 4760 / RFC 2545): the session's
// local address for its own family; for the other family the node's configured address, else an
// address of the same interface; for IPv6 over an IPv4 session the IPv4-mapped form
// (::ffff:a.b.c.d) only when nothing else exists. A link-local next hop travels next to the
// global one (32-byte MP_REACH next hop) only when the session runs over IPv6 to an on-link peer.
import os from 'node:os';
import { parseIp } from '../model/cidr.js';

export interface ConfiguredNextHops {
  /** The node's IPv4 address, used as next hop for IPv4 routes over an IPv6 session. */
  readonly ipv4?: string;
  /** The node's IPv6 address, used as next hop for IPv6 routes over an IPv4 session. */
  readonly ipv6?: string;
}

export interface LocalNextHops {
  readonly ipv4?: string;
  readonly ipv6?: string;
  /** Our link-local address on the link shared with the peer (IPv6 session, peer on-link). */
  readonly linkLocal?: string;
  /** The interface the session runs over, when known (the device of a link-local next hop). */
  readonly interface?: string;
}

type Interfaces = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

const isLinkLocal = (a: string) => /^fe[89ab][0-9a-f]:/i.test(a);

/** Whether `address` lies in the subnet `cidr` ("fd00::1/64"); false for another family. */
function inSubnet(address: string, cidr: string | null): boolean {
  if (!cidr) return false;
  const [net, len] = cidr.split('/');
  const a = parseIp(address);
  const n = parseIp(net!);
  if (a.family !== n.family) return false;
  const bits = a.family === 4 ? 32n : 128n;
  const shift = bits - BigInt(Number(len));
  return a.value >> shift === n.value >> shift;
}

export function localNextHops(
  localAddress: string,
  peerAddress: string,
  configured: ConfiguredNextHops = {},
  interfaces: Interfaces = os.networkInterfaces(),
): LocalNextHops {
  const local = parseIp(localAddress);
  let ifName: string | undefined;
  let addrs: os.NetworkInterfaceInfo[] = [];
  for (const [name, list] of Object.entries(interfaces)) {
    if (list?.some((i) => i.address === localAddress)) {
      ifName = name;
      addrs = list;
      break;
    }
  }
  const global6 = addrs.find((i) => i.family === 'IPv6' && !i.internal && !isLinkLocal(i.address))?.address;
  const first4 = addrs.find((i) => i.family === 'IPv4')?.address;
  if (local.family === 4) {
    return strip({
      ipv4: localAddress,
      ipv6: configured.ipv6 ?? global6 ?? `::ffff:${localAddress}`,
      interface: ifName,
    });
  }
  const mine = addrs.find((i) => i.address === localAddress);
  const onLink = isLinkLocal(peerAddress) || inSubnet(peerAddress, mine?.cidr ?? null);
  const linkLocal = onLink
    ? addrs.find((i) => i.family === 'IPv6' && isLinkLocal(i.address))?.address
    : undefined;
  return strip({
    ipv4: configured.ipv4 ?? first4,
    ipv6: localAddress,
    linkLocal: linkLocal === localAddress ? undefined : linkLocal,
    interface: ifName,
  });
}

function strip<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** A next hop the kernel can route through: a global one, or a link-local one with its device. */
export interface InstallableNextHop {
  readonly via: string;
  readonly dev?: string;
}

/**
 * Which of a route's next hops to install: the global one when usable, the link-local one (with
 * the session's interface) when it is the only usable one; undefined when neither is.
 */
export function installableNextHop(
  nextHop: string | undefined,
  linkLocal: string | undefined,
  dev: string | undefined,
): InstallableNextHop | undefined {
  const usableGlobal =
    nextHop !== undefined && nextHop !== '::' && !isLinkLocal(nextHop) && !nextHop.startsWith('::ffff:');
  if (usableGlobal) return { via: nextHop };
  const ll = linkLocal ?? (nextHop && isLinkLocal(nextHop) ? nextHop : undefined);
  if (ll && dev) return { via: ll, dev };
  return undefined;
}
