// CNI results: one internal shape, encoded in whichever version the request asked for
// (0.3.0/0.3.1/0.4.0 carry ips[].version; 1.1.0 adds interface mtu/socketPath/pciID and route
// mtu/advmss/priority/table/scope), and decoding of a previous plugin's result when chained.
import { invalidConfig } from './errors.js';
import type { CniVersion, DnsConf } from './request.js';
import { versionAtLeast } from './request.js';

export interface ResultInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** Set for interfaces inside a container: CNI_NETNS verbatim. Absent for the host veth. */
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface ResultIp {
  /** CIDR notation (libcni parses it with ParseCIDR). */
  address: string;
  gateway?: string;
  /** Index into interfaces; always the container interface. */
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniResult {
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: ResultRoute[];
  dns?: DnsConf;
}

/** Appends our result to a previous plugin's (chaining: pass it through, never drop it). */
export function mergeResults(prev: CniResult | undefined, ours: CniResult): CniResult {
  if (!prev) return ours;
  const offset = prev.interfaces.length;
  const dns = ours.dns ?? prev.dns;
  return {
    interfaces: [...prev.interfaces, ...ours.interfaces],
    ips: [
      ...prev.ips,
      ...ours.ips.map((ip) =>
        ip.interface === undefined ? ip : { ...ip, interface: ip.interface + offset },
      ),
    ],
    routes: [...prev.routes, ...ours.routes],
    ...(dns ? { dns } : {}),
  };
}

/** Encodes a result as the JSON document the runtime reads, in the request's version. */
export function encodeResult(r: CniResult, cniVersion: CniVersion): string {
  const v11 = versionAtLeast(cniVersion, '1.1.0');
  const legacy = !versionAtLeast(cniVersion, '1.0.0');
  const interfaces = r.interfaces.map((i) => {
    const o: Record<string, unknown> = { name: i.name };
    if (i.mac) o.mac = i.mac;
    if (v11 && i.mtu) o.mtu = i.mtu;
    if (i.sandbox) o.sandbox = i.sandbox;
    if (v11 && i.socketPath) o.socketPath = i.socketPath;
    if (v11 && i.pciID) o.pciID = i.pciID;
    return o;
  });
  const ips = r.ips.map((ip) => {
    const o: Record<string, unknown> = {};
    if (legacy) o.version = ip.address.includes(':') ? '6' : '4';
    o.address = ip.address;
    if (ip.gateway) o.gateway = ip.gateway;
    if (ip.interface !== undefined && ip.interface < r.interfaces.length) o.interface = ip.interface;
    return o;
  });
  const routes = r.routes.map((rt) => {
    const o: Record<string, unknown> = { dst: rt.dst };
    if (rt.gw) o.gw = rt.gw;
    if (v11)
      for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const)
        if (rt[k] !== undefined) o[k] = rt[k];
    return o;
  });
  const body: Record<string, unknown> = { cniVersion, interfaces, ips, routes };
  if (r.dns && Object.keys(r.dns).length) body.dns = r.dns;
  return JSON.stringify(body) + '\n';
}

/** Decodes a prevResult of any supported version. Tolerant of unknown keys; strict on the ones it uses. */
export function parsePrevResult(v: unknown): CniResult {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidConfig('prevResult must be an object');
  const o = v as Record<string, unknown>;
  const list = (key: string): Record<string, unknown>[] => {
    const l = o[key];
    if (l === undefined || l === null) return [];
    if (!Array.isArray(l) || !l.every((x) => typeof x === 'object' && x !== null)) {
      throw invalidConfig(`prevResult.${key} must be a list of objects`);
    }
    return l as Record<string, unknown>[];
  };
  const str = (x: unknown, field: string): string => {
    if (typeof x !== 'string') throw invalidConfig(`prevResult.${field} must be a string`);
    return x;
  };
  const optStr = (x: unknown) => (typeof x === 'string' && x ? x : undefined);
  const optNum = (x: unknown) => (typeof x === 'number' ? x : undefined);
  const interfaces = list('interfaces').map((i, n) =>
    compact<ResultInterface>({
      name: str(i.name, `interfaces[${n}].name`),
      mac: optStr(i.mac),
      mtu: optNum(i.mtu),
      sandbox: optStr(i.sandbox),
      socketPath: optStr(i.socketPath),
      pciID: optStr(i.pciID),
    }),
  );
  const ips = list('ips').map((ip, n) =>
    compact<ResultIp>({
      address: str(ip.address, `ips[${n}].address`),
      gateway: optStr(ip.gateway),
      interface: optNum(ip.interface),
    }),
  );
  const routes = list('routes').map((rt, n) =>
    compact<ResultRoute>({
      dst: str(rt.dst, `routes[${n}].dst`),
      gw: optStr(rt.gw),
      mtu: optNum(rt.mtu),
      advmss: optNum(rt.advmss),
      priority: optNum(rt.priority),
      table: optNum(rt.table),
      scope: optNum(rt.scope),
    }),
  );
  const r: CniResult = { interfaces, ips, routes };
  if (typeof o.dns === 'object' && o.dns !== null && Object.keys(o.dns).length) r.dns = o.dns as DnsConf;
  return r;
}

function compact<T extends object>(o: { [K in keyof T]: T[K] | undefined }): T {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(o)) if (val !== undefined) out[k] = val;
  return out as T;
}
