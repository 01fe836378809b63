// Path attributes: decoding with every flag and length checked and RFC 7606 error actions,
// and encoding for 2- and 4-octet AS peers (AS4_PATH / AS4_AGGREGATOR, RFC 6793).
import {
  AS_TRANS,
  Afi,
  AsPathSegmentType,
  AttrFlag,
  AttrType,
  ErrorCode,
  type Origin,
  Safi,
  UpdateSubcode,
} from './constants.js';
import { BgpError } from './errors.js';
import { decodePrefixes, formatIpv4, formatIpv6, ipv6Bytes, parseIpv4, type PrefixKey } from './prefix.js';

export interface AsPathSegment {
  readonly type: 1 | 2 | 3 | 4;
  readonly asns: readonly number[];
}

export interface UnknownAttribute {
  readonly flags: number;
  readonly type: number;
  readonly value: Buffer;
}

/** Decoded path attributes, without the MP_REACH/MP_UNREACH NLRI (those are carried apart). */
export interface PathAttributes {
  readonly origin: Origin;
  readonly asPath: readonly AsPathSegment[];
  /** IPv4 NEXT_HOP, or the global next hop of MP_REACH_NLRI for the routes it carries. */
  readonly nextHop?: string;
  readonly linkLocalNextHop?: string;
  readonly med?: number;
  readonly localPref?: number;
  readonly atomicAggregate?: boolean;
  readonly aggregator?: { readonly asn: number; readonly address: string };
  readonly communities?: readonly number[];
  readonly largeCommunities?: readonly (readonly [number, number, number])[];
  readonly originatorId?: string;
  readonly clusterList?: readonly string[];
  readonly unknown?: readonly UnknownAttribute[];
}

export interface MpReach {
  readonly afi: number;
  readonly safi: number;
  readonly nextHop: string;
  readonly linkLocalNextHop?: string;
  readonly nlri: PrefixKey[];
}

export interface MpUnreach {
  readonly afi: number;
  readonly safi: number;
  readonly withdrawn: PrefixKey[];
}

export interface DecodeContext {
  /** Both sides advertised the 4-octet AS capability. */
  readonly fourOctetAs: boolean;
}

export interface DecodedAttributes {
  /** Undefined when the UPDATE carried no attribute at all. */
  attributes: PathAttributes | undefined;
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** Non-fatal problems found (RFC 7606 treat-as-withdraw / attribute-discard). */
  errors: BgpError[];
  treatAsWithdraw: boolean;
  /** How many attributes the field held (End-of-RIB: MP_UNREACH_NLRI alone). */
  count: number;
}

const WELL_KNOWN = AttrFlag.TRANSITIVE;
const OPT_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
const OPT_NON_TRANSITIVE = AttrFlag.OPTIONAL;

/** Expected Optional/Transitive bits of each attribute we know. */
const EXPECTED_FLAGS: Record<number, number> = {
  [AttrType.ORIGIN]: WELL_KNOWN,
  [AttrType.AS_PATH]: WELL_KNOWN,
  [AttrType.NEXT_HOP]: WELL_KNOWN,
  [AttrType.MED]: OPT_NON_TRANSITIVE,
  [AttrType.LOCAL_PREF]: WELL_KNOWN,
  [AttrType.ATOMIC_AGGREGATE]: WELL_KNOWN,
  [AttrType.AGGREGATOR]: OPT_TRANSITIVE,
  [AttrType.COMMUNITIES]: OPT_TRANSITIVE,
  [AttrType.ORIGINATOR_ID]: OPT_NON_TRANSITIVE,
  [AttrType.CLUSTER_LIST]: OPT_NON_TRANSITIVE,
  [AttrType.MP_REACH_NLRI]: OPT_NON_TRANSITIVE,
  [AttrType.MP_UNREACH_NLRI]: OPT_NON_TRANSITIVE,
  [AttrType.AS4_PATH]: OPT_TRANSITIVE,
  [AttrType.AS4_AGGREGATOR]: OPT_TRANSITIVE,
  [AttrType.LARGE_COMMUNITY]: OPT_TRANSITIVE,
};

/** RFC 7606 §7: what a malformed instance of each attribute leads to. */
const MALFORMED_ACTION: Record<number, 'treat-as-withdraw' | 'attribute-discard' | 'session-reset'> = {
  [AttrType.ORIGIN]: 'treat-as-withdraw',
  [AttrType.AS_PATH]: 'treat-as-withdraw',
  [AttrType.NEXT_HOP]: 'treat-as-withdraw',
  [AttrType.MED]: 'treat-as-withdraw',
  [AttrType.LOCAL_PREF]: 'treat-as-withdraw',
  [AttrType.ATOMIC_AGGREGATE]: 'attribute-discard',
  [AttrType.AGGREGATOR]: 'attribute-discard',
  [AttrType.COMMUNITIES]: 'treat-as-withdraw',
  [AttrType.ORIGINATOR_ID]: 'treat-as-withdraw',
  [AttrType.CLUSTER_LIST]: 'treat-as-withdraw',
  [AttrType.MP_REACH_NLRI]: 'session-reset',
  [AttrType.MP_UNREACH_NLRI]: 'session-reset',
  [AttrType.AS4_PATH]: 'attribute-discard',
  [AttrType.AS4_AGGREGATOR]: 'attribute-discard',
  [AttrType.LARGE_COMMUNITY]: 'treat-as-withdraw',
};

const updateError = (
  sub: number,
  message: string,
  data: Buffer,
  action: BgpError['action'] = 'session-reset',
) => new BgpError(ErrorCode.UPDATE_MESSAGE, sub, message, Buffer.from(data), action);

type Mutable = { -readonly [K in keyof PathAttributes]?: PathAttributes[K] };

function readIpv4(buf: Buffer, off: number): string {
  return formatIpv4(buf.readUInt32BE(off));
}

/**
 * Decodes AS_PATH / AS4_PATH segments; returns undefined when malformed, 'as0' when a segment
 * holds AS 0 (RFC 7607: malformed too, told apart only for the error text).
 */
function decodeAsPath(
  buf: Buffer,
  start: number,
  end: number,
  asSize: 2 | 4,
): AsPathSegment[] | 'as0' | undefined {
  let hasAs0 = false;
  const segments: AsPathSegment[] = [];
  let off = start;
  while (off < end) {
    if (end - off < 2) return undefined;
    const type = buf[off]!;
    const count = buf[off + 1]!;
    off += 2;
    if (type < 1 || type > 4 || count === 0 || off + count * asSize > end) return undefined;
    const asns = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const asn = asSize === 4 ? buf.readUInt32BE(off) : buf.readUInt16BE(off);
      if (asn === 0) hasAs0 = true;
      asns[i] = asn;
      off += asSize;
    }
    segments.push({ type: type as AsPathSegment['type'], asns });
  }
  return hasAs0 ? 'as0' : segments;
}

/** Path length for the decision process and AS4 reconciliation: an AS_SET counts 1, confederation segments 0. */
export function asPathLength(path: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of path) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) n += s.asns.length;
    else if (s.type === AsPathSegmentType.AS_SET) n += 1;
  }
  return n;
}

const isConfederation = (s: AsPathSegment) =>
  s.type === AsPathSegmentType.AS_CONFED_SEQUENCE || s.type === AsPathSegmentType.AS_CONFED_SET;

/**
 * RFC 6793 §4.2.3: leading ASes of AS_PATH followed by AS4_PATH. Confederation segments of
 * AS4_PATH are discarded first (§6: they are invalid there and would leak out of the
 * confederation); those of AS_PATH are the 2-octet peer's own and stay.
 */
function mergeAs4Path(
  asPath: readonly AsPathSegment[],
  as4PathReceived: readonly AsPathSegment[],
): AsPathSegment[] {
  const as4Path = as4PathReceived.filter((s) => !isConfederation(s));
  let keep = asPathLength(asPath) - asPathLength(as4Path);
  if (keep < 0) return [...asPath];
  const out: AsPathSegment[] = [];
  for (const s of asPath) {
    if (keep <= 0) break;
    if (s.type === AsPathSegmentType.AS_SEQUENCE) {
      const take = Math.min(keep, s.asns.length);
      out.push({ type: s.type, asns: s.asns.slice(0, take) });
      keep -= take;
    } else if (s.type === AsPathSegmentType.AS_SET) {
      out.push(s);
      keep -= 1;
    } else {
      out.push(s);
    }
  }
  const last = out[out.length - 1];
  const first = as4Path[0];
  if (
    last &&
    first &&
    last.type === AsPathSegmentType.AS_SEQUENCE &&
    first.type === AsPathSegmentType.AS_SEQUENCE &&
    last.asns.length + first.asns.length <= 255
  ) {
    return [
      ...out.slice(0, -1),
      { type: last.type, asns: [...last.asns, ...first.asns] },
      ...as4Path.slice(1),
    ];
  }
  return [...out, ...as4Path];
}

/**
 * Decodes the path attribute field [start, end) of an UPDATE. Throws a BgpError only for the
 * errors RFC 7606 still answers with a session reset; the rest are reported in `errors`.
 */
export function decodePathAttributes(
  buf: Buffer,
  start: number,
  end: number,
  ctx: DecodeContext,
  hasIpv4Nlri: boolean,
): DecodedAttributes {
  const out: DecodedAttributes = { attributes: undefined, errors: [], treatAsWithdraw: false, count: 0 };
  if (start === end) {
    if (hasIpv4Nlri) {
      out.errors.push(
        updateError(
          UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
          'missing ORIGIN',
          Buffer.from([1]),
          'treat-as-withdraw',
        ),
      );
      out.treatAsWithdraw = true;
    }
    return out;
  }
  const a: Mutable = {};
  const seen = new Set<number>();
  let as4Path: AsPathSegment[] | undefined;
  let as4Aggregator: { asn: number; address: string } | undefined;
  const asSize = ctx.fourOctetAs ? 4 : 2;
  let off = start;
  const soft = (err: BgpError) => {
    out.errors.push(err);
    if (err.action === 'treat-as-withdraw') out.treatAsWithdraw = true;
  };

  while (off < end) {
    const attrStart = off;
    if (end - off < 3) {
      soft(
        updateError(
          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
          'truncated attribute header',
          Buffer.alloc(0),
          'treat-as-withdraw',
        ),
      );
      break;
    }
    const flags = buf[off]!;
    const type = buf[off + 1]!;
    const extended = (flags & AttrFlag.EXTENDED_LENGTH) !== 0;
    if (extended && end - off < 4) {
      soft(
        updateError(
          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
          'truncated attribute header',
          Buffer.alloc(0),
          'treat-as-withdraw',
        ),
      );
      break;
    }
    const len = extended ? buf.readUInt16BE(off + 2) : buf[off + 2]!;
    const vs = off + (extended ? 4 : 3);
    const ve = vs + len;
    if (ve > end) {
      // RFC 7606 §4: the NLRI field is still locatable from the total length, so withdraw.
      const action =
        type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI
          ? 'session-reset'
          : 'treat-as-withdraw';
      const err = updateError(
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        `attribute ${type} overruns the attribute field`,
        buf.subarray(attrStart, end),
        action,
      );
      if (action === 'session-reset') throw err;
      soft(err);
      break;
    }
    off = ve;
    out.count++;
    const data = buf.subarray(attrStart, ve);

    if (seen.has(type)) {
      if (type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI) {
        throw updateError(
          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
          `duplicate attribute ${type}`,
          Buffer.alloc(0),
        );
      }
      soft(
        updateError(
          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
          `duplicate attribute ${type} discarded`,
          Buffer.alloc(0),
          'attribute-discard',
        ),
      );
      continue;
    }
    seen.add(type);

    const expected = EXPECTED_FLAGS[type];
    if (expected === undefined) {
      if ((flags & AttrFlag.OPTIONAL) === 0) {
        throw updateError(
          UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
          `unrecognized well-known attribute ${type}`,
          data,
        );
      }
      if (flags & AttrFlag.TRANSITIVE) {
        const kept: UnknownAttribute = {
          flags: (flags | AttrFlag.PARTIAL) & ~AttrFlag.EXTENDED_LENGTH,
          type,
          value: Buffer.from(buf.subarray(vs, ve)),
        };
        a.unknown = [...(a.unknown ?? []), kept];
      }
      continue;
    }
    const malformed = (sub: number, what: string) => {
      const err = updateError(sub, what, data, MALFORMED_ACTION[type]);
      if (err.action === 'session-reset') throw err;
      soft(err);
    };
    if ((flags & (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)) !== expected) {
      malformed(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, `attribute ${type} has flags 0x${flags.toString(16)}`);
      continue;
    }

    switch (type) {
      case AttrType.ORIGIN:
        if (len !== 1) malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, 'ORIGIN length is not 1');
        else if (buf[vs]! > 2)
          malformed(UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE, `ORIGIN ${buf[vs]} is invalid`);
        else a.origin = buf[vs] as Origin;
        break;
      case AttrType.AS_PATH: {
        const p = decodeAsPath(buf, vs, ve, asSize);
        if (!p) malformed(UpdateSubcode.MALFORMED_AS_PATH, 'malformed AS_PATH');
        else if (p === 'as0') malformed(UpdateSubcode.MALFORMED_AS_PATH, 'AS_PATH holds AS 0 (RFC 7607)');
        else a.asPath = p;
        break;
      }
      case AttrType.AS4_PATH: {
        const p = decodeAsPath(buf, vs, ve, 4);
        if (!p) malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'malformed AS4_PATH');
        else if (p === 'as0')
          malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'AS4_PATH holds AS 0 (RFC 7607)');
        else as4Path = p;
        break;
      }
      case AttrType.NEXT_HOP:
        if (len !== 4) malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, 'NEXT_HOP length is not 4');
        else a.nextHop = readIpv4(buf, vs);
        break;
      case AttrType.MED:
        if (len !== 4) malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, 'MULTI_EXIT_DISC length is not 4');
        else a.med = buf.readUInt32BE(vs);
        break;
      case AttrType.LOCAL_PREF:
        if (len !== 4) malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, 'LOCAL_PREF length is not 4');
        else a.localPref = buf.readUInt32BE(vs);
        break;
      case AttrType.ATOMIC_AGGREGATE:
        if (len !== 0) malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, 'ATOMIC_AGGREGATE length is not 0');
        else a.atomicAggregate = true;
        break;
      case AttrType.AGGREGATOR:
        if (len !== asSize + 4)
          malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `AGGREGATOR length is not ${asSize + 4}`);
        else if ((asSize === 4 ? buf.readUInt32BE(vs) : buf.readUInt16BE(vs)) === 0)
          malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'AGGREGATOR holds AS 0 (RFC 7607)');
        else
          a.aggregator = {
            asn: asSize === 4 ? buf.readUInt32BE(vs) : buf.readUInt16BE(vs),
            address: readIpv4(buf, vs + asSize),
          };
        break;
      case AttrType.AS4_AGGREGATOR:
        if (len !== 8) malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'AS4_AGGREGATOR length is not 8');
        else if (buf.readUInt32BE(vs) === 0)
          malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'AS4_AGGREGATOR holds AS 0 (RFC 7607)');
        else as4Aggregator = { asn: buf.readUInt32BE(vs), address: readIpv4(buf, vs + 4) };
        break;
      case AttrType.COMMUNITIES:
        if (len % 4 !== 0 || len === 0)
          malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'COMMUNITIES length is not a multiple of 4');
        else {
          const c = new Array<number>(len / 4);
          for (let i = 0; i < c.length; i++) c[i] = buf.readUInt32BE(vs + 4 * i);
          a.communities = c;
        }
        break;
      case AttrType.LARGE_COMMUNITY:
        if (len % 12 !== 0 || len === 0)
          malformed(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'LARGE_COMMUNITY length is not a multiple of 12');
        else {
          const c: [number, number, number][] = [];
          for (let p = vs; p < ve; p += 12)
            c.push([buf.readUInt32BE(p), buf.readUInt32BE(p + 4), buf.readUInt32BE(p + 8)]);
          a.largeCommunities = c;
        }
        break;
      case AttrType.ORIGINATOR_ID:
        if (len !== 4) malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, 'ORIGINATOR_ID length is not 4');
        else a.originatorId = readIpv4(buf, vs);
        break;
      case AttrType.CLUSTER_LIST:
        if (len % 4 !== 0 || len === 0)
          malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, 'CLUSTER_LIST length is not a multiple of 4');
        else {
          const c: string[] = [];
          for (let p = vs; p < ve; p += 4) c.push(readIpv4(buf, p));
          a.clusterList = c;
        }
        break;
      case AttrType.MP_REACH_NLRI:
        out.mpReach = decodeMpReach(buf, vs, ve, data);
        break;
      case AttrType.MP_UNREACH_NLRI:
        out.mpUnreach = decodeMpUnreach(buf, vs, ve, data);
        break;
    }
  }

  if (ctx.fourOctetAs) {
    // RFC 6793 §4.2.2: a NEW speaker ignores AS4_PATH / AS4_AGGREGATOR from a NEW speaker.
  } else {
    let useAs4Path = as4Path !== undefined;
    if (as4Aggregator && a.aggregator) {
      if (a.aggregator.asn !== AS_TRANS) useAs4Path = false;
      else a.aggregator = as4Aggregator;
    }
    if (useAs4Path && as4Path && a.asPath) a.asPath = mergeAs4Path(a.asPath, as4Path);
  }

  const hasReach = hasIpv4Nlri || (out.mpReach !== undefined && out.mpReach.nlri.length > 0);
  if (hasReach && !out.treatAsWithdraw) {
    const missing =
      a.origin === undefined
        ? AttrType.ORIGIN
        : a.asPath === undefined
          ? AttrType.AS_PATH
          : hasIpv4Nlri && a.nextHop === undefined
            ? AttrType.NEXT_HOP
            : 0;
    if (missing) {
      soft(
        updateError(
          UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
          `missing well-known attribute ${missing}`,
          Buffer.from([missing]),
          'treat-as-withdraw',
        ),
      );
    }
  }
  out.attributes = { ...a, origin: a.origin ?? 2, asPath: a.asPath ?? [] } as PathAttributes;
  return out;
}

function decodeMpReach(buf: Buffer, vs: number, ve: number, data: Buffer): MpReach | undefined {
  const bad = (what: string) => updateError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, what, data);
  if (ve - vs < 5) throw bad('MP_REACH_NLRI too short');
  const afi = buf.readUInt16BE(vs);
  const safi = buf[vs + 2]!;
  const nhLen = buf[vs + 3]!;
  const nhStart = vs + 4;
  if (nhStart + nhLen + 1 > ve) throw bad('MP_REACH_NLRI next hop overruns the attribute');
  if (safi !== Safi.UNICAST || (afi !== Afi.IPV4 && afi !== Afi.IPV6)) return undefined; // not negotiated; ignored
  let nextHop: string;
  let linkLocalNextHop: string | undefined;
  if (afi === Afi.IPV6) {
    if (nhLen !== 16 && nhLen !== 32) throw bad(`MP_REACH_NLRI IPv6 next hop length ${nhLen}`);
    nextHop = formatIpv6(buf, nhStart);
    if (nhLen === 32) linkLocalNextHop = formatIpv6(buf, nhStart + 16);
  } else {
    if (nhLen !== 4) throw bad(`MP_REACH_NLRI IPv4 next hop length ${nhLen}`);
    nextHop = readIpv4(buf, nhStart);
  }
  const nlri: PrefixKey[] = [];
  decodePrefixes(buf, nhStart + nhLen + 1, ve, afi === Afi.IPV6 ? 6 : 4, nlri);
  return linkLocalNextHop ? { afi, safi, nextHop, linkLocalNextHop, nlri } : { afi, safi, nextHop, nlri };
}

function decodeMpUnreach(buf: Buffer, vs: number, ve: number, data: Buffer): MpUnreach | undefined {
  if (ve - vs < 3)
    throw updateError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'MP_UNREACH_NLRI too short', data);
  const afi = buf.readUInt16BE(vs);
  const safi = buf[vs + 2]!;
  if (safi !== Safi.UNICAST || (afi !== Afi.IPV4 && afi !== Afi.IPV6)) return undefined;
  const withdrawn: PrefixKey[] = [];
  decodePrefixes(buf, vs + 3, ve, afi === Afi.IPV6 ? 6 : 4, withdrawn);
  return { afi, safi, withdrawn };
}

// ---------------------------------------------------------------- encoding

export interface EncodeContext {
  readonly fourOctetAs: boolean;
}

function attr(flags: number, type: number, value: Buffer): Buffer {
  if (value.length > 255) {
    const h = Buffer.allocUnsafe(4);
    h[0] = flags | AttrFlag.EXTENDED_LENGTH;
    h[1] = type;
    h.writeUInt16BE(value.length, 2);
    return Buffer.concat([h, value]);
  }
  const h = Buffer.allocUnsafe(3 + value.length);
  h[0] = flags & ~AttrFlag.EXTENDED_LENGTH;
  h[1] = type;
  h[2] = value.length;
  value.copy(h, 3);
  return h;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const ipv4 = (s: string): Buffer => u32(parseIpv4(s));

function encodeAsPath(path: readonly AsPathSegment[], asSize: 2 | 4): Buffer {
  const parts: Buffer[] = [];
  for (const s of path) {
    for (let i = 0; i < s.asns.length; i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      const b = Buffer.allocUnsafe(2 + chunk.length * asSize);
      b[0] = s.type;
      b[1] = chunk.length;
      chunk.forEach((asn, j) => {
        if (asSize === 4) b.writeUInt32BE(asn, 2 + 4 * j);
        else b.writeUInt16BE(asn > 0xffff ? AS_TRANS : asn, 2 + 2 * j);
      });
      parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

const needsAs4 = (path: readonly AsPathSegment[]) => path.some((s) => s.asns.some((a) => a > 0xffff));

/**
 * Encodes the attributes (without MP_REACH/MP_UNREACH) in type order. `withNextHop` false
 * leaves NEXT_HOP out (routes carried only in MP_REACH_NLRI).
 */
export function encodePathAttributes(a: PathAttributes, ctx: EncodeContext, withNextHop: boolean): Buffer {
  const parts: Buffer[] = [];
  const asSize = ctx.fourOctetAs ? 4 : 2;
  parts.push(attr(WELL_KNOWN, AttrType.ORIGIN, Buffer.from([a.origin])));
  parts.push(attr(WELL_KNOWN, AttrType.AS_PATH, encodeAsPath(a.asPath, asSize)));
  // An IPv6 next hop only travels in MP_REACH_NLRI.
  if (withNextHop && a.nextHop !== undefined && !a.nextHop.includes(':')) {
    parts.push(attr(WELL_KNOWN, AttrType.NEXT_HOP, ipv4(a.nextHop)));
  }
  if (a.med !== undefined) parts.push(attr(OPT_NON_TRANSITIVE, AttrType.MED, u32(a.med)));
  if (a.localPref !== undefined) parts.push(attr(WELL_KNOWN, AttrType.LOCAL_PREF, u32(a.localPref)));
  if (a.atomicAggregate) parts.push(attr(WELL_KNOWN, AttrType.ATOMIC_AGGREGATE, Buffer.alloc(0)));
  if (a.aggregator) {
    const v = Buffer.allocUnsafe(asSize + 4);
    if (asSize === 4) v.writeUInt32BE(a.aggregator.asn);
    else v.writeUInt16BE(a.aggregator.asn > 0xffff ? AS_TRANS : a.aggregator.asn);
    v.writeUInt32BE(parseIpv4(a.aggregator.address), asSize);
    parts.push(attr(OPT_TRANSITIVE, AttrType.AGGREGATOR, v));
  }
  if (a.communities?.length)
    parts.push(attr(OPT_TRANSITIVE, AttrType.COMMUNITIES, Buffer.concat(a.communities.map(u32))));
  if (a.originatorId) parts.push(attr(OPT_NON_TRANSITIVE, AttrType.ORIGINATOR_ID, ipv4(a.originatorId)));
  if (a.clusterList?.length)
    parts.push(attr(OPT_NON_TRANSITIVE, AttrType.CLUSTER_LIST, Buffer.concat(a.clusterList.map(ipv4))));
  if (!ctx.fourOctetAs && needsAs4(a.asPath))
    parts.push(attr(OPT_TRANSITIVE, AttrType.AS4_PATH, encodeAsPath(a.asPath, 4)));
  if (!ctx.fourOctetAs && a.aggregator && a.aggregator.asn > 0xffff) {
    parts.push(
      attr(
        OPT_TRANSITIVE,
        AttrType.AS4_AGGREGATOR,
        Buffer.concat([u32(a.aggregator.asn), ipv4(a.aggregator.address)]),
      ),
    );
  }
  if (a.largeCommunities?.length) {
    parts.push(
      attr(
        OPT_TRANSITIVE,
        AttrType.LARGE_COMMUNITY,
        Buffer.concat(a.largeCommunities.flatMap((c) => c.map(u32))),
      ),
    );
  }
  for (const u of a.unknown ?? []) parts.push(attr(u.flags, u.type, u.value));
  return Buffer.concat(parts);
}

/** MP_REACH_NLRI header (afi, safi, next hop, reserved) with `nlri` bytes appended by the caller. */
export function encodeMpReachHeader(
  afi: number,
  nextHop: string,
  linkLocal: string | undefined,
  nlriLength: number,
): Buffer {
  const nh =
    afi === Afi.IPV6
      ? Buffer.concat([ipv6Bytes(nextHop), ...(linkLocal ? [ipv6Bytes(linkLocal)] : [])])
      : ipv4(nextHop);
  const valueLen = 5 + nh.length + nlriLength;
  const ext = valueLen > 255;
  const h = Buffer.allocUnsafe((ext ? 4 : 3) + 5 + nh.length);
  let o = 0;
  h[o++] = OPT_NON_TRANSITIVE | (ext ? AttrFlag.EXTENDED_LENGTH : 0);
  h[o++] = AttrType.MP_REACH_NLRI;
  if (ext) o = h.writeUInt16BE(valueLen, o);
  else h[o++] = valueLen;
  o = h.writeUInt16BE(afi, o);
  h[o++] = Safi.UNICAST;
  h[o++] = nh.length;
  nh.copy(h, o);
  o += nh.length;
  h[o++] = 0;
  return h;
}

export function encodeMpUnreachHeader(afi: number, withdrawnLength: number): Buffer {
  const valueLen = 3 + withdrawnLength;
  const ext = valueLen > 255;
  const h = Buffer.allocUnsafe((ext ? 4 : 3) + 3);
  let o = 0;
  h[o++] = OPT_NON_TRANSITIVE | (ext ? AttrFlag.EXTENDED_LENGTH : 0);
  h[o++] = AttrType.MP_UNREACH_NLRI;
  if (ext) o = h.writeUInt16BE(valueLen, o);
  else h[o++] = valueLen;
  o = h.writeUInt16BE(afi, o);
  h[o++] = Safi.UNICAST;
  return h;
}
