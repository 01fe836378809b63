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
import { decodePrefixes, formatIpv4, parseIpv4, type PrefixKey } from './prefix.js';

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
  const caps: {
    multiprotocol: AfiSafi[];
    routeRefresh: boolean;
    enhancedRouteRefresh: boolean;
    fourOctetAs?: number;
    gracefulRestart?: GracefulRestartCapability;
    unknown: { code: number; value: Buffer }[];
    ignored: { code: number; length: number }[];
  } = { multiprotocol: [], routeRefresh: false, enhancedRouteRefresh: false, unknown: [], ignored: [] };
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

/** The lengths each known capability's RFC allows. */
const CAPABILITY_LENGTH_OK: Record<number, (len: number) => boolean> = {
  [CapabilityCode.MULTIPROTOCOL]: (len) => len === 4,
  [CapabilityCode.ROUTE_REFRESH]: (len) => len === 0,
  [CapabilityCode.ENHANCED_ROUTE_REFRESH]: (len) => len === 0,
  [CapabilityCode.FOUR_OCTET_AS]: (len) => len === 4,
  [CapabilityCode.GRACEFUL_RESTART]: (len) => len >= 2 && (len - 2) % 4 === 0,
};

function decodeCapabilities(
  msg: Buffer,
  start: number,
  end: number,
  caps: {
    multiprotocol: AfiSafi[];
    routeRefresh: boolean;
    enhancedRouteRefresh: boolean;
    fourOctetAs?: number;
    gracefulRestart?: GracefulRestartCapability;
    unknown: { code: number; value: Buffer }[];
    ignored: { code: number; length: number }[];
  },
): void {
  let off = start;
  while (off < end) {
    if (end - off < 2) throw openError(0, 'truncated capability');
    const code = msg[off]!;
    const len = msg[off + 1]!;
    const vs = off + 2;
    const ve = vs + len;
    if (ve > end) throw openError(0, `capability ${code} overruns its parameter`);
    off = ve;
    const lengthOk = CAPABILITY_LENGTH_OK[code];
    if (lengthOk && !lengthOk(len)) {
      caps.ignored.push({ code, length: len });
      continue;
    }
    switch (code) {
      case CapabilityCode.MULTIPROTOCOL:
        caps.multiprotocol.push({ afi: msg.readUInt16BE(vs), safi: msg[vs + 3]! });
        break;
      case CapabilityCode.ROUTE_REFRESH:
        caps.routeRefresh = true;
        break;
      case CapabilityCode.ENHANCED_ROUTE_REFRESH:
        caps.enhancedRouteRefresh = true;
        break;
      case CapabilityCode.FOUR_OCTET_AS:
        caps.fourOctetAs = msg.readUInt32BE(vs);
        break;
      case CapabilityCode.GRACEFUL_RESTART: {
        const word = msg.readUInt16BE(vs);
        const families: (AfiSafi & { forwardingState: boolean })[] = [];
        for (let p = vs + 2; p < ve; p += 4) {
          families.push({
            afi: msg.readUInt16BE(p),
            safi: msg[p + 2]!,
            forwardingState: (msg[p + 3]! & 0x80) !== 0,
          });
        }
        caps.gracefulRestart = {
          restartState: (word & 0x8000) !== 0,
          notification: (word & 0x4000) !== 0,
          restartTime: word & 0x0fff,
          families,
        };
        break;
      }
      default:
        caps.unknown.push({ code, value: Buffer.from(msg.subarray(vs, ve)) });
    }
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

function capability(code: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([code, value.length]), value]);
}

export function encodeOpen(p: OpenParams): Buffer {
  const caps: Buffer[] = [];
  for (const f of p.families) {
    const v = Buffer.alloc(4);
    v.writeUInt16BE(f.afi);
    v[3] = f.safi;
    caps.push(capability(CapabilityCode.MULTIPROTOCOL, v));
  }
  if (p.routeRefresh !== false) {
    caps.push(capability(CapabilityCode.ROUTE_REFRESH, Buffer.alloc(0)));
    if (p.enhancedRouteRefresh !== false)
      caps.push(capability(CapabilityCode.ENHANCED_ROUTE_REFRESH, Buffer.alloc(0)));
  }
  const as4 = Buffer.alloc(4);
  as4.writeUInt32BE(p.asn);
  caps.push(capability(CapabilityCode.FOUR_OCTET_AS, as4));
  if (p.gracefulRestart) {
    const g = p.gracefulRestart;
    const v = Buffer.alloc(2 + 4 * g.families.length);
    v.writeUInt16BE((g.restartState ? 0x8000 : 0) | (g.notification ? 0x4000 : 0) | (g.restartTime & 0x0fff));
    g.families.forEach((f, i) => {
      v.writeUInt16BE(f.afi, 2 + 4 * i);
      v[4 + 4 * i] = f.safi;
      v[5 + 4 * i] = f.forwardingState ? 0x80 : 0;
    });
    caps.push(capability(CapabilityCode.GRACEFUL_RESTART, v));
  }
  // One capability per optional parameter is the most widely accepted layout.
  const params = Buffer.concat(caps.map((c) => Buffer.concat([Buffer.from([2, c.length]), c])));
  if (params.length > 255) throw new BgpError(0, 0, 'OPEN optional parameters exceed 255 bytes');
  const body = Buffer.alloc(10);
  body[0] = BGP_VERSION;
  body.writeUInt16BE(p.asn > 0xffff ? AS_TRANS : p.asn, 1);
  body.writeUInt16BE(p.holdTime, 3);
  body.writeUInt32BE(parseIpv4(p.routerId), 5);
  body[9] = params.length;
  return frame(MessageType.OPEN, [body, params]);
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

function frame(type: number, parts: Buffer[]): Buffer {
  const bodyLen = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.allocUnsafe(HEADER_LENGTH + bodyLen);
  out.fill(0xff, 0, MARKER_LENGTH);
  out.writeUInt16BE(HEADER_LENGTH + bodyLen, 16);
  out[18] = type;
  let o = HEADER_LENGTH;
  for (const p of parts) o += p.copy(out, o);
  return out;
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
