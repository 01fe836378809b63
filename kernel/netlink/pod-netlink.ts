// The container side of the veth, over an rtnetlink socket that lives in the pod's netns.
//
// A socket belongs to the netns its creating thread was in, for its whole life. The agent's main
// thread steps into the pod's netns just long enough to create one (native/netns.ts inNetns, synchronous)
// and is back before any other JavaScript runs; from then on it is an ordinary socket of this
// process. So the container side costs a handful of netlink round trips instead of an exec of
// nsenter + ip per pod (the exec alone was ~5 ms of every ADD, more under load).
import { closeSync, openSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import { FlagsNew, createRtNetlink, type RtNetlinkSocket, type rt } from 'netlink';
import { inNetns } from '../../native/netns.js';
import { formatIp, parseIp, type IpAddr } from '../../model/index.js';
import { POD_GATEWAY_IPV4 } from '../../model/routing.js';
import { AF_INET, AF_INET6, MAIN_TABLE, addressBytes, macBytes, netlinkErrno } from './host-netlink.js';

// include/uapi/linux/if_link.h, veth.h
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFINFOMSG_BYTES = 16;

/** The host end of the pair: its name, MAC and MTU, and the netns (an open fd) it is created in. */
export interface PeerSpec {
  name: string;
  mac: string;
  mtu: number;
  netnsFd: number;
}

/** The container end as it is created: name, MTU and MAC. */
export interface ContainerEnd {
  /** CNI_IFNAME: the name it is born with inside the pod. */
  ifname: string;
  mtu: number;
  mac: string;
}

/** What the container end is configured with once the addresses are known. */
export interface ContainerConfig {
  ifname: string;
  ips: IpAddr[];
  /** The pod's default routes go through this interface (false for a Multus secondary). */
  defaultRoute: boolean;
  /** The pods' gateway MAC (the host end's) and IPv6 link-local gateway. */
  gatewayMac: string;
  ipv6Gateway: string;
}

/** The pair just created: the container end's ifindex (pod netns) and the host end's. */
export interface CreatedPair {
  index: number;
  hostIndex: number;
}

let agentFd: number | undefined;

/**
 * The agent's own netns (the host's), held open for the process's life: where the thread returns
 * after creating a pod socket, and where host ends are created.
 */
export function agentNetnsFd(): number {
  agentFd ??= openSync('/proc/thread-self/ns/net', 'r');
  return agentFd;
}

/** An rtnetlink socket in the netns at `netnsPath` (a bind-mounted netns file or /proc/<pid>/ns/net). */
export function openNetlinkIn(netnsPath: string): RtNetlinkSocket {
  const fd = openSync(netnsPath, 'r');
  try {
    return inNetns(fd, agentNetnsFd(), () => createRtNetlink());
  } finally {
    closeSync(fd);
  }
}

/** One netlink attribute: 4-byte header, payload, padding to 4. */
function nlattr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};

/**
 * IFLA_LINKINFO for a veth whose peer is created in another netns with its final name, MAC and MTU
 * (the package has no encoder for VETH_INFO_PEER: an ifinfomsg followed by link attributes).
 */
export function vethLinkInfo(peer: PeerSpec): Buffer {
  const peerMsg = Buffer.concat([
    Buffer.alloc(IFINFOMSG_BYTES),
    nlattr(IFLA_IFNAME, Buffer.from(`${peer.name}\0`)),
    nlattr(IFLA_ADDRESS, macBytes(peer.mac)),
    nlattr(IFLA_MTU, u32(peer.mtu)),
    nlattr(IFLA_NET_NS_FD, u32(peer.netnsFd)),
  ]);
  return Buffer.concat([
    nlattr(IFLA_INFO_KIND, Buffer.from('veth\0')),
    nlattr(IFLA_INFO_DATA, nlattr(VETH_INFO_PEER, peerMsg)),
  ]);
}

export class ContainerSideError extends Error {
  constructor(
    message: string,
    readonly errno: string | undefined,
  ) {
    super(message);
    this.name = 'ContainerSideError';
  }
}

const errnoText = (() => {
  const byName = new Map([...getSystemErrorMap().values()].map(([name, text]) => [name, text]));
  return (code: string | undefined) => (code ? `${code}: ${byName.get(code) ?? 'error'}` : 'error');
})();

/** Runs one step; a rejection becomes a ContainerSideError saying which step and why. */
async function step<T>(what: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (e) {
    const code = netlinkErrno(e);
    throw new ContainerSideError(`${what}: ${code ? errnoText(code) : (e as Error).message}`, code);
  }
}

/**
 * Creates the pair from inside the pod: the container end named `end.ifname`, up; the host end
 * straight in `peer.netnsFd`'s netns, down. The caller deletes the host end if anything after this
 * fails (which removes the container end too).
 */
export async function createPair(
  sock: RtNetlinkSocket,
  end: ContainerEnd,
  peer: PeerSpec,
): Promise<CreatedPair> {
  const i = end.ifname;
  // The lookup goes out right behind the creation (the kernel handles both in order): one wait.
  const created = step('creating the veth pair', async () => {
    try {
      await sock.newLink(
        { flags: { up: true }, change: { up: true } },
        { ifname: i, mtu: end.mtu, address: macBytes(end.mac), linkinfo: vethLinkInfo(peer) },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      );
    } catch (e) {
      if (netlinkErrno(e) === 'EEXIST') {
        throw new ContainerSideError(
          `an interface named ${i} already exists in the pod (or ${peer.name} in the agent's netns)`,
          'EEXIST',
        );
      }
      throw e;
    }
  });
  const lookup = step(`looking up ${i}`, () => sock.getLink({}, { ifname: i }));
  const [creation, found] = await Promise.allSettled([created, lookup]);
  if (creation.status === 'rejected') throw creation.reason;
  if (found.status === 'rejected') throw found.reason;
  const [link] = found.value;
  const index = link?.data.index;
  // IFLA_LINK of a veth end is its peer's ifindex (in the peer's netns): the host end's.
  const hostIndex = link?.attrs.link?.readUInt32LE(0);
  if (!index || !hostIndex)
    throw new ContainerSideError(`${i} did not appear after it was created`, undefined);
  return { index, hostIndex };
}

/**
 * Configures the container end `index`: its /32 and /128, permanent neighbours for the gateways,
 * and (primary attachment) the default routes.
 */
export async function configureContainerEnd(
  sock: RtNetlinkSocket,
  index: number,
  spec: ContainerConfig,
): Promise<void> {
  const i = spec.ifname;
  // Everything is sent back to back and awaited together: the kernel handles each request inside the
  // send, in order, so the default route still finds its gateway's route already there.
  const steps: Promise<unknown>[] = [];
  for (const ip of spec.ips) {
    const v6 = ip.family === 6 ? { flags: { nodad: true as const } } : {};
    const bytes = addressBytes(ip);
    steps.push(
      step(`adding address ${formatIp(ip)} to ${i}`, () =>
        sock.newAddress(
          { family: family(ip), prefixlen: ip.family === 4 ? 32 : 128, index, ...v6 },
          { address: bytes, local: bytes, ...v6 },
          { flags: FlagsNew.CREATE | FlagsNew.EXCL },
        ),
      ),
    );
  }
  const gateways: IpAddr[] = [
    ...(spec.ips.some((ip) => ip.family === 4) ? [parseIp(POD_GATEWAY_IPV4)] : []),
    ...(spec.ips.some((ip) => ip.family === 6) ? [parseIp(spec.ipv6Gateway)] : []),
  ];
  for (const gw of gateways) {
    steps.push(
      step(`adding neighbour ${formatIp(gw)} on ${i}`, () =>
        sock.newNeighbor(
          { family: family(gw), ifindex: index, state: { permanent: true } },
          { dst: addressBytes(gw), lladdr: macBytes(spec.gatewayMac) },
          { flags: FlagsNew.CREATE | FlagsNew.REPLACE },
        ),
      ),
    );
    if (!spec.defaultRoute) continue;
    if (gw.family === 4) {
      // The IPv4 gateway is on the link (a /32 scope link route); the IPv6 one is link-local.
      steps.push(
        addRoute(
          sock,
          `adding the route ${formatIp(gw)} dev ${i}`,
          { family: AF_INET, dstLen: 32, scope: 'LINK' },
          { dst: addressBytes(gw), oif: index },
        ),
      );
    }
    steps.push(
      addRoute(
        sock,
        `adding the default route via ${formatIp(gw)} dev ${i}`,
        { family: family(gw), dstLen: 0, scope: 'UNIVERSE' },
        { gateway: addressBytes(gw), oif: index },
      ),
    );
  }
  const failed = (await Promise.allSettled(steps)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

const family = (ip: IpAddr) => (ip.family === 4 ? AF_INET : AF_INET6);
function addRoute(
  sock: RtNetlinkSocket,
  what: string,
  route: Pick<rt.Route, 'family' | 'dstLen' | 'scope'>,
  attrs: rt.RouteAttrs,
): Promise<unknown> {
  return step(what, () =>
    sock.newRoute({ ...route, table: MAIN_TABLE, protocol: 'BOOT', type: 'UNICAST' }, attrs, {
      flags: FlagsNew.CREATE | FlagsNew.EXCL,
    }),
  );
}
