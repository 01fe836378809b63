// The point-to-point veth data path (design: "The pod data path"), on Linux.
//
// No exec on the ADD path. Container side (pod-netlink.ts): over an rtnetlink socket created in the
// pod's netns, the pair is created there with the peer placed straight into the agent's netns, and
// addresses, routes and the gateway neighbours are configured. Host side: sysctls through /proc,
// owner alias, up and the /32 and /128 routes over the agent's own rtnetlink socket. DEL and GC
// never enter the pod's netns: deleting the host end removes the container end and every route
// through it.
import { randomBytes } from 'node:crypto';
import { formatIp, type IpAddr } from '../../../model/index.js';
import { HOST_VETH_PREFIX, POD_GATEWAY_IPV4, ROUTE_PROTOCOL } from '../../../model/routing.js';
import type { Dataplane, HostVeth, VethOwner, VethPlan, VethResult, VethSpec } from '../ports.js';
import { CommandError, run } from './exec.js';
import { loadAddon } from '../../../native/addon.js';
import { HostNetlink } from '../../../kernel/netlink/host-netlink.js';
import {
  agentNetnsFd,
  configureContainerEnd,
  createPair,
  openNetlinkIn,
  type CreatedPair,
} from '../../../kernel/netlink/pod-netlink.js';
import {
  defaultRouteInterface,
  ipv6Enabled,
  linkExists,
  listLinks,
  readSysctl,
  readText,
  writeSysctl,
} from '../../../kernel/sysfs.js';

/** Every host veth has this MAC: pods address their gateway at it (permanent neighbour entry). */
export const HOST_VETH_MAC = 'ee:ee:ee:ee:ee:ee';
/** EUI-64 link-local of HOST_VETH_MAC: the pods' IPv6 default gateway. */
export const HOST_VETH_LINK_LOCAL = 'fe80::ecee:eeff:feee:eeee';
export const DEFAULT_MTU = 1500;

const ALIAS_PREFIX = 'tern:';

/** `tern:<network>:<containerID>:<ifname>`; none of the three can contain ':' (CNI name rules). */
export const ownerAlias = (o: VethOwner): string =>
  `${ALIAS_PREFIX}${o.network}:${o.containerId}:${o.ifname}`;

export function parseOwnerAlias(alias: string | undefined): VethOwner | undefined {
  if (!alias?.startsWith(ALIAS_PREFIX)) return undefined;
  const parts = alias.slice(ALIAS_PREFIX.length).split(':');
  if (parts.length !== 3 || parts.some((p) => !p)) return undefined;
  return { network: parts[0]!, containerId: parts[1]!, ifname: parts[2]! };
}

export const sameOwner = (a: VethOwner, b: VethOwner): boolean =>
  a.network === b.network && a.containerId === b.containerId && a.ifname === b.ifname;

/** A random locally administered unicast MAC for the container end. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export class DataplaneError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataplaneError';
  }
}

export class LinuxDataplane implements Dataplane {
  private readonly netlink = new HostNetlink();

  /** Throws at once (naming the build step) when the native addon the data path needs is missing. */
  constructor() {
    loadAddon();
  }

  /** Closes the rtnetlink socket. */
  close(): void {
    this.netlink.close();
  }

  async detectMtu(): Promise<number> {
    const uplink = await defaultRouteInterface();
    const mtu = uplink ? Number(await readText(`/sys/class/net/${uplink}/mtu`)) : NaN;
    return Number.isInteger(mtu) && mtu >= 68 ? mtu : DEFAULT_MTU;
  }

  async setUp(plan: VethPlan, addresses: Promise<IpAddr[]>): Promise<VethResult> {
    const containerMac = randomMac();
    const podSide = (e: unknown) =>
      new DataplaneError(`setting up ${plan.ifname} in ${plan.netns}: ${describe(e)}`, { cause: e });
    const hostSide = (e: unknown) =>
      new DataplaneError(`configuring host veth ${plan.hostVeth}: ${describe(e)}`, { cause: e });
    let sock;
    try {
      sock = openNetlinkIn(plan.netns);
    } catch (e) {
      throw podSide(e);
    }
    try {
      let pair: CreatedPair;
      try {
        pair = await createPair(
          sock,
          { ifname: plan.ifname, mtu: plan.mtu, mac: containerMac },
          { name: plan.hostVeth, mac: HOST_VETH_MAC, mtu: plan.mtu, netnsFd: agentNetnsFd() },
        );
      } catch (e) {
        throw podSide(e);
      }
      try {
        hostSysctls(plan.hostVeth);
      } catch (e) {
        throw hostSide(e);
      }
      // IPAM has been working meanwhile; its refusal is the caller's error, passed on as it is.
      const ips = await addresses;
      // The two ends are configured over different sockets: both go out now, one wait for both.
      const [pod, host] = await Promise.allSettled([
        configureContainerEnd(sock, pair.index, {
          ifname: plan.ifname,
          ips,
          defaultRoute: plan.defaultRoute,
          gatewayMac: HOST_VETH_MAC,
          ipv6Gateway: HOST_VETH_LINK_LOCAL,
        }),
        this.attachHostEnd(plan, ips, containerMac, pair.hostIndex),
      ]);
      if (pod.status === 'rejected') throw podSide(pod.reason);
      if (host.status === 'rejected') throw hostSide(host.reason);
    } catch (e) {
      await this.deleteLink(plan.hostVeth);
      throw e;
    } finally {
      sock.socket.close();
    }
    return { hostMac: HOST_VETH_MAC, containerMac, mtu: plan.mtu, ipv6Gateway: HOST_VETH_LINK_LOCAL };
  }

  async tearDown(hostVeth: string, owner: VethOwner): Promise<boolean> {
    if (!(await linkExists(hostVeth))) return true;
    const current = parseOwnerAlias(await readText(`/sys/class/net/${hostVeth}/ifalias`));
    if (current && !sameOwner(current, owner)) return false;
    await this.deleteLink(hostVeth, true);
    return true;
  }

  async removeStale(hostVeth: string): Promise<void> {
    if (await linkExists(hostVeth)) await this.deleteLink(hostVeth, true);
  }

  async list(): Promise<HostVeth[]> {
    const names = (await listLinks()).filter((n) => n.startsWith(HOST_VETH_PREFIX) && n.length === 15);
    return Promise.all(
      names.map(async (name) => {
        const owner = parseOwnerAlias(await readText(`/sys/class/net/${name}/ifalias`));
        return owner ? { name, owner } : { name };
      }),
    );
  }

  async check(spec: VethSpec, containerMac?: string): Promise<string[]> {
    const [host, pod] = await Promise.all([
      this.checkHostSide(spec, containerMac),
      checkPodSide(spec, containerMac),
    ]);
    return [...pod, ...host];
  }

  private async attachHostEnd(plan: VethPlan, ips: IpAddr[], containerMac: string, index: number) {
    const { existingRoutes } = await this.netlink.attachPod(
      index,
      ownerAlias(plan.owner),
      ips.map((ip) => ({ ip, mac: containerMac })),
    );
    for (const ip of existingRoutes) await this.takeOverRoute(ip, plan.hostVeth, index);
  }

  /**
   * A host route to the pod's address already exists. Another pod's route (tern's pod protocol
   * through another live link) is a conflict and fails the ADD; anything else (a BGP route of a
   * stable address that moved here, a leftover blackhole) is replaced.
   */
  private async takeOverRoute(ip: IpAddr, hostVeth: string, index: number): Promise<void> {
    const other = (await this.netlink.routesTo(ip)).find(
      (r) => r.oif !== index && r.protocol === ROUTE_PROTOCOL.pod,
    );
    if (other) {
      throw new DataplaneError(
        `address ${formatIp(ip)} is already routed to ifindex ${other.oif} (another pod), not ${hostVeth}`,
      );
    }
    await this.netlink.replacePodRoute(ip, index);
  }

  private async deleteLink(name: string, mustSucceed = false): Promise<void> {
    try {
      await this.netlink.deleteLink(name);
    } catch (e) {
      if (mustSucceed) throw new DataplaneError(`deleting ${name}: ${describe(e)}`, { cause: e });
    }
  }

  private async checkHostSide(spec: VethSpec, containerMac?: string): Promise<string[]> {
    const h = spec.hostVeth;
    if (!(await linkExists(h))) return [`host veth ${h} is missing`];
    const problems: string[] = [];
    const sys = (f: string) => readText(`/sys/class/net/${h}/${f}`);
    const [mac, flags, mtu, alias] = await Promise.all([
      sys('address'),
      sys('flags'),
      sys('mtu'),
      sys('ifalias'),
    ]);
    if (mac !== HOST_VETH_MAC) problems.push(`host veth ${h} has MAC ${mac}, want ${HOST_VETH_MAC}`);
    if (!(Number(flags) & 1)) problems.push(`host veth ${h} is down`);
    if (Number(mtu) !== spec.mtu) problems.push(`host veth ${h} has MTU ${mtu}, want ${spec.mtu}`);
    const owner = parseOwnerAlias(alias);
    if (!owner || !sameOwner(owner, spec.owner))
      problems.push(`host veth ${h} belongs to ${alias || 'nobody'}`);
    const want: [string, string, string, string][] = [
      ['ipv4.conf', h, 'proxy_arp', '1'],
      ['ipv4.conf', h, 'forwarding', '1'],
      ['ipv4.neigh', h, 'proxy_delay', '0'],
    ];
    for (const [section, ifname, key, value] of want) {
      const got = await readSysctl(section, ifname, key);
      if (got !== value) problems.push(`net.${section}.${ifname}.${key} is ${got}, want ${value}`);
    }
    const index = await this.netlink.ifindex(h);
    const [routes, neighbours] =
      index === undefined
        ? [[], []]
        : await Promise.all([this.netlink.routesVia(index), this.netlink.neighboursOn(index)]);
    for (const ip of spec.ips) {
      const dst = formatIp(ip);
      if (!routes.some((r) => r.dst === dst && r.protocol === ROUTE_PROTOCOL.pod)) {
        problems.push(`host route ${dst} dev ${h} proto ${ROUTE_PROTOCOL.pod} is missing`);
      }
      // The permanent entry pod address → container MAC that ADD programs (no ARP wait toward the pod).
      const n = neighbours.find((x) => x.ip === dst);
      const want = containerMac?.toLowerCase();
      if (!n?.permanent || !n.mac || (want !== undefined && n.mac !== want)) {
        const found = n
          ? ` (found ${n.mac ?? 'no MAC'}${n.permanent ? ', permanent' : ', not permanent'})`
          : '';
        problems.push(
          `permanent neighbour ${dst} → ${want ?? 'the container MAC'} on ${h} is missing${found}`,
        );
      }
    }
    return problems;
  }
}

/**
 * The host end's sysctls, written while it is still down (the IPv6 ones must be in place before it
 * comes up): proxy ARP answering for the gateway, forwarding, and for IPv6 no RA, no DAD on its
 * link-local (the pods' gateway) and EUI-64, so that the link-local is HOST_VETH_LINK_LOCAL
 * whatever the node's default addr_gen_mode.
 */
function hostSysctls(h: string): void {
  const entries: [string, string, string][] = [
    ['ipv4.conf', 'proxy_arp', '1'],
    ['ipv4.conf', 'forwarding', '1'],
    ['ipv4.conf', 'route_localnet', '1'],
    ['ipv4.neigh', 'proxy_delay', '0'],
  ];
  if (ipv6Enabled()) {
    entries.push(
      ['ipv6.conf', 'accept_ra', '0'],
      ['ipv6.conf', 'accept_dad', '0'],
      ['ipv6.conf', 'proxy_ndp', '1'],
      ['ipv6.conf', 'addr_gen_mode', '0'],
    );
  }
  for (const [section, key, value] of entries) writeSysctl(section, h, key, value);
}

interface JsonRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
}

function parseJsonList<T>(text: string): T[] {
  const v: unknown = JSON.parse(text.trim() || '[]');
  return Array.isArray(v) ? (v as T[]) : [];
}

async function checkPodSide(spec: VethSpec, containerMac?: string): Promise<string[]> {
  const i = spec.ifname;
  const inPod = (args: string[]) => run('nsenter', [`--net=${spec.netns}`, 'ip', '-j', ...args]);
  const [link, addr, r4, r6, neigh] = await Promise.all([
    inPod(['-d', 'link', 'show', 'dev', i]),
    inPod(['addr', 'show', 'dev', i]),
    inPod(['-4', 'route', 'show', 'dev', i]),
    inPod(['-6', 'route', 'show', 'dev', i]),
    inPod(['neigh', 'show', 'dev', i]),
  ]);
  if (link.code !== 0) return [`interface ${i} not found in ${spec.netns}: ${link.stderr.trim()}`];
  const problems: string[] = [];
  const l = parseJsonList<{
    address?: string;
    mtu?: number;
    flags?: string[];
    linkinfo?: { info_kind?: string };
  }>(link.stdout)[0];
  if (l?.linkinfo?.info_kind !== 'veth') problems.push(`${i} is not a veth`);
  if (containerMac && l?.address !== containerMac.toLowerCase()) {
    problems.push(`${i} has MAC ${l?.address}, want ${containerMac}`);
  }
  if (l?.mtu !== spec.mtu) problems.push(`${i} has MTU ${l?.mtu}, want ${spec.mtu}`);
  if (!l?.flags?.includes('UP')) problems.push(`${i} is down`);
  const addrs =
    parseJsonList<{ addr_info?: { local: string; prefixlen: number }[] }>(addr.stdout)[0]?.addr_info ?? [];
  for (const ip of spec.ips) {
    const want = ip.family === 4 ? 32 : 128;
    if (!addrs.some((a) => a.local === formatIp(ip) && a.prefixlen === want)) {
      problems.push(`${i} lacks address ${formatIp(ip)}/${want}`);
    }
  }
  const routes = [...parseJsonList<JsonRoute>(r4.stdout), ...parseJsonList<JsonRoute>(r6.stdout)];
  const neighbours = parseJsonList<{ dst: string; lladdr?: string; state?: string[] }>(neigh.stdout);
  const gateways: [number, string][] = [];
  if (spec.ips.some((ip) => ip.family === 4)) {
    gateways.push([4, POD_GATEWAY_IPV4]);
    if (spec.defaultRoute && !routes.some((r) => r.dst === POD_GATEWAY_IPV4 && r.scope === 'link')) {
      problems.push(`route ${POD_GATEWAY_IPV4} dev ${i} scope link is missing`);
    }
  }
  if (spec.ips.some((ip) => ip.family === 6)) gateways.push([6, HOST_VETH_LINK_LOCAL]);
  for (const [family, gw] of gateways) {
    if (spec.defaultRoute && !routes.some((r) => r.dst === 'default' && r.gateway === gw)) {
      problems.push(`IPv${family} default route via ${gw} dev ${i} is missing`);
    }
    const n = neighbours.find((x) => x.dst === gw);
    if (n?.lladdr !== HOST_VETH_MAC || !n.state?.includes('PERMANENT')) {
      problems.push(`permanent neighbour ${gw} → ${HOST_VETH_MAC} on ${i} is missing`);
    }
  }
  return problems;
}

function describe(e: unknown): string {
  if (e instanceof CommandError) return e.result.stderr.trim() || e.message;
  return e instanceof Error ? e.message : String(e);
}
