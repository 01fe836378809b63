// Host-side link and route changes over rtnetlink, in process: a netlink round trip costs a
// fraction of a millisecond where an exec of ip(8) costs milliseconds. The socket belongs to the
// agent's netns (the host's), where every host veth lives.
import { FlagsNew, createRtNetlink, type RtNetlinkSocket, type rt } from 'netlink';
import { formatIp, type IpAddr } from '../../model/index.js';
import { ROUTE_PROTOCOL } from '../../model/routing.js';
import { readText } from './sysfs.js';

const MAIN_TABLE = 254;
const AF_INET = 2;
const AF_INET6 = 10;

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

  /** Labels the link with its owner and brings it up. */
  async upWithAlias(index: number, alias: string): Promise<void> {
    await this.one((rt) =>
      rt.setLink({ index, change: { up: true }, flags: { up: true } }, { ifalias: alias }),
    );
  }

  /** Deletes a link by name; a link that is already gone is not an error. */
  async deleteLink(name: string): Promise<void> {
    const index = await this.ifindex(name);
    if (index === undefined) return;
    try {
      await this.one((rt) => rt.delLink({ index }));
    } catch (e) {
      if (netlinkErrno(e) !== 'ENODEV') throw e;
    }
  }

  /** `<ip>/32 dev <index> proto pod scope link` (/128 for IPv6); `replace` overwrites an existing route. */
  async addPodRoute(ip: IpAddr, index: number, replace = false): Promise<void> {
    const v4 = ip.family === 4;
    await this.one((rt) =>
      rt.newRoute(
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
      ),
    );
  }

  /**
   * A permanent neighbour entry `ip → mac` on the host veth, as Calico programs for its
   * workloads: traffic to the pod never waits on ARP / neighbour discovery (a stable address
   * moving here is announced before the pod answers ARP, and a lost first ARP costs 1 s).
   */
  async addNeighbour(ip: IpAddr, index: number, mac: string): Promise<void> {
    await this.one((rt) =>
      rt.newNeighbor(
        { family: ip.family === 4 ? AF_INET : AF_INET6, ifindex: index, state: { permanent: true } },
        { dst: addressBytes(ip), lladdr: Buffer.from(mac.split(':').map((h) => parseInt(h, 16))) },
        { flags: FlagsNew.CREATE | FlagsNew.REPLACE },
      ),
    );
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

function addressBytes(ip: IpAddr): Buffer {
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
