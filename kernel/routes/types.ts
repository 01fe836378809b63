// What callers ask for (routes per class) and its normalized form keyed like the kernel keys routes.
import { ValidationError } from '../../model/errors.js';
import { bitsOf, parseCidr, parseIp, type IpAddr } from '../../model/cidr.js';
import { ROUTE_PROTOCOL, type RouteClass } from '../../model/routing.js';
import type { Family } from '../netlink/codec.js';

export type { RouteClass };
export const ROUTE_CLASSES: readonly RouteClass[] = ['pod', 'block', 'bgp'];

/** A /32 or /128 to a local pod through its host-side veth (scope link). */
export interface PodRoute {
  dst: string;
  dev: string;
}
/** A blackhole covering an IPAM block this node owns. */
export interface BlockRoute {
  dst: string;
}
/** A route learned over BGP, via its next hop (with `dev` for a link-local IPv6 next hop). */
export interface BgpRoute {
  dst: string;
  via: string;
  dev?: string;
}
export interface RouteByClass {
  pod: PodRoute;
  block: BlockRoute;
  bgp: BgpRoute;
}
export type AnyRoute = RouteByClass[RouteClass];

/** A desired route, validated, with its kernel key. */
export interface DesiredRoute {
  cls: RouteClass;
  key: string;
  family: Family;
  dst: Buffer;
  dstLen: number;
  /** Canonical text of the destination, for logs and reports. */
  dstText: string;
  /** The metric the kernel gives a route added without one: 0 for IPv4, 1024 for IPv6. */
  priority: number;
  dev: string | undefined;
  gateway: Buffer | undefined;
}

/** Precedence when two classes want the same destination: a local pod beats a block beats BGP. */
export const CLASS_PRECEDENCE: readonly RouteClass[] = ['pod', 'block', 'bgp'];

export const defaultPriority = (family: Family): number => (family === 4 ? 0 : 1024);

export function addressBytes(ip: IpAddr): Buffer {
  const len = ip.family === 4 ? 4 : 16;
  const buf = Buffer.alloc(len);
  let v = ip.value;
  for (let i = len - 1; i >= 0; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return buf;
}

/** The identity of a route inside one table: family, destination and metric (tos is always 0 for us). */
export function routeKey(family: Family, dst: Buffer, dstLen: number, priority: number): string {
  return `${family}/${dst.toString('hex')}/${dstLen}/${priority}`;
}

const classFromProtocol = new Map<number, RouteClass>(
  (Object.entries(ROUTE_PROTOCOL) as [RouteClass, number][]).map(([cls, proto]) => [proto, cls]),
);
/** The class a kernel route belongs to by its protocol, or undefined when it is not ours. */
export const classOfProtocol = (protocol: number): RouteClass | undefined => classFromProtocol.get(protocol);

const IFNAME = /^[^\s/:]{1,15}$/;

function field(cls: RouteClass, name: string): string {
  return `routes.${cls}.${name}`;
}

function requireString(input: Record<string, unknown>, cls: RouteClass, name: string): string {
  const v = input[name];
  if (typeof v !== 'string' || v.length === 0)
    throw new ValidationError(field(cls, name), 'must be a string');
  return v;
}

/**
 * Dotted-quad "a.b.c.d/len" with host bits zero, straight to bytes: the common case, about 50x
 * faster than the general parser (which handles everything else and words the errors).
 */
function fastIpv4Cidr(text: string): { dst: Buffer; len: number } | undefined {
  const bytes = Buffer.allocUnsafe(4); // from the shared pool; all four bytes are written below
  let octet = 0;
  let digits = 0;
  let part = 0;
  let i = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else if ((c === 46 && part < 3) || (c === 47 && part === 3)) {
      if (digits === 0) return undefined;
      bytes[part++] = octet;
      octet = 0;
      digits = 0;
      if (c === 47) break;
    } else return undefined;
  }
  if (part !== 4 || i === text.length) return undefined;
  const lenText = text.slice(i + 1);
  if (!/^\d{1,2}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 32) return undefined;
  const value = bytes.readUInt32BE(0);
  if (len < 32 && (value & (0xffffffff >>> len)) !== 0) return undefined;
  return { dst: bytes, len };
}

/** Validates one route of `cls` from untrusted input and normalizes it. Throws ValidationError. */
export function normalizeRoute(cls: RouteClass, input: unknown): DesiredRoute {
  if (typeof input !== 'object' || input === null)
    throw new ValidationError(field(cls, ''), 'must be an object');
  const obj = input as Record<string, unknown>;
  const dstText = requireString(obj, cls, 'dst');
  const fast = fastIpv4Cidr(dstText);
  const cidr = fast ? { family: 4 as const, prefixLength: fast.len } : parseCidr(dstText, field(cls, 'dst'));
  const family = cidr.family;
  if (cls === 'pod' && cidr.prefixLength !== bitsOf(family)) {
    throw new ValidationError(field(cls, 'dst'), `a pod route is a host route (/${bitsOf(family)})`);
  }
  let dev: string | undefined;
  let gateway: Buffer | undefined;
  if (cls === 'pod' || (cls === 'bgp' && obj.dev !== undefined)) {
    dev = requireString(obj, cls, 'dev');
    if (!IFNAME.test(dev))
      throw new ValidationError(field(cls, 'dev'), `${JSON.stringify(dev)} is not an interface name`);
  }
  if (cls === 'bgp') {
    const via = parseIp(requireString(obj, cls, 'via'), field(cls, 'via'));
    if (via.family !== family)
      throw new ValidationError(field(cls, 'via'), 'next hop family differs from dst');
    gateway = addressBytes(via);
  }
  const dst = fast ? fast.dst : addressBytes({ family, value: (cidr as { network: bigint }).network });
  const priority = defaultPriority(family);
  return {
    cls,
    key: routeKey(family, dst, cidr.prefixLength, priority),
    family,
    dst,
    dstLen: cidr.prefixLength,
    dstText: `${formatAddress(family, dst)}/${cidr.prefixLength}`,
    priority,
    dev,
    gateway,
  };
}

/** Text of address bytes (IPv6 in the compressed form), for logs and reports. */
export function formatAddress(family: Family, bytes: Buffer): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
