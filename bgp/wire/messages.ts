// BGP messages: header, OPEN (+ capabilities), UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH.
import {
  AS_TRANS,
  Afi,
  BGP_VERSION,
  CapabilityCode,
  ErrorCode,
  HEADER_LENGTH,
  HeaderSubcode,
  MARKER_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
  OpenSubcode,
  RouteRefreshSubcode,
  Safi,
  UpdateSubcode,
} from './constants.js';
import { BgpError } from './errors.js';
import {
  type DecodeContext,
  type MpReach,
  type MpUnreach,
  type PathAttributes,
  decodePathAttributes,
} from './attributes.js';
import { decodePrefixes, formatIpv4, type PrefixKey } from './prefix.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

export interface AfiSafi {
  readonly afi: number;
  readonly safi: number;
}

export interface GracefulRestartCapability {
  readonly restartState: boolean;
  readonly notification: boolean;
  /** Seconds, 0..4095. */
  readonly restartTime: number;
  readonly families: readonly (AfiSafi & { readonly forwardingState: boolean })[];
}

export interface Capabilities {
  readonly multiprotocol: readonly AfiSafi[];
  readonly routeRefresh: boolean;
  readonly enhancedRouteRefresh: boolean;
  /** The speaker's real AS when it advertises 4-octet AS support. */
  readonly fourOctetAs?: number;
  readonly gracefulRestart?: GracefulRestartCapability;
  readonly unknown: readonly { readonly code: number; readonly value: Buffer }[];
  /**
   * Known capabilities with a length their RFC does not allow, ignored rather than failing
   * the OPEN (FRR, for one, accepts a Route Refresh capability with padding); the session logs them.
   */
  readonly ignored: readonly { readonly code: number; readonly length: number }[];
}

export interface OpenMessage {
  readonly type: typeof MessageType.OPEN;
  readonly version: number;
  /** The 2-octet "My Autonomous System" field (AS_TRANS for 4-octet ASes). */
  readonly myAs: number;
  readonly holdTime: number;
  readonly routerId: string;
  readonly capabilities: Capabilities;
}

export interface UpdateMessage {
  readonly type: typeof MessageType.UPDATE;
  readonly withdrawn: PrefixKey[];
  readonly nlri: PrefixKey[];
  readonly attributes: PathAttributes | undefined;
  readonly mpReach?: MpReach;
  readonly mpUnreach?: MpUnreach;
  /** RFC 7606: the attributes were malformed in a way that withdraws this UPDATE's NLRI. */
  readonly treatAsWithdraw: boolean;
  readonly errors: readonly BgpError[];
  /** Set when this UPDATE is an End-of-RIB marker (RFC 4724 §2). */
  readonly endOfRib?: AfiSafi;
}

export interface NotificationMessage {
  readonly type: typeof MessageType.NOTIFICATION;
  readonly code: number;
  readonly subcode: number;
  readonly data: Buffer;
}

export interface KeepaliveMessage {
  readonly type: typeof MessageType.KEEPALIVE;
}

export interface RouteRefreshMessage {
  readonly type: typeof MessageType.ROUTE_REFRESH;
  readonly afi: number;
  readonly safi: number;
  /** RFC 7313: 0 normal, 1 BoRR, 2 EoRR. */
  readonly subtype: number;
}

export type BgpMessage =
  OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

const MIN_LENGTH: Record<number, number> = {
  [MessageType.OPEN]: 29,
  [MessageType.UPDATE]: 23,
  [MessageType.NOTIFICATION]: 21,
  [MessageType.KEEPALIVE]: 19,
  [MessageType.ROUTE_REFRESH]: 23,
};

const u16 = (n: number) => {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n);
  return b;
};

const headerError = (sub: number, message: string, data: Buffer) =>
  new BgpError(ErrorCode.MESSAGE_HEADER, sub, message, data);

/**
 * Checks the header at `off`; returns the message length (≥ 19). `maxLength` is 4096 unless
 * extended messages were negotiated.
 */
export function checkHeader(buf: Buffer, off: number, maxLength = MAX_MESSAGE_LENGTH): number {
  for (let i = 0; i < MARKER_LENGTH; i++) {
    if (buf[off + i] !== 0xff)
      throw headerError(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, 'marker is not all ones', Buffer.alloc(0));
  }
  const length = buf.readUInt16BE(off + 16);
  const type = buf[off + 18]!;
  const min = MIN_LENGTH[type];
  if (min === undefined)
    throw headerError(HeaderSubcode.BAD_MESSAGE_TYPE, `bad message type ${type}`, Buffer.from([type]));
  if (length < min || length > maxLength || (type === MessageType.KEEPALIVE && length !== HEADER_LENGTH)) {
    throw headerError(
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      `bad length ${length} for message type ${type}`,
      u16(length),
    );
  }
  return length;
}

/** Decodes one complete message (header included) in `msg`. Throws BgpError only. */
export function decodeMessage(msg: Buffer, ctx: DecodeContext): BgpMessage {
  if (msg.length < HEADER_LENGTH)
    throw headerError(HeaderSubcode.BAD_MESSAGE_LENGTH, 'message shorter than a header', u16(msg.length));
  const length = checkHeader(msg, 0, Math.max(MAX_MESSAGE_LENGTH, msg.length));
  if (length !== msg.length)
    throw headerError(
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      `length field ${length} but ${msg.length} bytes`,
      u16(length),
    );
  const type = msg[18]!;
  switch (type) {
    case MessageType.OPEN:
      return decodeOpen(msg);
    case MessageType.UPDATE:
      return decodeUpdate(msg, ctx);
    case MessageType.NOTIFICATION:
      return { type, code: msg[19]!, subcode: msg[20]!, data: Buffer.from(msg.subarray(21)) };
    case MessageType.KEEPALIVE:
      return { type };
    default: {
      if (length !== 23) {
        throw new BgpError(
          ErrorCode.ROUTE_REFRESH,
          RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
          'ROUTE-REFRESH length is not 23',
          Buffer.from(msg),
        );
      }
      return {
        type: MessageType.ROUTE_REFRESH,
        afi: msg.readUInt16BE(19),
        subtype: msg[21]!,
        safi: msg[22]!,
      };
    }
  }
}

// ---------------------------------------------------------------- OPEN

const openError = (sub: number, message: string, data = Buffer.alloc(0)) =>
  new BgpError(ErrorCode.OPEN_MESSAGE, sub, message, data);

function decodeOpen(msg: Buffer): OpenMessage {
  const version = msg[19]!;
  if (version !== BGP_VERSION)
    throw openError(OpenSubcode.UNSUPPORTED_VERSION, `unsupported BGP version ${version}`, u16(BGP_VERSION));
  const myAs = msg.readUInt16BE(20);
  const holdTime = msg.readUInt16BE(22);
  if (holdTime === 1 || holdTime === 2)
    throw openError(OpenSubcode.UNACCEPTABLE_HOLD_TIME, `hold time ${holdTime} s is unacceptable`);
  const routerIdNum = msg.readUInt32BE(24);
  if (routerIdNum === 0) throw openError(OpenSubcode.BAD_BGP_IDENTIFIER, 'BGP identifier 0.0.0.0');
  let optLen = msg[28]!;
  let off = 29;
  let extendedParams = false;
  // RFC 9072 extended optional parameters length.
  if (optLen === 255 && msg.length >= 32 && msg[29] === 255) {
    extendedParams = true;
    optLen = msg.readUInt16BE(30);
    off = 32;
  }
  if (off + optLen !== msg.length)
    throw openError(0, `optional parameters length ${optLen} does not match the message`);
  const caps: MutableCapabilities = {
    multiprotocol: [],
    routeRefresh: false,
    enhancedRouteRefresh: false,
    unknown: [],
    ignored: [],
  };
  const end = off + optLen;
  while (off < end) {
    const headerLen = extendedParams ? 3 : 2;
    if (end - off < headerLen) throw openError(0, 'truncated optional parameter');
    const ptype = msg[off]!;
    const plen = extendedParams ? msg.readUInt16BE(off + 1) : msg[off + 1]!;
    off += headerLen;
    if (off + plen > end) throw openError(0, 'optional parameter overruns the OPEN');
    if (ptype !== 2)
      throw openError(OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER, `unsupported optional parameter ${ptype}`);
    decodeCapabilities(msg, off, off + plen, caps);
    off += plen;
  }
  return {
    type: MessageType.OPEN,
    version,
    myAs,
    holdTime,
    routerId: formatIpv4(routerIdNum),
    capabilities: caps,
  };
}

type MutableCapabilities = { -readonly [K in keyof Capabilities]: Capabilities[K] } & {
  multiprotocol: AfiSafi[];
  unknown: { code: number; value: Buffer }[];
  ignored: { code: number; length: number }[];
};

interface CapabilitySpec {
  /** The lengths the capability's RFC allows; another length gets the capability ignored. */
  readonly lengthOk: (len: number) => boolean;
  /** Reads the value (the reader spans exactly it). */
  readonly decode: (r: Reader, caps: MutableCapabilities) => void;
}

const CAPABILITIES: Readonly<Record<number, CapabilitySpec>> = {
  [CapabilityCode.MULTIPROTOCOL]: {
    lengthOk: (len) => len === 4,
    decode(r, caps) {
      const afi = r.u16();
      r.u8(); // reserved
      caps.multiprotocol.push({ afi, safi: r.u8() });
    },
  },
  [CapabilityCode.ROUTE_REFRESH]: {
    lengthOk: (len) => len === 0,
    decode: (_r, caps) => void (caps.routeRefresh = true),
  },
  [CapabilityCode.ENHANCED_ROUTE_REFRESH]: {
    lengthOk: (len) => len === 0,
    decode: (_r, caps) => void (caps.enhancedRouteRefresh = true),
  },
  [CapabilityCode.FOUR_OCTET_AS]: {
    lengthOk: (len) => len === 4,
    decode: (r, caps) => void (caps.fourOctetAs = r.u32()),
  },
  [CapabilityCode.GRACEFUL_RESTART]: {
    lengthOk: (len) => len >= 2 && (len - 2) % 4 === 0,
    decode(r, caps) {
      const word = r.u16();
      const families: (AfiSafi & { forwardingState: boolean })[] = [];
      while (r.remaining > 0) {
        const afi = r.u16();
        const safi = r.u8();
        families.push({ afi, safi, forwardingState: (r.u8() & 0x80) !== 0 });
      }
      caps.gracefulRestart = {
        restartState: (word & 0x8000) !== 0,
        notification: (word & 0x4000) !== 0,
        restartTime: word & 0x0fff,
        families,
      };
    },
  },
};

function decodeCapabilities(msg: Buffer, start: number, end: number, caps: MutableCapabilities): void {
  const r = new Reader(msg, start, end);
  let off = start;
  while (off < end) {
    if (end - off < 2) throw openError(0, 'truncated capability');
    const code = msg[off]!;
    const len = msg[off + 1]!;
    const vs = off + 2;
    const ve = vs + len;
    if (ve > end) throw openError(0, `capability ${code} overruns its parameter`);
    off = ve;
    const spec = CAPABILITIES[code];
    if (!spec) caps.unknown.push({ code, value: r.at(vs, ve).copy(len) });
    else if (!spec.lengthOk(len)) caps.ignored.push({ code, length: len });
    else spec.decode(r.at(vs, ve), caps);
  }
}

export interface OpenParams {
  readonly asn: number;
  readonly holdTime: number;
  readonly routerId: string;
  readonly families: readonly AfiSafi[];
  readonly routeRefresh?: boolean;
  /** RFC 7313 capability 70 (only with routeRefresh); default true. */
  readonly enhancedRouteRefresh?: boolean;
  readonly gracefulRestart?: GracefulRestartCapability;
}

/** One capability in an optional parameter of its own (the most widely accepted layout). */
function capability(w: Writer, code: number, value: (w: Writer) => void): void {
  const start = w.length;
  w.u8(2).u8(0).u8(code).u8(0);
  value(w);
  w.patchU8(start + 3, w.length - start - 4);
  w.patchU8(start + 1, w.length - start - 2);
}

export function encodeOpen(p: OpenParams): Buffer {
  const w = new Writer(128);
  w.bytes(HEADER_PLACEHOLDER)
    .u8(BGP_VERSION)
    .u16(p.asn > 0xffff ? AS_TRANS : p.asn)
    .u16(p.holdTime);
  w.ipv4(p.routerId).u8(0);
  for (const f of p.families)
    capability(w, CapabilityCode.MULTIPROTOCOL, (w) => w.u16(f.afi).u8(0).u8(f.safi));
  if (p.routeRefresh !== false) {
    capability(w, CapabilityCode.ROUTE_REFRESH, () => {});
    if (p.enhancedRouteRefresh !== false) capability(w, CapabilityCode.ENHANCED_ROUTE_REFRESH, () => {});
  }
  capability(w, CapabilityCode.FOUR_OCTET_AS, (w) => w.u32(p.asn));
  const g = p.gracefulRestart;
  if (g) {
    capability(w, CapabilityCode.GRACEFUL_RESTART, (w) => {
      w.u16((g.restartState ? 0x8000 : 0) | (g.notification ? 0x4000 : 0) | (g.restartTime & 0x0fff));
      for (const f of g.families)
        w.u16(f.afi)
          .u8(f.safi)
          .u8(f.forwardingState ? 0x80 : 0);
    });
  }
  const params = w.length - HEADER_LENGTH - 10;
  if (params > 255) throw new BgpError(0, 0, 'OPEN optional parameters exceed 255 bytes');
  w.patchU8(HEADER_LENGTH + 9, params);
  return finishFrame(w, MessageType.OPEN);
}

// ---------------------------------------------------------------- UPDATE

function decodeUpdate(msg: Buffer, ctx: DecodeContext): UpdateMessage {
  const end = msg.length;
  const wLen = msg.readUInt16BE(19);
  const wStart = 21;
  if (wStart + wLen + 2 > end) {
    throw new BgpError(
      ErrorCode.UPDATE_MESSAGE,
      UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
      'withdrawn routes length overruns the UPDATE',
    );
  }
  const aLen = msg.readUInt16BE(wStart + wLen);
  const aStart = wStart + wLen + 2;
  if (aStart + aLen > end) {
    throw new BgpError(
      ErrorCode.UPDATE_MESSAGE,
      UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
      'total path attribute length overruns the UPDATE',
    );
  }
  const withdrawn: PrefixKey[] = [];
  decodePrefixes(msg, wStart, wStart + wLen, 4, withdrawn);
  const nlri: PrefixKey[] = [];
  decodePrefixes(msg, aStart + aLen, end, 4, nlri);
  const d = decodePathAttributes(msg, aStart, aStart + aLen, ctx, nlri.length > 0);
  let endOfRib: AfiSafi | undefined;
  if (wLen === 0 && aLen === 0 && nlri.length === 0) endOfRib = { afi: Afi.IPV4, safi: Safi.UNICAST };
  // RFC 4724 §2: an UPDATE whose only attribute is an empty MP_UNREACH_NLRI, in whatever
  // length form (the two-octet Extended Length makes it 7 bytes).
  else if (wLen === 0 && nlri.length === 0 && d.count === 1 && d.mpUnreach?.withdrawn.length === 0) {
    endOfRib = { afi: d.mpUnreach.afi, safi: d.mpUnreach.safi };
  }
  return {
    type: MessageType.UPDATE,
    withdrawn,
    nlri,
    attributes: aLen === 0 ? undefined : d.attributes,
    ...(d.mpReach ? { mpReach: d.mpReach } : {}),
    ...(d.mpUnreach ? { mpUnreach: d.mpUnreach } : {}),
    treatAsWithdraw: d.treatAsWithdraw,
    errors: d.errors,
    ...(endOfRib ? { endOfRib } : {}),
  };
}

/**
 * An UPDATE from already-encoded parts: IPv4 withdrawn NLRI bytes, path attribute bytes
 * (including any MP_REACH/MP_UNREACH) and IPv4 NLRI bytes.
 */
export function encodeUpdate(withdrawn: Buffer, attributes: Buffer, nlri: Buffer): Buffer {
  const total = HEADER_LENGTH + 4 + withdrawn.length + attributes.length + nlri.length;
  const out = Buffer.allocUnsafe(total);
  out.fill(0xff, 0, MARKER_LENGTH);
  out.writeUInt16BE(total, 16);
  out[18] = MessageType.UPDATE;
  let o = out.writeUInt16BE(withdrawn.length, 19);
  o += withdrawn.copy(out, o);
  o = out.writeUInt16BE(attributes.length, o);
  o += attributes.copy(out, o);
  nlri.copy(out, o);
  return out;
}

export function encodeEndOfRib(f: AfiSafi): Buffer {
  if (f.afi === Afi.IPV4 && f.safi === Safi.UNICAST)
    return encodeUpdate(Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0));
  const a = Buffer.from([0x80, 15, 3, 0, 0, f.safi]);
  a.writeUInt16BE(f.afi, 3);
  return encodeUpdate(Buffer.alloc(0), a, Buffer.alloc(0));
}

// ---------------------------------------------------------------- the rest

const HEADER_PLACEHOLDER = Buffer.alloc(HEADER_LENGTH);

/** Fills in the header of a message written after HEADER_PLACEHOLDER. */
function finishFrame(w: Writer, type: number): Buffer {
  const out = w.toBuffer();
  out.fill(0xff, 0, MARKER_LENGTH);
  out.writeUInt16BE(out.length, MARKER_LENGTH);
  out[18] = type;
  return out;
}

function frame(type: number, parts: Buffer[]): Buffer {
  const w = new Writer(HEADER_LENGTH + parts.reduce((n, p) => n + p.length, 0)).bytes(HEADER_PLACEHOLDER);
  for (const p of parts) w.bytes(p);
  return finishFrame(w, type);
}

export function encodeNotification(code: number, subcode: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const max = MAX_MESSAGE_LENGTH - HEADER_LENGTH - 2;
  return frame(MessageType.NOTIFICATION, [Buffer.from([code, subcode]), data.subarray(0, max)]);
}

export const KEEPALIVE: Buffer = frame(MessageType.KEEPALIVE, []);

export function encodeKeepalive(): Buffer {
  return KEEPALIVE;
}

export function encodeRouteRefresh(afi: number, safi: number, subtype = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(afi);
  b[2] = subtype;
  b[3] = safi;
  return frame(MessageType.ROUTE_REFRESH, [b]);
}

/**
 * Splits a TCP byte stream into messages without copying: complete messages are views into
 * the received chunk; only a partial tail is kept (and joined with the next chunk).
 */
export class MessageFramer {
  private pending: Buffer | undefined;

  constructor(private readonly maxLength = MAX_MESSAGE_LENGTH) {}

  /** Calls `onMessage` for each complete message; throws BgpError on a bad header. */
  push(chunk: Buffer, onMessage: (msg: Buffer) => void): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let off = 0;
    while (buf.length - off >= HEADER_LENGTH) {
      const length = checkHeader(buf, off, this.maxLength);
      if (buf.length - off < length) break;
      onMessage(buf.subarray(off, off + length));
      off += length;
    }
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off));
  }
}
