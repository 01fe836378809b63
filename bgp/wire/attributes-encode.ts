// Path attribute encoding for 2- and 4-octet AS peers (AS4_PATH / AS4_AGGREGATOR, RFC 6793),
// and the MP_REACH / MP_UNREACH headers the Adj-RIB-Out puts in front of its NLRI bytes.
import { AS_TRANS, Afi, AttrFlag, AttrType, Safi } from './constants.js';
import {
  type AsPathSegment,
  OPT_NON_TRANSITIVE,
  OPT_TRANSITIVE,
  type PathAttributes,
  WELL_KNOWN,
} from './attributes.js';
import { Writer } from './writer.js';

export interface EncodeContext {
  readonly fourOctetAs: boolean;
}

function writeAsPath(w: Writer, path: readonly AsPathSegment[], asSize: 2 | 4): void {
  for (const s of path) {
    for (let i = 0; i < s.asns.length; i += 255) {
      const n = Math.min(255, s.asns.length - i);
      w.u8(s.type).u8(n);
      for (let j = i; j < i + n; j++) {
        const asn = s.asns[j]!;
        if (asSize === 4) w.u32(asn);
        else w.u16(asn > 0xffff ? AS_TRANS : asn);
      }
    }
  }
}

const needsAs4 = (path: readonly AsPathSegment[]) => path.some((s) => s.asns.some((a) => a > 0xffff));

/**
 * Encodes the attributes (without MP_REACH/MP_UNREACH) in type order. `withNextHop` false
 * leaves NEXT_HOP out (routes carried only in MP_REACH_NLRI).
 */
export function encodePathAttributes(a: PathAttributes, ctx: EncodeContext, withNextHop: boolean): Buffer {
  const w = new Writer();
  const asSize = ctx.fourOctetAs ? 4 : 2;
  w.attribute(WELL_KNOWN, AttrType.ORIGIN, (w) => w.u8(a.origin));
  w.attribute(WELL_KNOWN, AttrType.AS_PATH, (w) => writeAsPath(w, a.asPath, asSize));
  // An IPv6 next hop only travels in MP_REACH_NLRI.
  if (withNextHop && a.nextHop !== undefined && !a.nextHop.includes(':'))
    w.attribute(WELL_KNOWN, AttrType.NEXT_HOP, (w) => w.ipv4(a.nextHop!));
  if (a.med !== undefined) w.attribute(OPT_NON_TRANSITIVE, AttrType.MED, (w) => w.u32(a.med!));
  if (a.localPref !== undefined) w.attribute(WELL_KNOWN, AttrType.LOCAL_PREF, (w) => w.u32(a.localPref!));
  if (a.atomicAggregate) w.attribute(WELL_KNOWN, AttrType.ATOMIC_AGGREGATE, () => {});
  const agg = a.aggregator;
  if (agg) {
    w.attribute(OPT_TRANSITIVE, AttrType.AGGREGATOR, (w) => {
      if (asSize === 4) w.u32(agg.asn);
      else w.u16(agg.asn > 0xffff ? AS_TRANS : agg.asn);
      w.ipv4(agg.address);
    });
  }
  if (a.communities?.length)
    w.attribute(OPT_TRANSITIVE, AttrType.COMMUNITIES, (w) => a.communities!.forEach((c) => w.u32(c)));
  if (a.originatorId) w.attribute(OPT_NON_TRANSITIVE, AttrType.ORIGINATOR_ID, (w) => w.ipv4(a.originatorId!));
  if (a.clusterList?.length)
    w.attribute(OPT_NON_TRANSITIVE, AttrType.CLUSTER_LIST, (w) => a.clusterList!.forEach((c) => w.ipv4(c)));
  if (!ctx.fourOctetAs && needsAs4(a.asPath))
    w.attribute(OPT_TRANSITIVE, AttrType.AS4_PATH, (w) => writeAsPath(w, a.asPath, 4));
  if (!ctx.fourOctetAs && agg && agg.asn > 0xffff)
    w.attribute(OPT_TRANSITIVE, AttrType.AS4_AGGREGATOR, (w) => w.u32(agg.asn).ipv4(agg.address));
  if (a.largeCommunities?.length) {
    w.attribute(OPT_TRANSITIVE, AttrType.LARGE_COMMUNITY, (w) =>
      a.largeCommunities!.forEach(([g, l1, l2]) => w.u32(g).u32(l1).u32(l2)),
    );
  }
  for (const u of a.unknown ?? []) w.attribute(u.flags, u.type, (w) => w.bytes(u.value));
  return w.toBuffer();
}

/** The header of an MP attribute whose value is `valueLength` bytes (the Extended Length form when > 255). */
function mpHeader(w: Writer, type: number, valueLength: number): void {
  if (valueLength > 255)
    w.u8(OPT_NON_TRANSITIVE | AttrFlag.EXTENDED_LENGTH)
      .u8(type)
      .u16(valueLength);
  else w.u8(OPT_NON_TRANSITIVE).u8(type).u8(valueLength);
}

/** MP_REACH_NLRI header (afi, safi, next hop, reserved) with `nlri` bytes appended by the caller. */
export function encodeMpReachHeader(
  afi: number,
  nextHop: string,
  linkLocal: string | undefined,
  nlriLength: number,
): Buffer {
  const nhLength = afi === Afi.IPV6 ? (linkLocal ? 32 : 16) : 4;
  const w = new Writer(32 + nhLength);
  mpHeader(w, AttrType.MP_REACH_NLRI, 5 + nhLength + nlriLength);
  w.u16(afi).u8(Safi.UNICAST).u8(nhLength);
  if (afi === Afi.IPV6) {
    w.ipv6(nextHop);
    if (linkLocal) w.ipv6(linkLocal);
  } else {
    w.ipv4(nextHop);
  }
  return w.u8(0).toBuffer();
}

export function encodeMpUnreachHeader(afi: number, withdrawnLength: number): Buffer {
  const w = new Writer(8);
  mpHeader(w, AttrType.MP_UNREACH_NLRI, 3 + withdrawnLength);
  return w.u16(afi).u8(Safi.UNICAST).toBuffer();
}
