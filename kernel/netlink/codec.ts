// Byte-level encoding and decoding of the few rtnetlink messages the agent exchanges with the
// kernel: route requests (new/replace/delete), route and link dumps and notifications, errors.
//
// The `netlink` package gives us the socket (its native part); its generic object codec builds a
// dozen small buffers per message, which costs more than the kernel's own work per route when we
// program thousands of routes, so these fixed-layout messages are written straight into one buffer.
// The unit tests check this codec against the package's codec.
import { endianness } from 'node:os';

const LE = endianness() === 'LE';

/** Netlink header length and alignment. */
export const NLMSG_HDRLEN = 16;
const align4 = (n: number): number => (n + 3) & ~3;

export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
} as const;
export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  DUMP_INTR: 0x10,
  DUMP: 0x300,
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
} as const;
/** rtm_type values we use. */
export const RTN = { UNICAST: 1, BLACKHOLE: 6 } as const;
/** rtm_scope values we use. */
export const RT_SCOPE = { UNIVERSE: 0, LINK: 253, NOWHERE: 255 } as const;
export const RT_TABLE_MAIN = 254;
/** rtm_flags: a cached clone (IPv6 exceptions), never a configured route. */
export const RTM_F_CLONED = 0x200;
/** rtnetlink multicast groups (RTNLGRP_*). */
export const RTNLGRP = { LINK: 1, IPV4_ROUTE: 7, IPV6_ROUTE: 11 } as const;
const AF_INET = 2;
const AF_INET6 = 10;
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, TABLE: 15 } as const;
const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
const IFLA_IFNAME = 3;
const IFF_UP = 0x1;
const RTMSG_LEN = 12;
const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;

export type Family = 4 | 6;

/** A route as the kernel holds it, reduced to the fields the reconciler compares. */
export interface KernelRoute {
  family: Family;
  /** Destination network bytes (4 or 16; all zero for a default route). */
  dst: Buffer;
  dstLen: number;
  table: number;
  protocol: number;
  scope: number;
  /** rtm_type (RTN_*). */
  type: number;
  tos: number;
  /** rtm_flags (RTM_F_*). */
  flags: number;
  /** Output interface index, 0 when absent (blackhole, multipath). */
  oif: number;
  gateway: Buffer | undefined;
  /** Metric (RTA_PRIORITY), 0 when absent. */
  priority: number;
  /** Preferred source address (RTA_PREFSRC), when the route names one. */
  prefsrc?: Buffer;
}

/** One interface address (RTM_NEWADDR). */
export interface KernelAddress {
  family: Family;
  /** Interface index. */
  index: number;
  prefixLen: number;
  /** ifa_scope (RT_SCOPE_*: 0 = global). */
  scope: number;
  /** The local address (IFA_LOCAL, else IFA_ADDRESS). */
  address: Buffer;
}

export interface KernelLink {
  index: number;
  name: string;
  up: boolean;
}

/** One netlink message inside a received datagram: a view, valid until the datagram is dropped. */
export interface RawMessage {
  type: number;
  flags: number;
  seq: number;
  payload: Buffer;
}

const u16 = (b: Buffer, o: number): number => (LE ? b.readUInt16LE(o) : b.readUInt16BE(o));
const u32 = (b: Buffer, o: number): number => (LE ? b.readUInt32LE(o) : b.readUInt32BE(o));
const s32 = (b: Buffer, o: number): number => (LE ? b.readInt32LE(o) : b.readInt32BE(o));
const w16 = (b: Buffer, v: number, o: number): number => (LE ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
const w32 = (b: Buffer, v: number, o: number): number => (LE ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));

/** Splits a received datagram into its messages (a dump packs many into one datagram). */
export function splitMessages(datagram: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= datagram.length) {
    const len = u32(datagram, off);
    if (len < NLMSG_HDRLEN || off + len > datagram.length) break;
    out.push({
      type: u16(datagram, off + 4),
      flags: u16(datagram, off + 6),
      seq: u32(datagram, off + 8),
      payload: datagram.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** The errno of an NLMSG_ERROR payload (0 is an ACK), as a positive number. */
export function errorCode(payload: Buffer): number {
  return payload.length >= 4 ? -s32(payload, 0) : 0;
}

/** The result code carried by NLMSG_DONE (negative errno when a dump failed), as a positive number. */
export const doneCode = errorCode;

/** Upper bound of the bytes `writeRouteRequest` emits for one route. */
export const MAX_ROUTE_REQUEST_LEN = NLMSG_HDRLEN + RTMSG_LEN + 4 + 16 + 8 + 4 + 16 + 8 + 8;

function putAttr(buf: Buffer, off: number, type: number, data: Buffer): number {
  w16(buf, 4 + data.length, off);
  w16(buf, type, off + 2);
  data.copy(buf, off + 4);
  const end = off + 4 + data.length;
  const padded = align4(end);
  buf.fill(0, end, padded);
  return padded;
}

function putU32Attr(buf: Buffer, off: number, type: number, value: number): number {
  w16(buf, 8, off);
  w16(buf, type, off + 2);
  w32(buf, value >>> 0, off + 4);
  return off + 8;
}

export type RouteOp = 'add' | 'replace' | 'delete';

/**
 * Writes one route request into `buf` at `off` and returns the offset after it. `add` refuses to
 * overwrite an existing route (EEXIST), `replace` overwrites the route with the same key, `delete`
 * removes only a route carrying the same protocol, so it can never remove someone else's route.
 * `ack` asks for an acknowledgement; without it the kernel answers only on error.
 */
export function writeRouteRequest(
  buf: Buffer,
  off: number,
  op: RouteOp,
  route: KernelRoute,
  seq: number,
  ack: boolean,
): number {
  const start = off;
  const type = op === 'delete' ? RTM.DELROUTE : RTM.NEWROUTE;
  let flags: number = NLM_F.REQUEST | (ack ? NLM_F.ACK : 0);
  if (op === 'add') flags |= NLM_F.CREATE | NLM_F.EXCL;
  if (op === 'replace') flags |= NLM_F.CREATE | NLM_F.REPLACE;
  w16(buf, type, off + 4);
  w16(buf, flags, off + 6);
  w32(buf, seq, off + 8);
  w32(buf, 0, off + 12);
  off += NLMSG_HDRLEN;
  buf[off] = route.family === 4 ? AF_INET : AF_INET6;
  buf[off + 1] = route.dstLen;
  buf[off + 2] = 0;
  buf[off + 3] = route.tos;
  buf[off + 4] = route.table < 256 ? route.table : 0;
  buf[off + 5] = route.protocol;
  buf[off + 6] = op === 'delete' ? RT_SCOPE.NOWHERE : route.scope;
  buf[off + 7] = op === 'delete' ? 0 : route.type;
  w32(buf, 0, off + 8);
  off += RTMSG_LEN;
  off = putU32Attr(buf, off, RTA.TABLE, route.table);
  if (route.dstLen > 0) off = putAttr(buf, off, RTA.DST, route.dst);
  if (route.priority !== 0) off = putU32Attr(buf, off, RTA.PRIORITY, route.priority);
  if (op !== 'delete') {
    if (route.oif !== 0) off = putU32Attr(buf, off, RTA.OIF, route.oif);
    if (route.gateway) off = putAttr(buf, off, RTA.GATEWAY, route.gateway);
  }
  w32(buf, off - start, start);
  return off;
}

export type DumpType = typeof RTM.GETROUTE | typeof RTM.GETLINK | typeof RTM.GETADDR;

/** A dump request (`RTM_GETROUTE`, `RTM_GETLINK` or `RTM_GETADDR`) for one address family (0 = all). */
export function dumpRequest(type: DumpType, family: number, seq: number): Buffer {
  const bodyLen = type === RTM.GETROUTE ? RTMSG_LEN : type === RTM.GETADDR ? IFADDRMSG_LEN : IFINFOMSG_LEN;
  const buf = Buffer.alloc(NLMSG_HDRLEN + bodyLen);
  w32(buf, buf.length, 0);
  w16(buf, type, 4);
  w16(buf, NLM_F.REQUEST | NLM_F.DUMP, 6);
  w32(buf, seq, 8);
  buf[NLMSG_HDRLEN] = family === 4 ? AF_INET : family === 6 ? AF_INET6 : 0;
  return buf;
}

/** Decodes an RTM_NEWROUTE / RTM_DELROUTE payload; undefined for families other than IPv4/IPv6. */
export function decodeRoute(p: Buffer): KernelRoute | undefined {
  if (p.length < RTMSG_LEN) return undefined;
  const af = p[0];
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const family: Family = af === AF_INET ? 4 : 6;
  const addrLen = family === 4 ? 4 : 16;
  const route: KernelRoute = {
    family,
    dst: Buffer.alloc(addrLen),
    dstLen: p[1]!,
    table: p[4]!,
    protocol: p[5]!,
    scope: p[6]!,
    type: p[7]!,
    tos: p[3]!,
    flags: u32(p, 8),
    oif: 0,
    gateway: undefined,
    priority: 0,
  };
  let off = RTMSG_LEN;
  while (off + 4 <= p.length) {
    const len = u16(p, off);
    if (len < 4 || off + len > p.length) break;
    const type = u16(p, off + 2) & 0x3fff;
    const data = off + 4;
    switch (type) {
      case RTA.DST:
        if (len - 4 === addrLen) route.dst = Buffer.from(p.subarray(data, data + addrLen));
        break;
      case RTA.GATEWAY:
        if (len - 4 === addrLen) route.gateway = Buffer.from(p.subarray(data, data + addrLen));
        break;
      case RTA.OIF:
        route.oif = u32(p, data);
        break;
      case RTA.PRIORITY:
        route.priority = u32(p, data);
        break;
      case RTA.TABLE:
        route.table = u32(p, data);
        break;
      case RTA.PREFSRC:
        if (len - 4 === addrLen) route.prefsrc = Buffer.from(p.subarray(data, data + addrLen));
        break;
    }
    off += align4(len);
  }
  return route;
}

/** Decodes an RTM_NEWLINK / RTM_DELLINK payload. */
export function decodeLink(p: Buffer): KernelLink | undefined {
  if (p.length < IFINFOMSG_LEN) return undefined;
  const index = s32(p, 4);
  const up = (u32(p, 8) & IFF_UP) !== 0;
  let name = '';
  let off = IFINFOMSG_LEN;
  while (off + 4 <= p.length) {
    const len = u16(p, off);
    if (len < 4 || off + len > p.length) break;
    if ((u16(p, off + 2) & 0x3fff) === IFLA_IFNAME) {
      const raw = p.subarray(off + 4, off + len);
      const nul = raw.indexOf(0);
      name = raw.toString('utf8', 0, nul < 0 ? raw.length : nul);
    }
    off += align4(len);
  }
  return { index, name, up };
}

/** Decodes an RTM_NEWADDR payload; undefined for families other than IPv4/IPv6. */
export function decodeAddress(p: Buffer): KernelAddress | undefined {
  if (p.length < IFADDRMSG_LEN) return undefined;
  const af = p[0];
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const family: Family = af === AF_INET ? 4 : 6;
  const addrLen = family === 4 ? 4 : 16;
  let local: Buffer | undefined;
  let address: Buffer | undefined;
  let off = IFADDRMSG_LEN;
  while (off + 4 <= p.length) {
    const len = u16(p, off);
    if (len < 4 || off + len > p.length) break;
    const type = u16(p, off + 2) & 0x3fff;
    if (len - 4 === addrLen && (type === IFA.LOCAL || type === IFA.ADDRESS)) {
      const bytes = Buffer.from(p.subarray(off + 4, off + 4 + addrLen));
      if (type === IFA.LOCAL) local = bytes;
      else address = bytes;
    }
    off += align4(len);
  }
  const chosen = local ?? address;
  if (!chosen) return undefined;
  return { family, index: u32(p, 4), prefixLen: p[1]!, scope: p[3]!, address: chosen };
}
