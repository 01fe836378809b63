// Path attributes: the decoded shape and the decoder. Each attribute we know is one entry of
// ATTRIBUTES (its flags, its RFC 7606 action when malformed, one small decode function); the
// loop in decodePathAttributes handles what is common to all (header, overrun, duplicates,
// unknown attributes, flags) and turns a decoder's problem into the entry's action.
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
import { BgpError, type ErrorAction } from './errors.js';
import { decodePrefixes, type PrefixKey } from './prefix.js';
import { Reader } from './reader.js';

export interface AsPathSegment {
  readonly type: 1 | 2 | 3 | 4;
  readonly asns: readonly number[];
}

export interface UnknownAttribute {
  readonly flags: number;
  readonly type: number;
  readonly value: Buffer;
}

export interface Aggregator {
  readonly asn: number;
  readonly address: string;
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
  readonly aggregator?: Aggregator;
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

export const WELL_KNOWN = AttrFlag.TRANSITIVE;
export const OPT_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
export const OPT_NON_TRANSITIVE = AttrFlag.OPTIONAL;

type Mutable = { -readonly [K in keyof PathAttributes]?: PathAttributes[K] };

/** What one UPDATE's attribute decoders build up. */
interface DecodeState {
  readonly a: Mutable;
  readonly asSize: 2 | 4;
  as4Path?: AsPathSegment[];
  as4Aggregator?: Aggregator;
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
}

/** A decoder's finding: the UPDATE error subcode and what is wrong. */
type Problem = readonly [subcode: number, message: string];

interface AttributeSpec {
  readonly name: string;
  /** Expected Optional and Transitive bits. */
  readonly flags: number;
  /** RFC 7606 §7: what a malformed instance leads to. */
  readonly malformed: ErrorAction;
  /** Reads the value (the reader spans exactly it); returns a problem, or nothing when it is fine. */
  readonly decode: (r: Reader, st: DecodeState) => Problem | undefined;
}

const lengthIs = (r: Reader, n: number, name: string): Problem | undefined =>
  r.remaining === n ? undefined : [UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, `${name} length is not ${n}`];

/** AS_PATH / AS4_PATH segments; undefined when malformed, 'as0' when a segment holds AS 0 (RFC 7607). */
function readAsPath(r: Reader, asSize: 2 | 4): AsPathSegment[] | 'as0' | undefined {
  const segments: AsPathSegment[] = [];
  let hasAs0 = false;
  while (r.remaining > 0) {
    if (r.remaining < 2) return undefined;
    const type = r.u8();
    const count = r.u8();
    if (type < 1 || type > 4 || count === 0 || count * asSize > r.remaining) return undefined;
    const asns = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const asn = r.asn(asSize);
      if (asn === 0) hasAs0 = true;
      asns[i] = asn;
    }
    segments.push({ type: type as AsPathSegment['type'], asns });
  }
  return hasAs0 ? 'as0' : segments;
}

function readAggregator(r: Reader, asSize: 2 | 4, name: string, subcode: number): Aggregator | Problem {
  if (r.remaining !== asSize + 4) return [subcode, `${name} length is not ${asSize + 4}`];
  const asn = r.asn(asSize);
  if (asn === 0) return [UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `${name} holds AS 0 (RFC 7607)`];
  return { asn, address: r.ipv4() };
}

function readMpReach(r: Reader, st: DecodeState): Problem | undefined {
  const bad = (what: string): Problem => [UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, what];
  if (r.remaining < 5) return bad('MP_REACH_NLRI too short');
  const afi = r.u16();
  const safi = r.u8();
  const nhLen = r.u8();
  if (nhLen + 1 > r.remaining) return bad('MP_REACH_NLRI next hop overruns the attribute');
  if (safi !== Safi.UNICAST || (afi !== Afi.IPV4 && afi !== Afi.IPV6)) return undefined; // not negotiated; ignored
  let nextHop: string;
  let linkLocalNextHop: string | undefined;
  if (afi === Afi.IPV6) {
    if (nhLen !== 16 && nhLen !== 32) return bad(`MP_REACH_NLRI IPv6 next hop length ${nhLen}`);
    nextHop = r.ipv6();
    if (nhLen === 32) linkLocalNextHop = r.ipv6();
  } else {
    if (nhLen !== 4) return bad(`MP_REACH_NLRI IPv4 next hop length ${nhLen}`);
    nextHop = r.ipv4();
  }
  r.u8(); // reserved
  const nlri: PrefixKey[] = [];
  decodePrefixes(r.buf, r.off, r.end, afi === Afi.IPV6 ? 6 : 4, nlri);
  st.mpReach = linkLocalNextHop
    ? { afi, safi, nextHop, linkLocalNextHop, nlri }
    : { afi, safi, nextHop, nlri };
  return undefined;
}

function readMpUnreach(r: Reader, st: DecodeState): Problem | undefined {
  if (r.remaining < 3) return [UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'MP_UNREACH_NLRI too short'];
  const afi = r.u16();
  const safi = r.u8();
  if (safi !== Safi.UNICAST || (afi !== Afi.IPV4 && afi !== Afi.IPV6)) return undefined;
  const withdrawn: PrefixKey[] = [];
  decodePrefixes(r.buf, r.off, r.end, afi === Afi.IPV6 ? 6 : 4, withdrawn);
  st.mpUnreach = { afi, safi, withdrawn };
  return undefined;
}

/** A list of `size`-byte items, at least one. */
function readList<T>(
  r: Reader,
  size: number,
  name: string,
  subcode: number,
  item: (r: Reader) => T,
): T[] | Problem {
  if (r.remaining === 0 || r.remaining % size !== 0)
    return [subcode, `${name} length is not a multiple of ${size}`];
  const out = new Array<T>(r.remaining / size);
  for (let i = 0; i < out.length; i++) out[i] = item(r);
  return out;
}

const isProblem = (v: unknown): v is Problem =>
  Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string';

const ATTRIBUTES: Readonly<Record<number, AttributeSpec>> = {
  [AttrType.ORIGIN]: {
    name: 'ORIGIN',
    flags: WELL_KNOWN,
    malformed: 'treat-as-withdraw',
    decode(r, { a }) {
      const p = lengthIs(r, 1, 'ORIGIN');
      if (p) return p;
      const v = r.u8();
      if (v > 2) return [UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE, `ORIGIN ${v} is invalid`];
      a.origin = v as Origin;
      return undefined;
    },
  },
  [AttrType.AS_PATH]: {
    name: 'AS_PATH',
    flags: WELL_KNOWN,
    malformed: 'treat-as-withdraw',
    decode(r, st) {
      const p = readAsPath(r, st.asSize);
      if (!p) return [UpdateSubcode.MALFORMED_AS_PATH, 'malformed AS_PATH'];
      if (p === 'as0') return [UpdateSubcode.MALFORMED_AS_PATH, 'AS_PATH holds AS 0 (RFC 7607)'];
      st.a.asPath = p;
      return undefined;
    },
  },
  [AttrType.NEXT_HOP]: {
    name: 'NEXT_HOP',
    flags: WELL_KNOWN,
    malformed: 'treat-as-withdraw',
    decode(r, { a }) {
      const p = lengthIs(r, 4, 'NEXT_HOP');
      if (!p) a.nextHop = r.ipv4();
      return p;
    },
  },
  [AttrType.MED]: {
    name: 'MULTI_EXIT_DISC',
    flags: OPT_NON_TRANSITIVE,
    malformed: 'treat-as-withdraw',
    decode(r, { a }) {
      const p = lengthIs(r, 4, 'MULTI_EXIT_DISC');
      if (!p) a.med = r.u32();
      return p;
    },
  },
  [AttrType.LOCAL_PREF]: {
    name: 'LOCAL_PREF',
    flags: WELL_KNOWN,
    malformed: 'treat-as-withdraw',
    decode(r, { a }) {
      const p = lengthIs(r, 4, 'LOCAL_PREF');
      if (!p) a.localPref = r.u32();
      return p;
    },
  },
  [AttrType.ATOMIC_AGGREGATE]: {
    name: 'ATOMIC_AGGREGATE',
    flags: WELL_KNOWN,
    malformed: 'attribute-discard',
    decode(r, { a }) {
      const p = lengthIs(r, 0, 'ATOMIC_AGGREGATE');
      if (!p) a.atomicAggregate = true;
      return p;
    },
  },
  [AttrType.AGGREGATOR]: {
    name: 'AGGREGATOR',
    flags: OPT_TRANSITIVE,
    malformed: 'attribute-discard',
    decode(r, st) {
      const v = readAggregator(r, st.asSize, 'AGGREGATOR', UpdateSubcode.ATTRIBUTE_LENGTH_ERROR);
      if (isProblem(v)) return v;
      st.a.aggregator = v;
      return undefined;
    },
  },
  [AttrType.COMMUNITIES]: {
    name: 'COMMUNITIES',
    flags: OPT_TRANSITIVE,
    malformed: 'treat-as-withdraw',
    decode(r, { a }) {
      const v = readList(r, 4, 'COMMUNITIES', UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, (r) => r.u32());
      if (isProblem(v)) return v;
      a.communities = v;
      return undefined;
    },
  },
  [AttrType.ORIGINATOR_ID]: {
    name: 'ORIGINATOR_ID',
    flags: OPT_NON_TRANSITIVE,
    malformed: 'treat-as-withdraw',
    decode(r, { a }) {
      const p = lengthIs(r, 4, 'ORIGINATOR_ID');
      if (!p) a.originatorId = r.ipv4();
      return p;
    },
  },
  [AttrType.CLUSTER_LIST]: {
    name: 'CLUSTER_LIST',
    flags: OPT_NON_TRANSITIVE,
    malformed: 'treat-as-withdraw',
    decode(r, { a }) {
      const v = readList(r, 4, 'CLUSTER_LIST', UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, (r) => r.ipv4());
      if (isProblem(v)) return v;
      a.clusterList = v;
      return undefined;
    },
  },
  [AttrType.MP_REACH_NLRI]: {
    name: 'MP_REACH_NLRI',
    flags: OPT_NON_TRANSITIVE,
    malformed: 'session-reset',
    decode: readMpReach,
  },
  [AttrType.MP_UNREACH_NLRI]: {
    name: 'MP_UNREACH_NLRI',
    flags: OPT_NON_TRANSITIVE,
    malformed: 'session-reset',
    decode: readMpUnreach,
  },
  [AttrType.AS4_PATH]: {
    name: 'AS4_PATH',
    flags: OPT_TRANSITIVE,
    malformed: 'attribute-discard',
    decode(r, st) {
      const p = readAsPath(r, 4);
      if (!p) return [UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'malformed AS4_PATH'];
      if (p === 'as0') return [UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'AS4_PATH holds AS 0 (RFC 7607)'];
      st.as4Path = p;
      return undefined;
    },
  },
  [AttrType.AS4_AGGREGATOR]: {
    name: 'AS4_AGGREGATOR',
    flags: OPT_TRANSITIVE,
    malformed: 'attribute-discard',
    decode(r, st) {
      const v = readAggregator(r, 4, 'AS4_AGGREGATOR', UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR);
      if (isProblem(v)) return v;
      st.as4Aggregator = v;
      return undefined;
    },
  },
  [AttrType.LARGE_COMMUNITY]: {
    name: 'LARGE_COMMUNITY',
    flags: OPT_TRANSITIVE,
    malformed: 'treat-as-withdraw',
    decode(r, { a }) {
      const v = readList(
        r,
        12,
        'LARGE_COMMUNITY',
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
        (r): [number, number, number] => [r.u32(), r.u32(), r.u32()],
      );
      if (isProblem(v)) return v;
      a.largeCommunities = v;
      return undefined;
    },
  },
};

const updateError = (sub: number, message: string, data: Buffer, action: ErrorAction = 'session-reset') =>
  new BgpError(ErrorCode.UPDATE_MESSAGE, sub, message, Buffer.from(data), action);

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

/** RFC 6793 §4.2.3: a NEW speaker rebuilds the path of an OLD peer from AS4_PATH / AS4_AGGREGATOR. */
function reconcileAs4(st: DecodeState): void {
  const { a } = st;
  let useAs4Path = st.as4Path !== undefined;
  if (st.as4Aggregator && a.aggregator) {
    if (a.aggregator.asn !== AS_TRANS) useAs4Path = false;
    else a.aggregator = st.as4Aggregator;
  }
  if (useAs4Path && st.as4Path && a.asPath) a.asPath = mergeAs4Path(a.asPath, st.as4Path);
}

/** The well-known attribute an UPDATE announcing routes lacks, or 0. */
function missingWellKnown(a: Mutable, hasIpv4Nlri: boolean): number {
  if (a.origin === undefined) return AttrType.ORIGIN;
  if (a.asPath === undefined) return AttrType.AS_PATH;
  if (hasIpv4Nlri && a.nextHop === undefined) return AttrType.NEXT_HOP;
  return 0;
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
  const soft = (err: BgpError) => {
    out.errors.push(err);
    if (err.action === 'treat-as-withdraw') out.treatAsWithdraw = true;
  };
  if (start === end) {
    if (hasIpv4Nlri)
      soft(
        updateError(
          UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
          'missing ORIGIN',
          Buffer.from([1]),
          'treat-as-withdraw',
        ),
      );
    return out;
  }
  const st: DecodeState = { a: {}, asSize: ctx.fourOctetAs ? 4 : 2 };
  const seen = new Set<number>();
  const r = new Reader(buf, start, end);
  let off = start;
  while (off < end) {
    const attrStart = off;
    const flags = buf[off]!;
    const type = buf[off + 1]!;
    const extended = (flags & AttrFlag.EXTENDED_LENGTH) !== 0;
    if (end - off < (extended ? 4 : 3)) {
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
      const mp = type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI;
      const err = updateError(
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        `attribute ${type} overruns the attribute field`,
        buf.subarray(attrStart, end),
        mp ? 'session-reset' : 'treat-as-withdraw',
      );
      if (mp) throw err;
      soft(err);
      break;
    }
    off = ve;
    out.count++;
    const data = buf.subarray(attrStart, ve);
    const spec = ATTRIBUTES[type];

    if (seen.has(type)) {
      if (spec?.malformed === 'session-reset')
        throw updateError(
          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
          `duplicate attribute ${type}`,
          Buffer.alloc(0),
        );
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

    if (!spec) {
      if ((flags & AttrFlag.OPTIONAL) === 0)
        throw updateError(
          UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
          `unrecognized well-known attribute ${type}`,
          data,
        );
      if (flags & AttrFlag.TRANSITIVE) {
        const kept: UnknownAttribute = {
          flags: (flags | AttrFlag.PARTIAL) & ~AttrFlag.EXTENDED_LENGTH,
          type,
          value: r.at(vs, ve).copy(len),
        };
        st.a.unknown = [...(st.a.unknown ?? []), kept];
      }
      continue;
    }
    const problem: Problem | undefined =
      (flags & (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)) !== spec.flags
        ? [UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, `attribute ${type} has flags 0x${flags.toString(16)}`]
        : spec.decode(r.at(vs, ve), st);
    if (problem) {
      const err = updateError(problem[0], problem[1], data, spec.malformed);
      if (err.action === 'session-reset') throw err;
      soft(err);
    }
  }

  // RFC 6793 §4.2.2: a NEW speaker ignores AS4_PATH / AS4_AGGREGATOR from a NEW speaker.
  if (!ctx.fourOctetAs) reconcileAs4(st);
  if (st.mpReach) out.mpReach = st.mpReach;
  if (st.mpUnreach) out.mpUnreach = st.mpUnreach;

  const hasReach = hasIpv4Nlri || (st.mpReach !== undefined && st.mpReach.nlri.length > 0);
  const missing = hasReach && !out.treatAsWithdraw ? missingWellKnown(st.a, hasIpv4Nlri) : 0;
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
  out.attributes = { ...st.a, origin: st.a.origin ?? 2, asPath: st.a.asPath ?? [] } as PathAttributes;
  return out;
}
