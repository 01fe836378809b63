// IP address and CIDR arithmetic for IPv4 and IPv6. Parsing and formatting go through
// `ip-address`; arithmetic is on bigint so /0 and /128 need no special cases.
import { Address4, Address6 } from 'ip-address';
import { ValidationError } from './errors.js';

export type IpFamily = 4 | 6;

export interface IpAddr {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** A network in canonical form: host bits are zero. */
export interface Cidr {
  readonly family: IpFamily;
  readonly network: bigint;
  readonly prefixLength: number;
}

export const bitsOf = (family: IpFamily): number => (family === 4 ? 32 : 128);

export function parseIp(text: string, field = 'address'): IpAddr {
  if (typeof text !== 'string' || text.includes('/')) {
    throw new ValidationError(field, `${JSON.stringify(text)} is not an IP address`);
  }
  if (Address4.isValid(text) && /^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    return { family: 4, value: new Address4(text).bigInt() };
  }
  if (text.includes(':') && Address6.isValid(text) && !text.includes('%')) {
    return { family: 6, value: new Address6(text).bigInt() };
  }
  throw new ValidationError(field, `${JSON.stringify(text)} is not an IP address`);
}

export function formatIp(ip: IpAddr): string {
  return ip.family === 4
    ? Address4.fromBigInt(ip.value).correctForm()
    : Address6.fromBigInt(ip.value).correctForm();
}

function hostMask(family: IpFamily, prefixLength: number): bigint {
  return (1n << BigInt(bitsOf(family) - prefixLength)) - 1n;
}

/**
 * Parses "addr/len". With `strict` (the default) host bits must be zero, as an IPPool or
 * ipBlock must be; without it they are cleared.
 */
export function parseCidr(text: string, field = 'cidr', strict = true): Cidr {
  if (typeof text !== 'string') throw new ValidationError(field, 'must be a CIDR string');
  const slash = text.indexOf('/');
  if (slash < 0) throw new ValidationError(field, `${JSON.stringify(text)} is not a CIDR (missing /prefix)`);
  const ip = parseIp(text.slice(0, slash), field);
  const lenText = text.slice(slash + 1);
  const prefixLength = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || prefixLength > bitsOf(ip.family)) {
    throw new ValidationError(field, `${JSON.stringify(text)} has an invalid prefix length`);
  }
  const host = ip.value & hostMask(ip.family, prefixLength);
  if (strict && host !== 0n) {
    throw new ValidationError(
      field,
      `${JSON.stringify(text)} has host bits set (network is ${formatCidr({ family: ip.family, network: ip.value - host, prefixLength })})`,
    );
  }
  return { family: ip.family, network: ip.value - host, prefixLength };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.prefixLength}`;
}

export function hostCidr(ip: IpAddr): Cidr {
  return { family: ip.family, network: ip.value, prefixLength: bitsOf(ip.family) };
}

export function size(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.family) - c.prefixLength);
}

export function lastAddress(c: Cidr): IpAddr {
  return { family: c.family, value: c.network + size(c) - 1n };
}

export function containsIp(c: Cidr, ip: IpAddr): boolean {
  return c.family === ip.family && ip.value >= c.network && ip.value < c.network + size(c);
}

/** True when `inner` lies entirely within `outer`. */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefixLength >= outer.prefixLength &&
    containsIp(outer, { family: inner.family, value: inner.network })
  );
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return containsCidr(a, b) || containsCidr(b, a);
}

export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.network === b.network && a.prefixLength === b.prefixLength;
}

/** The subnets of length `prefixLength` that make up `c`, in address order (lazily). */
export function* split(c: Cidr, prefixLength: number): Generator<Cidr> {
  if (prefixLength < c.prefixLength || prefixLength > bitsOf(c.family)) {
    throw new ValidationError('blockSize', `cannot split ${formatCidr(c)} into /${prefixLength} blocks`);
  }
  const step = 1n << BigInt(bitsOf(c.family) - prefixLength);
  const end = c.network + size(c);
  for (let n = c.network; n < end; n += step) yield { family: c.family, network: n, prefixLength };
}

/** Every address of `c`, in order (lazily; a /64 is fine as long as the caller stops). */
export function* addresses(c: Cidr): Generator<IpAddr> {
  const end = c.network + size(c);
  for (let v = c.network; v < end; v++) yield { family: c.family, value: v };
}

/** The offset of `ip` within `c` (0 = network address). Caller ensures containment. */
export function offsetOf(c: Cidr, ip: IpAddr): number {
  return Number(ip.value - c.network);
}

export function addressAt(c: Cidr, offset: number | bigint): IpAddr {
  return { family: c.family, value: c.network + BigInt(offset) };
}
