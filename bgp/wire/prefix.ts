// Prefixes as compact map keys. An IPv4 prefix is a number (length·2³² + network): no string
// is built per route on the ingest path. An IPv6 prefix is its canonical text ("fd00::/64").
import { parseCidr, parseIp } from '../../model/cidr.js';
import { ValidationError } from '../../model/errors.js';
import { BgpError } from './errors.js';
import { ErrorCode, UpdateSubcode } from './constants.js';

export type PrefixKey = number | string;
export type Family = 4 | 6;

const TWO32 = 4294967296;

export const ipv4Key = (network: number, length: number): number => length * TWO32 + network;
export const familyOf = (key: PrefixKey): Family => (typeof key === 'number' ? 4 : 6);

export function formatIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Dotted quad → 32-bit unsigned number; throws ValidationError on anything else. */
export function parseIpv4(text: string, field = 'address'): number {
  const m = IPV4_RE.exec(text);
  const parts = m ? [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] : [];
  if (!m || parts.some((p) => p > 255))
    throw new ValidationError(field, `${JSON.stringify(text)} is not an IPv4 address`);
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

/** Scratch for the eight 16-bit groups of an address being formatted (no allocation per call). */
const groups = new Uint16Array(8);
/** Scratch for the text: longest "xxxx:xxxx:xxxx:xxxx:xxxx:xxxx:xxxx:xxxx/128" is 43 characters. */
const chars = Buffer.allocUnsafe(48);
const HEX = Buffer.from('0123456789abcdef', 'latin1');

function hexGroup(v: number, o: number): number {
  if (v >= 0x1000) chars[o++] = HEX[v >> 12]!;
  if (v >= 0x100) chars[o++] = HEX[(v >> 8) & 15]!;
  if (v >= 0x10) chars[o++] = HEX[(v >> 4) & 15]!;
  chars[o++] = HEX[v & 15]!;
  return o;
}

/**
 * RFC 5952 text of `groups` (lower-case hex, the longest run ≥ 2 of zero groups as "::"), with
 * "/len" appended when `len` is given. Written into a byte scratch and read back as one flat
 * string: these strings are RIB keys, and a string built by concatenation is a tree V8 flattens
 * again on the first hash.
 */
function formatGroups(len?: number): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let o = 0;
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      chars[o++] = 0x3a;
      chars[o++] = 0x3a;
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i !== bestStart + bestLen) chars[o++] = 0x3a;
    o = hexGroup(groups[i]!, o);
  }
  if (len !== undefined) {
    chars[o++] = 0x2f;
    if (len >= 100) chars[o++] = 0x31;
    if (len >= 10) chars[o++] = 0x30 + (Math.floor(len / 10) % 10);
    chars[o++] = 0x30 + (len % 10);
  }
  return chars.toString('latin1', 0, o);
}

/** RFC 5952 text of 16 bytes at `off`. */
export function formatIpv6(buf: Uint8Array, off = 0): string {
  for (let i = 0; i < 8; i++) groups[i] = (buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!;
  return formatGroups();
}

export function ipv6Bytes(text: string): Buffer {
  const ip = parseIp(text);
  if (ip.family !== 6) throw new ValidationError('address', `${JSON.stringify(text)} is not an IPv6 address`);
  const out = Buffer.alloc(16);
  let v = ip.value;
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(v & 255n);
    v >>= 8n;
  }
  return out;
}

export function formatPrefix(key: PrefixKey): string {
  if (typeof key === 'string') return key;
  const length = Math.floor(key / TWO32);
  return `${formatIpv4(key - length * TWO32)}/${length}`;
}

/** Parses "a.b.c.d/n" or "x::/n" (host bits must be zero) into a key. */
export function parsePrefix(text: string, field = 'prefix'): PrefixKey {
  const c = parseCidr(text, field);
  if (c.family === 4) return ipv4Key(Number(c.network), c.prefixLength);
  const bytes = Buffer.alloc(16);
  let v = c.network;
  for (let i = 15; i >= 0; i--) {
    bytes[i] = Number(v & 255n);
    v >>= 8n;
  }
  return `${formatIpv6(bytes)}/${c.prefixLength}`;
}

export function prefixLength(key: PrefixKey): number {
  if (typeof key === 'number') return Math.floor(key / TWO32);
  return Number(key.slice(key.lastIndexOf('/') + 1));
}

/** Network bits as a bigint (for prefix-list matching of both families). */
export function prefixNetwork(key: PrefixKey): bigint {
  if (typeof key === 'number') return BigInt(key - prefixLength(key) * TWO32);
  return parseIp(key.slice(0, key.lastIndexOf('/'))).value;
}

const badNetwork = (what: string) =>
  new BgpError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.INVALID_NETWORK_FIELD, what);

/**
 * Decodes a run of (length, prefix) NLRI between `start` and `end` into `out`. A prefix length
 * beyond the family's width or a prefix that overruns `end` is an error (RFC 7606 §5.3: reset).
 */
export function decodePrefixes(
  buf: Buffer,
  start: number,
  end: number,
  family: Family,
  out: PrefixKey[],
): void {
  let off = start;
  if (family === 4) {
    while (off < end) {
      const len = buf[off++]!;
      if (len > 32) throw badNetwork(`IPv4 prefix length ${len} > 32`);
      const nbytes = (len + 7) >> 3;
      if (off + nbytes > end) throw badNetwork('NLRI prefix overruns its field');
      let n: number;
      switch (nbytes) {
        case 0:
          n = 0;
          break;
        case 1:
          n = buf[off]! * 16777216;
          break;
        case 2:
          n = buf[off]! * 16777216 + buf[off + 1]! * 65536;
          break;
        case 3:
          n = buf[off]! * 16777216 + buf[off + 1]! * 65536 + buf[off + 2]! * 256;
          break;
        default:
          n = buf[off]! * 16777216 + buf[off + 1]! * 65536 + buf[off + 2]! * 256 + buf[off + 3]!;
      }
      off += nbytes;
      // Trailing bits beyond the length are ignored (cleared), as RFC 4271 §4.3 allows.
      if (len & 7) n -= n % 2 ** (32 - len);
      out.push(len * TWO32 + n);
    }
    return;
  }
  while (off < end) {
    const len = buf[off++]!;
    if (len > 128) throw badNetwork(`IPv6 prefix length ${len} > 128`);
    const nbytes = (len + 7) >> 3;
    if (off + nbytes > end) throw badNetwork('NLRI prefix overruns its field');
    // Groups straight from the wire bytes (those past the prefix are 0), host bits masked off.
    for (let g = 0; g < 8; g++) {
      const hi = 2 * g < nbytes ? buf[off + 2 * g]! : 0;
      const lo = 2 * g + 1 < nbytes ? buf[off + 2 * g + 1]! : 0;
      groups[g] = (hi << 8) | lo;
    }
    if (len % 16 !== 0) groups[len >> 4]! &= (0xffff << (16 - (len % 16))) & 0xffff;
    off += nbytes;
    out.push(formatGroups(len));
  }
}

export function prefixWireLength(key: PrefixKey): number {
  return 1 + ((prefixLength(key) + 7) >> 3);
}

/** Writes one NLRI at `off`, returns the offset after it. */
export function writePrefix(key: PrefixKey, buf: Buffer, off: number): number {
  const len = prefixLength(key);
  const nbytes = (len + 7) >> 3;
  buf[off++] = len;
  if (typeof key === 'number') {
    const n = key - len * TWO32;
    for (let i = 0; i < nbytes; i++) buf[off + i] = (n / 2 ** (24 - 8 * i)) & 255;
  } else {
    ipv6Bytes(key.slice(0, key.lastIndexOf('/'))).copy(buf, off, 0, nbytes);
  }
  return off + nbytes;
}
