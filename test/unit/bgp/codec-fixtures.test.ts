// Byte-level fixtures for every message and path attribute, and the NOTIFICATION / RFC 7606
// action each malformed input maps to.
import { describe, expect, it } from 'vitest';
import { type PathAttributes } from '../../../bgp/wire/attributes.js';
import { encodePathAttributes } from '../../../bgp/wire/attributes-encode.js';
import { BgpError } from '../../../bgp/wire/errors.js';
import {
  type OpenMessage,
  type UpdateMessage,
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  MessageFramer,
} from '../../../bgp/wire/messages.js';
import { formatPrefix, parsePrefix } from '../../../bgp/wire/prefix.js';

const MARKER = 'ff'.repeat(16);
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const len = (n: number) => n.toString(16).padStart(4, '0');
/** A whole message from its type and body hex. */
const msg = (type: number, body: string) => {
  const b = hex(body);
  return Buffer.concat([hex(MARKER + len(19 + b.length) + type.toString(16).padStart(2, '0')), b]);
};
/** An UPDATE from withdrawn, attribute and NLRI hex. */
const update = (withdrawn: string, attrs: string, nlri: string) => {
  const w = hex(withdrawn);
  const a = hex(attrs);
  return msg(2, len(w.length) + withdrawn + len(a.length) + attrs + nlri);
};
const FOUR = { fourOctetAs: true };
const TWO = { fourOctetAs: false };
const decodeUpdate = (b: Buffer, ctx = FOUR) => decodeMessage(b, ctx) as UpdateMessage;
const prefixes = (keys: readonly (number | string)[]) => keys.map(formatPrefix);

function bgpError(fn: () => unknown): BgpError {
  try {
    fn();
  } catch (err) {
    if (err instanceof BgpError) return err;
    throw new Error(`expected BgpError, got ${String(err)}`);
  }
  throw new Error('expected a BgpError, nothing thrown');
}

const ORIGIN_IGP = '40 01 01 00';
const AS_PATH_4 = '40 02 06 02 01 0000fde9'; // AS_SEQUENCE [65001]
const NEXT_HOP = '40 03 04 0a000001';

describe('message fixtures', () => {
  it('encodes and decodes KEEPALIVE as the 19-byte header', () => {
    expect(encodeKeepalive().toString('hex')).toBe(MARKER + '001304');
    expect(decodeMessage(encodeKeepalive(), FOUR)).toEqual({ type: 4 });
  });

  it('encodes OPEN with MP IPv4/IPv6, route refresh, 4-octet AS and graceful restart capabilities', () => {
    const open = encodeOpen({
      asn: 4200000001,
      holdTime: 90,
      routerId: '10.0.0.1',
      families: [
        { afi: 1, safi: 1 },
        { afi: 2, safi: 1 },
      ],
      gracefulRestart: {
        restartState: true,
        notification: false,
        restartTime: 120,
        families: [{ afi: 1, safi: 1, forwardingState: true }],
      },
    });
    const params =
      '0206 0104 00010001' + // MP IPv4 unicast
      '0206 0104 00020001' + // MP IPv6 unicast
      '0202 0200' + // route refresh
      '0202 4600' + // enhanced route refresh (RFC 7313)
      '0206 4104 fa56ea01' + // 4-octet AS 4200000001
      '0208 4006 8078 00010180'; // GR: R bit, 120 s, IPv4 unicast with F bit
    expect(open.toString('hex')).toBe(
      hex(
        MARKER +
          len(29 + hex(params).length) +
          '01' +
          '04 5ba0 005a 0a000001' +
          hex(params).length.toString(16).padStart(2, '0') +
          params,
      ).toString('hex'),
    );
    const d = decodeMessage(open, FOUR) as OpenMessage;
    expect(d).toMatchObject({ version: 4, myAs: 23456, holdTime: 90, routerId: '10.0.0.1' });
    expect(d.capabilities).toMatchObject({
      multiprotocol: [
        { afi: 1, safi: 1 },
        { afi: 2, safi: 1 },
      ],
      routeRefresh: true,
      enhancedRouteRefresh: true,
      fourOctetAs: 4200000001,
      gracefulRestart: {
        restartState: true,
        restartTime: 120,
        families: [{ afi: 1, safi: 1, forwardingState: true }],
      },
    });
  });

  it('ignores unknown capabilities in OPEN and keeps them for inspection', () => {
    const d = decodeMessage(msg(1, '04 fde9 0000 0a000002 08 0206 4704 deadbeef'), FOUR) as OpenMessage;
    expect(d.holdTime).toBe(0);
    expect(d.capabilities.unknown).toEqual([{ code: 0x47, value: hex('deadbeef') }]);
  });

  it('decodes an UPDATE with every well-known and common optional attribute', () => {
    const attrs =
      ORIGIN_IGP +
      AS_PATH_4 +
      NEXT_HOP +
      '80 04 04 00000064' + // MED 100
      '40 05 04 000000c8' + // LOCAL_PREF 200
      '40 06 00' + // ATOMIC_AGGREGATE
      'c0 07 08 0000fde9 0a000009' + // AGGREGATOR 65001 10.0.0.9
      'c0 08 08 fde90007 ffffff01' + // COMMUNITIES 65001:7 NO_EXPORT
      '80 09 04 0a000005' + // ORIGINATOR_ID
      '80 0a 08 01010101 02020202' + // CLUSTER_LIST
      'c0 20 0c 0000fde9 00000001 00000002'; // LARGE_COMMUNITY 65001:1:2
    const u = decodeUpdate(update('', attrs, '18 0a0100  10 0a02'));
    expect(u.errors).toEqual([]);
    expect(prefixes(u.nlri)).toEqual(['10.1.0.0/24', '10.2.0.0/16']);
    expect(u.attributes).toEqual({
      origin: 0,
      asPath: [{ type: 2, asns: [65001] }],
      nextHop: '10.0.0.1',
      med: 100,
      localPref: 200,
      atomicAggregate: true,
      aggregator: { asn: 65001, address: '10.0.0.9' },
      communities: [0xfde90007, 0xffffff01],
      originatorId: '10.0.0.5',
      clusterList: ['1.1.1.1', '2.2.2.2'],
      largeCommunities: [[65001, 1, 2]],
    });
    // Re-encoding gives the same attribute bytes (type order, same flags).
    expect(encodePathAttributes(u.attributes!, FOUR, true).toString('hex')).toBe(hex(attrs).toString('hex'));
  });

  it('decodes withdrawn routes and trims host bits of NLRI', () => {
    const u = decodeUpdate(update('18 0a0101 20 0a000001', '', ''));
    expect(prefixes(u.withdrawn)).toEqual(['10.1.1.0/24', '10.0.0.1/32']);
    const v = decodeUpdate(update('', ORIGIN_IGP + AS_PATH_4 + NEXT_HOP, '17 0a0101'));
    expect(prefixes(v.nlri)).toEqual(['10.1.0.0/23']);
  });

  it('decodes MP_REACH_NLRI (IPv6, global + link-local next hop) and MP_UNREACH_NLRI', () => {
    const mpReach =
      '80 0e 35 0002 01 20 fd000000000000000000000000000001 fe800000000000000000000000000001 00 40 fd00000000000001 30 fd0000000002';
    const u = decodeUpdate(update('', ORIGIN_IGP + AS_PATH_4 + mpReach, ''));
    expect(u.errors).toEqual([]);
    expect(u.mpReach).toEqual({
      afi: 2,
      safi: 1,
      nextHop: 'fd00::1',
      linkLocalNextHop: 'fe80::1',
      nlri: ['fd00:0:0:1::/64', 'fd00:0:2::/48'],
    });
    const w = decodeUpdate(update('', '80 0f 0c 0002 01 40 fd00000000000001', ''));
    expect(w.mpUnreach).toEqual({ afi: 2, safi: 1, withdrawn: ['fd00:0:0:1::/64'] });
    expect(w.endOfRib).toBeUndefined();
  });

  it('recognizes End-of-RIB for IPv4 (empty UPDATE) and IPv6 (empty MP_UNREACH)', () => {
    expect(encodeEndOfRib({ afi: 1, safi: 1 }).toString('hex')).toBe(MARKER + '0017020000' + '0000');
    expect(decodeUpdate(encodeEndOfRib({ afi: 1, safi: 1 })).endOfRib).toEqual({ afi: 1, safi: 1 });
    expect(encodeEndOfRib({ afi: 2, safi: 1 }).toString('hex')).toBe(
      MARKER + '001d02' + '0000' + '0006' + '800f03000201',
    );
    expect(decodeUpdate(encodeEndOfRib({ afi: 2, safi: 1 })).endOfRib).toEqual({ afi: 2, safi: 1 });
  });

  it('reconciles AS4_PATH and AS4_AGGREGATOR from a 2-octet-AS peer (RFC 6793)', () => {
    const attrs =
      ORIGIN_IGP +
      '40 02 06 02 02 fde9 5ba0' + // AS_PATH [65001, AS_TRANS]
      NEXT_HOP +
      'c0 07 06 5ba0 0a000009' + // AGGREGATOR AS_TRANS
      'c0 11 06 02 01 fa56ea00' + // AS4_PATH [4200000000]
      'c0 12 08 fa56ea00 0a000009'; // AS4_AGGREGATOR
    const u = decodeUpdate(update('', attrs, '08 0a'), TWO);
    expect(u.attributes?.asPath).toEqual([{ type: 2, asns: [65001, 4200000000] }]);
    expect(u.attributes?.aggregator).toEqual({ asn: 4200000000, address: '10.0.0.9' });
    // Towards a 2-octet peer we send AS_TRANS plus AS4_PATH / AS4_AGGREGATOR.
    const a: PathAttributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [65001, 4200000000] }],
      aggregator: { asn: 4200000000, address: '10.0.0.9' },
    };
    const enc = encodePathAttributes(a, TWO, false).toString('hex');
    expect(enc).toContain(hex('40 02 06 02 02 fde9 5ba0').toString('hex'));
    expect(enc).toContain(hex('c0 11 0a 02 02 0000fde9 fa56ea00').toString('hex'));
    expect(enc).toContain(hex('c0 12 08 fa56ea00 0a000009').toString('hex'));
  });

  it('keeps an unknown optional transitive attribute with the Partial bit set, and drops unknown non-transitive ones', () => {
    const u = decodeUpdate(
      update('', ORIGIN_IGP + AS_PATH_4 + NEXT_HOP + 'c0 63 02 abcd' + '80 64 01 ff', '08 0a'),
    );
    expect(u.attributes?.unknown).toEqual([{ flags: 0xe0, type: 0x63, value: hex('abcd') }]);
    expect(encodePathAttributes(u.attributes!, FOUR, true).toString('hex')).toContain('e06302abcd');
  });

  it('reads and writes the extended-length form for attributes over 255 bytes', () => {
    const communities = Array.from({ length: 70 }, (_, i) => 0xfde90000 + i);
    const enc = encodePathAttributes({ origin: 0, asPath: [], communities }, FOUR, false);
    expect(enc.toString('hex')).toContain('d0080118'); // flags 0xd0 (ext), type 8, length 280
    const u = decodeUpdate(encodeUpdate(Buffer.alloc(0), Buffer.concat([enc, hex(NEXT_HOP)]), hex('08 0a')));
    expect(u.attributes?.communities).toEqual(communities);
  });

  it('encodes and decodes NOTIFICATION and ROUTE-REFRESH', () => {
    expect(encodeNotification(6, 2, hex('0474657374')).toString('hex')).toBe(
      MARKER + '001a03' + '0602' + '0474657374',
    );
    expect(decodeMessage(encodeNotification(6, 2), FOUR)).toEqual({
      type: 3,
      code: 6,
      subcode: 2,
      data: Buffer.alloc(0),
    });
    expect(encodeRouteRefresh(2, 1).toString('hex')).toBe(MARKER + '001705' + '00020001');
    expect(decodeMessage(encodeRouteRefresh(2, 1), FOUR)).toEqual({ type: 5, afi: 2, safi: 1, subtype: 0 });
  });

  it('frames a stream split at arbitrary points into whole messages', () => {
    const stream = Buffer.concat([encodeKeepalive(), encodeRouteRefresh(1, 1), encodeNotification(6, 4)]);
    for (let cut = 1; cut < stream.length; cut++) {
      const out: number[] = [];
      const f = new MessageFramer();
      f.push(stream.subarray(0, cut), (m) => out.push(m[18]!));
      f.push(stream.subarray(cut), (m) => out.push(m[18]!));
      expect(out).toEqual([4, 5, 3]);
    }
  });

  it('parses prefixes of both families to compact keys and back', () => {
    expect(formatPrefix(parsePrefix('10.1.2.0/24'))).toBe('10.1.2.0/24');
    expect(formatPrefix(parsePrefix('0.0.0.0/0'))).toBe('0.0.0.0/0');
    expect(formatPrefix(parsePrefix('255.255.255.255/32'))).toBe('255.255.255.255/32');
    expect(formatPrefix(parsePrefix('fd00:0:0:0::/64'))).toBe('fd00::/64');
  });
});

describe('malformed messages map to the right NOTIFICATION and RFC 7606 action', () => {
  const cases: [string, Buffer, number, number, string][] = [
    ['bad marker', Buffer.concat([hex('00'), encodeKeepalive().subarray(1)]), 1, 1, 'session-reset'],
    ['KEEPALIVE with a body', msg(4, '00'), 1, 2, 'session-reset'],
    ['length below the minimum for OPEN', msg(1, '04'), 1, 2, 'session-reset'],
    ['unknown message type', msg(9, ''), 1, 3, 'session-reset'],
    ['OPEN version 3', msg(1, '03 fde9 005a 0a000001 00'), 2, 1, 'session-reset'],
    ['OPEN hold time 2', msg(1, '04 fde9 0002 0a000001 00'), 2, 6, 'session-reset'],
    ['OPEN BGP identifier 0', msg(1, '04 fde9 005a 00000000 00'), 2, 3, 'session-reset'],
    ['OPEN optional parameter type 1', msg(1, '04 fde9 005a 0a000001 03 0101 00'), 2, 4, 'session-reset'],
    ['ROUTE-REFRESH with a bad length', msg(5, '00010001 00'), 7, 1, 'session-reset'],
    ['withdrawn length overruns the UPDATE', msg(2, '0009 0000'), 3, 1, 'session-reset'],
    [
      'NLRI prefix length 33',
      update('', ORIGIN_IGP + AS_PATH_4 + NEXT_HOP, '21 0a000000 00'),
      3,
      10,
      'session-reset',
    ],
    [
      'unrecognized well-known attribute',
      update('', ORIGIN_IGP + AS_PATH_4 + NEXT_HOP + '40 63 00', '08 0a'),
      3,
      2,
      'session-reset',
    ],
    ['duplicate MP_REACH_NLRI', update('', '80 0f 03 000101 80 0f 03 000101', ''), 3, 1, 'session-reset'],
    [
      'MP_REACH_NLRI with a 5-byte IPv4 next hop',
      update('', ORIGIN_IGP + AS_PATH_4 + '80 0e 0b 0001 01 05 0a00000101 00 08 0a', ''),
      3,
      9,
      'session-reset',
    ],
  ];
  for (const [what, bytes, code, subcode, action] of cases) {
    it(`${what} → ${code}/${subcode} ${action}`, () => {
      const e = bgpError(() => decodeMessage(bytes, FOUR));
      expect([e.errorCode, e.errorSubcode, e.action]).toEqual([code, subcode, action]);
    });
  }

  const soft: [string, string, number, string][] = [
    ['ORIGIN value 5', '40 01 01 05' + AS_PATH_4 + NEXT_HOP, 6, 'treat-as-withdraw'],
    ['ORIGIN marked optional', '80 01 01 00' + AS_PATH_4 + NEXT_HOP, 4, 'treat-as-withdraw'],
    ['NEXT_HOP of 5 bytes', ORIGIN_IGP + AS_PATH_4 + '40 03 05 0a00000101', 5, 'treat-as-withdraw'],
    ['AS_PATH segment overrun', ORIGIN_IGP + '40 02 04 02 02 0000' + NEXT_HOP, 11, 'treat-as-withdraw'],
    ['COMMUNITIES of 3 bytes', ORIGIN_IGP + AS_PATH_4 + NEXT_HOP + 'c0 08 03 000001', 9, 'treat-as-withdraw'],
    ['missing NEXT_HOP', ORIGIN_IGP + AS_PATH_4, 3, 'treat-as-withdraw'],
    [
      'attribute overrunning the attribute field',
      ORIGIN_IGP + AS_PATH_4 + '40 03 09 0a000001',
      5,
      'treat-as-withdraw',
    ],
    [
      'ATOMIC_AGGREGATE with a body',
      ORIGIN_IGP + AS_PATH_4 + NEXT_HOP + '40 06 01 00',
      5,
      'attribute-discard',
    ],
    ['AGGREGATOR of 3 bytes', ORIGIN_IGP + AS_PATH_4 + NEXT_HOP + 'c0 07 03 000000', 5, 'attribute-discard'],
    [
      'duplicate MED',
      ORIGIN_IGP + AS_PATH_4 + NEXT_HOP + '80 04 04 00000001 80 04 04 00000002',
      1,
      'attribute-discard',
    ],
  ];
  for (const [what, attrs, subcode, action] of soft) {
    it(`${what} → 3/${subcode} ${action}, session kept`, () => {
      const u = decodeUpdate(update('', attrs, '08 0a'));
      expect(u.errors.map((e) => [e.errorCode, e.errorSubcode, e.action])).toContainEqual([
        3,
        subcode,
        action,
      ]);
      expect(u.treatAsWithdraw).toBe(action === 'treat-as-withdraw');
      expect(prefixes(u.nlri)).toEqual(['10.0.0.0/8']);
    });
  }

  it('keeps the first of duplicate attributes and the rest of an UPDATE whose ATOMIC_AGGREGATE is discarded', () => {
    const u = decodeUpdate(
      update(
        '',
        ORIGIN_IGP + AS_PATH_4 + NEXT_HOP + '80 04 04 00000001 80 04 04 00000002 40 06 01 00',
        '08 0a',
      ),
    );
    expect(u.attributes).toMatchObject({ med: 1, nextHop: '10.0.0.1' });
    expect(u.attributes?.atomicAggregate).toBeUndefined();
  });
});

describe('messages other implementations send (issue 20)', () => {
  it('recognizes an IPv6 End-of-RIB whose empty MP_UNREACH_NLRI uses the two-octet Extended Length (RFC 4724)', () => {
    // flags 0x90 = optional + extended length, type 15, length 0x0003, AFI 2, SAFI 1: 7 attribute bytes.
    const eor = update('', '90 0f 0003 0002 01', '');
    expect(eor.length).toBe(19 + 4 + 7);
    expect(decodeUpdate(eor).endOfRib).toEqual({ afi: 2, safi: 1 });
    // The same attribute next to another one is an ordinary (empty) withdrawal, not End-of-RIB.
    expect(decodeUpdate(update('', ORIGIN_IGP + '90 0f 0003 0002 01', '')).endOfRib).toBeUndefined();
    // And one that withdraws a prefix is not End-of-RIB either.
    const w = decodeUpdate(update('', '90 0f 0006 0002 01 10 fd00', ''));
    expect(w.endOfRib).toBeUndefined();
    expect(prefixes(w.mpUnreach!.withdrawn)).toEqual(['fd00::/16']);
  });

  it('discards AS_CONFED segments of AS4_PATH when merging it into AS_PATH, and keeps those of AS_PATH (RFC 6793 §6)', () => {
    const attrs =
      ORIGIN_IGP +
      '40 02 0a 03 01 fde8 02 02 fde9 5ba0' + // AS_PATH: CONFED_SEQUENCE [65000], SEQUENCE [65001, AS_TRANS]
      NEXT_HOP +
      'c0 11 0c 03 01 0000fdea 02 01 fa56ea00'; // AS4_PATH: CONFED_SEQUENCE [65002], SEQUENCE [4200000000]
    const u = decodeUpdate(update('', attrs, '08 0a'), TWO);
    expect(u.errors).toEqual([]);
    expect(u.attributes?.asPath).toEqual([
      { type: 3, asns: [65000] },
      { type: 2, asns: [65001, 4200000000] },
    ]);
    expect(u.attributes?.asPath.flatMap((s) => s.asns)).not.toContain(65002);
  });

  it('treats AS 0 in AS_PATH as withdraw, and discards AS4_PATH, AGGREGATOR, AS4_AGGREGATOR holding AS 0 (RFC 7607)', () => {
    const asPath0 = decodeUpdate(
      update('', ORIGIN_IGP + '40 02 0a 02 02 0000fde9 00000000' + NEXT_HOP, '08 0a'),
    );
    expect(asPath0.treatAsWithdraw).toBe(true);
    expect(asPath0.errors.map((e) => [e.errorCode, e.errorSubcode, e.action])).toEqual([
      [3, 11, 'treat-as-withdraw'],
    ]);
    const twoOctet0 = decodeUpdate(update('', ORIGIN_IGP + '40 02 04 02 01 0000' + NEXT_HOP, '08 0a'), TWO);
    expect(twoOctet0.treatAsWithdraw).toBe(true);

    // AS4_PATH [0] from a 2-octet peer: the attribute goes, the route stays with AS_PATH as sent.
    const as4Path0 = decodeUpdate(
      update('', ORIGIN_IGP + '40 02 04 02 01 5ba0' + NEXT_HOP + 'c0 11 06 02 01 00000000', '08 0a'),
      TWO,
    );
    expect(as4Path0.treatAsWithdraw).toBe(false);
    expect(as4Path0.errors.map((e) => [e.errorSubcode, e.action])).toEqual([[9, 'attribute-discard']]);
    expect(as4Path0.attributes?.asPath).toEqual([{ type: 2, asns: [23456] }]);

    const aggregator0 = decodeUpdate(
      update('', ORIGIN_IGP + AS_PATH_4 + NEXT_HOP + 'c0 07 08 00000000 0a000009', '08 0a'),
    );
    expect(aggregator0.treatAsWithdraw).toBe(false);
    expect(aggregator0.errors.map((e) => [e.errorSubcode, e.action])).toEqual([[9, 'attribute-discard']]);
    expect(aggregator0.attributes?.aggregator).toBeUndefined();
    expect(prefixes(aggregator0.nlri)).toEqual(['10.0.0.0/8']);

    const as4Aggregator0 = decodeUpdate(
      update(
        '',
        ORIGIN_IGP + '40 02 04 02 01 5ba0' + NEXT_HOP + 'c0 07 06 5ba0 0a000009 c0 12 08 00000000 0a000009',
        '08 0a',
      ),
      TWO,
    );
    expect(as4Aggregator0.errors.map((e) => [e.errorSubcode, e.action])).toEqual([[9, 'attribute-discard']]);
    expect(as4Aggregator0.attributes?.aggregator).toEqual({ asn: 23456, address: '10.0.0.9' });
  });

  it('ignores a known capability with an unexpected length (Route Refresh with two padding bytes) instead of failing the OPEN', () => {
    const open = decodeMessage(
      // version 4, AS 65001, hold 90, id 10.0.0.2, 20 bytes of parameters:
      msg(1, '04 fde9 005a 0a000002 14' + '0206 0104 00010001' + '0204 0202 0000' + '0204 4602 0000'),
      FOUR,
    ) as OpenMessage;
    expect(open.capabilities.multiprotocol).toEqual([{ afi: 1, safi: 1 }]);
    expect(open.capabilities.routeRefresh).toBe(false);
    expect(open.capabilities.enhancedRouteRefresh).toBe(false);
    expect(open.capabilities.ignored).toEqual([
      { code: 2, length: 2 },
      { code: 70, length: 2 },
    ]);
    // The other known capabilities are checked the same way rather than thrown on.
    const bad = decodeMessage(
      msg(1, '04 fde9 005a 0a000002 0a' + '0203 0101 00' + '0203 4001 00'),
      FOUR,
    ) as OpenMessage;
    expect(bad.capabilities.ignored).toEqual([
      { code: 1, length: 1 },
      { code: 64, length: 1 },
    ]);
    expect(bad.capabilities.gracefulRestart).toBeUndefined();
  });
});
