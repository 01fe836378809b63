// In-memory IPAM and dataplane for handler unit tests.
import { ConflictError, ExhaustedError, formatIp, parseIp, type IpAddr } from '../../../../model/index.js';
import type {
  AttachmentRef,
  Dataplane,
  HostVeth,
  IpamAssignRequest,
  IpamPort,
  VethOwner,
  VethPlan,
  VethResult,
  VethSpec,
} from '../../../../felix/cni/ports.js';

const key = (a: { containerId: string; ifname: string }) => `${a.containerId}/${a.ifname}`;

export class FakeIpam implements IpamPort {
  readonly held = new Map<string, IpAddr[]>();
  statusError: Error | undefined;
  /** When set, assign waits for it before doing anything (IPAM still talking to its datastore). */
  gate: Promise<void> | undefined;
  constructor(private readonly free: string[]) {}

  async assign(req: IpamAssignRequest): Promise<IpAddr[]> {
    if (this.gate) await this.gate;
    const k = key(req.attachment);
    const existing = this.held.get(k);
    if (existing) return existing;
    const inUse = new Set([...this.held.values()].flat().map(formatIp));
    const fixed = req.requestedIps.length
      ? req.requestedIps.map(formatIp)
      : req.podAnnotations['tern.network/ip-addrs']
        ? (JSON.parse(req.podAnnotations['tern.network/ip-addrs']) as string[])
        : undefined;
    let ips: string[];
    if (fixed) {
      const taken = fixed.find((ip) => inUse.has(ip));
      if (taken) throw new ConflictError(`${taken} is already allocated`);
      ips = fixed;
    } else {
      const next = this.free.find((ip) => !inUse.has(ip));
      if (!next) throw new ExhaustedError('pool exhausted');
      ips = [next];
    }
    const addrs = ips.map((ip) => parseIp(ip));
    this.held.set(k, addrs);
    return addrs;
  }
  async release(a: AttachmentRef): Promise<IpAddr[]> {
    const ips = this.held.get(key(a)) ?? [];
    this.held.delete(key(a));
    return ips;
  }
  async addressesOf(a: AttachmentRef): Promise<IpAddr[]> {
    return this.held.get(key(a)) ?? [];
  }
  async releaseUnless(keep: (a: { containerId: string; ifname: string }) => boolean): Promise<number> {
    let n = 0;
    for (const k of [...this.held.keys()]) {
      const [containerId, ifname] = k.split('/') as [string, string];
      if (!keep({ containerId, ifname })) {
        this.held.delete(k);
        n++;
      }
    }
    return n;
  }
  async status(): Promise<void> {
    if (this.statusError) throw this.statusError;
  }
}

export class FakeDataplane implements Dataplane {
  readonly veths = new Map<string, { owner?: VethOwner; spec: VethSpec; mac: string }>();
  failSetUp: Error | undefined;
  problems: string[] = [];
  setUps = 0;

  async detectMtu(): Promise<number> {
    return 1450;
  }
  /** The order things happened in: setUp starting, its addresses arriving (see FakeIpam.gate). */
  readonly events: string[] = [];
  async setUp(plan: VethPlan, addresses: Promise<IpAddr[]>): Promise<VethResult> {
    this.setUps++;
    this.events.push('setUp');
    if (this.failSetUp) throw this.failSetUp;
    const ips = await addresses;
    this.events.push('addresses');
    const spec: VethSpec = { ...plan, ips };
    const mac = '02:00:00:00:00:' + (this.setUps % 256).toString(16).padStart(2, '0');
    this.veths.set(spec.hostVeth, { owner: spec.owner, spec, mac });
    return {
      hostMac: 'ee:ee:ee:ee:ee:ee',
      containerMac: mac,
      mtu: spec.mtu,
      ipv6Gateway: 'fe80::ecee:eeff:feee:eeee',
    };
  }
  async tearDown(hostVeth: string, owner: VethOwner): Promise<boolean> {
    const v = this.veths.get(hostVeth);
    if (!v) return true;
    if (v.owner && (v.owner.containerId !== owner.containerId || v.owner.ifname !== owner.ifname))
      return false;
    this.veths.delete(hostVeth);
    return true;
  }
  async removeStale(hostVeth: string): Promise<void> {
    this.veths.delete(hostVeth);
  }
  async check(): Promise<string[]> {
    return this.problems;
  }
  async list(): Promise<HostVeth[]> {
    return [...this.veths.entries()].map(([name, v]) => (v.owner ? { name, owner: v.owner } : { name }));
  }
}
