// Host-side link and route changes over rtnetlink, in process: a netlink round trip costs a
// fraction of a millisecond where an exec of ip(8) costs milliseconds. The socket belongs to the
// agent's netns (the host's), where every host veth lives.
import { FlagsNew, createRtNetlink, type RtNetlinkSocket, type rt } from 'netlink';
import { formatIp, type IpAddr } from '../../model/index.js';
import { ROUTE_PROTOCOL } from '../../model/routing.js';
import { netlinkRequest } from '../../native/netlink.js';
import { readText } from '../sysfs.js';

export const MAIN_TABLE = 254;
export const AF_INET = 2;
export const AF_INET6 = 10;

/** The errno name (EEXIST, ENODEV, …) of a rejected netlink request, if that is what `e` is. */
export function netlinkErrno(e: unknown): string | undefined {
  return e instanceof Error ? /\b(E[A-Z0-9]+)\b/.exec(e.message)?.[1] : undefined;
}

export interface HostRoute {
  dst: string;
  oif: number | undefined;
  protocol: number | undefined;
}

export interface HostNeighbour {
  ip: string;
  /** Lower-case, colon-separated; absent for an entry without a link-layer address. */
  mac: string | undefined;
  permanent: boolean;
}

export class HostNetlink {
  private socket: RtNetlinkSocket | undefined;
  private last: Promise<unknown> = Promise.resolve();

  /**
   * Runs one request at a time on the socket. The kernel sends a dump in several datagrams as the
   * reader drains them, and the ACK of a request sent meanwhile lands between them; the package
   * then cuts the dump short ("Multipart message not terminated properly"). Each request takes a
   * fraction of a millisecond, so concurrent CNI operations barely wait.
   */
  private one<T>(request: (rt: RtNetlinkSocket) => Promise<T>): Promise<T> {
    const run = this.last.then(() => {
      this.socket ??= createRtNetlink();
      return request(this.socket);
    });
    this.last = run.catch(() => undefined);
    return run;
  }

  async ifindex(name: string): Promise<number | undefined> {
    const text = await readText(`/sys/class/net/${name}/ifindex`);
    const n = Number(text);
    return text && Number.isInteger(n) ? n : undefined;
  }

  /**
   * Wires the host end of a pod: labels it with its owner, brings it up, and adds for each address
   * the permanent neighbour entry and the /32 (/128) route. The requests go out back to back in one
   * turn (one wait instead of one per request); a route that already exists is reported rather than
   * failed, for the caller to decide (takeOverRoute). Any other refusal throws.
   */
  async attachPod(
    index: number,
    alias: string,
    entries: readonly { ip: IpAddr; mac: string }[],
  ): Promise<{ existingRoutes: IpAddr[] }> {
    const results = await this.one((rt) =>
      Promise.allSettled([
        rt.setLink({ index, change: { up: true }, flags: { up: true } }, { ifalias: alias }),
        ...entries.flatMap(({ ip, mac }) => [
          neighbourRequest(rt, ip, index, mac),
          podRouteRequest(rt, ip, index),
        ]),
      ]),
    );
    const existingRoutes: IpAddr[] = [];
    results.forEach((r, k) => {
      if (r.status === 'fulfilled') return;
      // Results: [up, neighbour 0, route 0, neighbour 1, route 1, …]
      const isRoute = k > 0 && k % 2 === 0;
      if (isRoute && netlinkErrno(r.reason) === 'EEXIST') existingRoutes.push(entries[k / 2 - 1]!.ip);
      else throw r.reason;
    });
    return { existingRoutes };
  }

  /** Deletes a link by name; a link that is already gone is not an error. */
  async deleteLink(name: string): Promise<void> {
    const index = await this.ifindex(name);
    if (index === undefined) return;
    try {
      // Not on the shared socket: the kernel deletes a veth inside the request (~25-30 ms of RCU
      // waits), which must not stall the agent's thread nor hold up other requests.
      await netlinkRequest(delLinkMessage(index));
    } catch (e) {
      if (netlinkErrno(e) !== 'ENODEV') throw e;
    }
  }

  /** `<ip>/32 dev <index> proto pod scope link` (/128 for IPv6), replacing any route to it. */
  async replacePodRoute(ip: IpAddr, index: number): Promise<void> {
    await this.one((rt) => podRouteRequest(rt, ip, index, true));
  }

  /** The neighbour entries on link `index` (both families). */
  async neighboursOn(index: number): Promise<HostNeighbour[]> {
    const all = await this.one((rt) => rt.getNeighbors());
    const out: HostNeighbour[] = [];
    for (const n of all) {
      const dst = n.attrs.dst;
      if (n.data.ifindex !== index || !dst || (dst.length !== 4 && dst.length !== 16)) continue;
      out.push({
        ip: formatIp(bytesToAddress(dst.length === 4 ? 4 : 6, dst)),
        mac: n.attrs.lladdr
          ? [...n.attrs.lladdr].map((b) => b.toString(16).padStart(2, '0')).join(':')
          : undefined,
        permanent: n.data.state?.permanent === true,
      });
    }
    return out;
  }

  /** Main-table host routes (/32, /128) to `ip`, whatever their protocol and device. */
  async routesTo(ip: IpAddr): Promise<HostRoute[]> {
    const want = formatIp(ip);
    return (await this.hostRoutes(ip.family)).filter((r) => r.dst === want);
  }

  /** Main-table host routes (/32, /128) through link `index`. */
  async routesVia(index: number): Promise<HostRoute[]> {
    const all = [...(await this.hostRoutes(4)), ...(await this.hostRoutes(6))];
    return all.filter((r) => r.oif === index);
  }

  close(): void {
    this.socket?.socket.close();
    this.socket = undefined;
  }

  private async hostRoutes(family: 4 | 6): Promise<HostRoute[]> {
    const full = family === 4 ? 32 : 128;
    const routes = await this.one((rt) => rt.getRoutes({ family: family === 4 ? AF_INET : AF_INET6 }));
    return routes
      .filter((r) => r.data.dstLen === full && (r.attrs.table ?? r.data.table) === MAIN_TABLE && r.attrs.dst)
      .map((r) => ({
        dst: formatIp(bytesToAddress(family, r.attrs.dst!)),
        oif: r.attrs.oif,
        protocol: typeof r.data.protocol === 'number' ? r.data.protocol : undefined,
      }));
  }
}

/** `aa:bb:cc:dd:ee:ff` as 6 bytes. */
export const macBytes = (mac: string): Buffer => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));

const RTM_DELLINK = 17;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;

/** RTM_DELLINK for link `index`: nlmsghdr + ifinfomsg. */
export function delLinkMessage(index: number): Buffer {
  const m = Buffer.alloc(32);
  m.writeUInt32LE(32, 0);
  m.writeUInt16LE(RTM_DELLINK, 4);
  m.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
  m.writeUInt32LE(1, 8); // sequence number: the socket carries this one request
  m.writeInt32LE(index, 20); // ifinfomsg: family, pad, type (zero), then ifi_index
  return m;
}

/** `<ip>/32 dev <index> proto pod scope link` (/128 for IPv6); `replace` overwrites an existing route. */
function podRouteRequest(rt: RtNetlinkSocket, ip: IpAddr, index: number, replace = false) {
  const v4 = ip.family === 4;
  return rt.newRoute(
    {
      family: v4 ? AF_INET : AF_INET6,
      dstLen: v4 ? 32 : 128,
      table: MAIN_TABLE,
      // tern's protocol number is not one of the names the package knows.
      protocol: ROUTE_PROTOCOL.pod as number as rt.RouteProtocol,
      scope: v4 ? 'LINK' : 'UNIVERSE',
      type: 'UNICAST',
    },
    { dst: addressBytes(ip), oif: index },
    { flags: FlagsNew.CREATE | (replace ? FlagsNew.REPLACE : FlagsNew.EXCL) },
  );
}

/**
 * A permanent neighbour entry `ip → mac` on the host veth, as Calico programs for its workloads:
 * traffic to the pod never waits on ARP / neighbour discovery (a stable address moving here is
 * announced before the pod answers ARP, and a lost first ARP costs 1 s).
 */
function neighbourRequest(rt: RtNetlinkSocket, ip: IpAddr, index: number, mac: string) {
  return rt.newNeighbor(
    { family: ip.family === 4 ? AF_INET : AF_INET6, ifindex: index, state: { permanent: true } },
    { dst: addressBytes(ip), lladdr: macBytes(mac) },
    { flags: FlagsNew.CREATE | FlagsNew.REPLACE },
  );
}

export function addressBytes(ip: IpAddr): Buffer {
  const len = ip.family === 4 ? 4 : 16;
  const b = Buffer.alloc(len);
  let v = ip.value;
  for (let i = len - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

function bytesToAddress(family: 4 | 6, b: Buffer): IpAddr {
  let v = 0n;
  for (const byte of b) v = (v << 8n) | BigInt(byte);
  return { family, value: v };
}
