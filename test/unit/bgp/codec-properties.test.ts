// Property-based round trips (fast-check) and random / mutated input that must never make the
// decoder throw anything but a BgpError.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PathAttributes } from '../../../bgp/wire/attributes.js';
import { encodePathAttributes } from '../../../bgp/wire/attributes-encode.js';
import { BgpError } from '../../../bgp/wire/errors.js';
import {
  type OpenMessage,
  type UpdateMessage,
  MessageFramer,
  decodeMessage,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
} from '../../../bgp/wire/messages.js';
import {
  formatIpv4,
  ipv4Key,
  prefixWireLength,
  type PrefixKey,
  writePrefix,
} from '../../../bgp/wire/prefix.js';

const ipv4 = fc.integer({ min: 1, max: 0xffffffff }).map(formatIpv4);
const asn = fc.integer({ min: 1, max: 0xffffffff });
const segment = fc.record({
  type: fc.constantFrom(1 as const, 2 as const),
  asns: fc.array(asn, { minLength: 1, maxLength: 12 }),
});
const ipv4Prefix = fc
  .tuple(fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 0xffffffff }))
  .map(([len, n]) => ipv4Key(len === 0 ? 0 : n - (n % 2 ** (32 - len)), len));

const attributes: fc.Arbitrary<PathAttributes> = fc
  .record(
    {
      origin: fc.constantFrom(0 as const, 1 as const, 2 as const),
      asPath: fc.array(segment, { maxLength: 4 }),
      nextHop: ipv4,
      med: fc.integer({ min: 0, max: 0xffffffff }),
      localPref: fc.integer({ min: 0, max: 0xffffffff }),
      atomicAggregate: fc.constant(true),
      aggregator: fc.record({ asn, address: ipv4 }),
      communities: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 80 }),
      largeCommunities: fc.array(fc.tuple(asn, asn, asn), { minLength: 1, maxLength: 5 }),
      originatorId: ipv4,
      clusterList: fc.array(ipv4, { minLength: 1, maxLength: 4 }),
      unknown: fc.array(
        fc.record({
          flags: fc.constant(0xe0),
          type: fc.integer({ min: 100, max: 255 }),
          value: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
        }),
        { minLength: 1, maxLength: 2 },
      ),
    },
    { requiredKeys: ['origin', 'asPath', 'nextHop'] },
  )
  .map((a) => (a.unknown ? { ...a, unknown: dedupeTypes(a.unknown) } : a));

function dedupeTypes<T extends { type: number }>(xs: T[]): T[] {
  return xs.filter((x, i) => xs.findIndex((y) => y.type === x.type) === i);
}

function nlriBytes(prefixes: readonly PrefixKey[]): Buffer {
  const b = Buffer.alloc(prefixes.reduce<number>((n, p) => n + prefixWireLength(p), 0));
  let o = 0;
  for (const p of prefixes) o = writePrefix(p, b, o);
  return b;
}

const roundTrip = (a: PathAttributes, nlri: PrefixKey[], fourOctetAs: boolean) => {
  const bytes = encodeUpdate(
    Buffer.alloc(0),
    encodePathAttributes(a, { fourOctetAs }, true),
    nlriBytes(nlri),
  );
  return decodeMessage(bytes, { fourOctetAs }) as UpdateMessage;
};

describe('codec round trips (fast-check)', () => {
  it('decode(encode(update)) gives back the attributes and NLRI on 4-octet-AS sessions', () => {
    fc.assert(
      fc.property(attributes, fc.array(ipv4Prefix, { minLength: 1, maxLength: 50 }), (a, nlri) => {
        const u = roundTrip(a, nlri, true);
        expect(u.errors).toEqual([]);
        expect(u.nlri).toEqual(nlri);
        expect(u.attributes).toEqual(a);
      }),
      { numRuns: 300 },
    );
  });

  it('AS paths and aggregators with 4-octet ASes survive a 2-octet-AS session through AS4_PATH / AS4_AGGREGATOR', () => {
    const seqOnly = fc.array(
      fc.record({ type: fc.constant(2 as const), asns: fc.array(asn, { minLength: 1, maxLength: 10 }) }),
      { minLength: 1, maxLength: 3 },
    );
    fc.assert(
      fc.property(seqOnly, fc.record({ asn, address: ipv4 }), (asPath, aggregator) => {
        const a: PathAttributes = { origin: 0, asPath, nextHop: '10.0.0.1', aggregator };
        const u = roundTrip(a, [ipv4Key(0x0a000000, 8)], false);
        expect(u.errors).toEqual([]);
        expect(u.attributes?.asPath.flatMap((s) => s.asns)).toEqual(asPath.flatMap((s) => s.asns));
        expect(u.attributes?.aggregator).toEqual(aggregator);
      }),
      { numRuns: 300 },
    );
  });

  it('decode(encode(open)) gives back AS, hold time, router ID and capabilities', () => {
    fc.assert(
      fc.property(
        asn,
        fc.oneof(fc.constant(0), fc.integer({ min: 3, max: 65535 })),
        ipv4,
        fc.option(
          fc.record({
            restartState: fc.boolean(),
            notification: fc.boolean(),
            restartTime: fc.integer({ min: 0, max: 4095 }),
            families: fc.constant([{ afi: 1, safi: 1, forwardingState: true }]),
          }),
          { nil: undefined },
        ),
        (a, holdTime, routerId, gr) => {
          const m = decodeMessage(
            encodeOpen({
              asn: a,
              holdTime,
              routerId,
              families: [{ afi: 1, safi: 1 }],
              ...(gr ? { gracefulRestart: gr } : {}),
            }),
            { fourOctetAs: false },
          ) as OpenMessage;
          expect(m).toMatchObject({ holdTime, routerId, myAs: a > 0xffff ? 23456 : a });
          expect(m.capabilities.fourOctetAs).toBe(a);
          expect(m.capabilities.gracefulRestart).toEqual(gr);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Feeds `bytes` to the decoder; anything thrown but a BgpError fails the test. */
function decodeOrBgpError(bytes: Buffer, fourOctetAs: boolean): 'ok' | 'bgp-error' {
  try {
    new MessageFramer(0xffff).push(bytes, (m) => decodeMessage(m, { fourOctetAs }));
    decodeMessage(bytes, { fourOctetAs });
    return 'ok';
  } catch (err) {
    if (err instanceof BgpError) return 'bgp-error';
    throw new Error(`decoder threw ${String(err)} for ${bytes.toString('hex')}`, { cause: err });
  }
}

function mutate(seed: Buffer, rng: () => number): Buffer {
  const b = Buffer.from(seed);
  const n = 1 + Math.floor(rng() * 4);
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(rng() * b.length);
    switch (Math.floor(rng() * 4)) {
      case 0:
        b[pos] = Math.floor(rng() * 256);
        break;
      case 1:
        b[pos]! ^= 1 << Math.floor(rng() * 8);
        break;
      case 2:
        b[pos] = rng() < 0.5 ? 0 : 255;
        break;
      default:
        // Keep the header length consistent with a truncated body half of the time.
        return rng() < 0.5 ? b.subarray(0, Math.max(19, pos)) : b;
    }
  }
  return b;
}

describe('decoder robustness', () => {
  const seeds: Buffer[] = [
    encodeOpen({
      asn: 65001,
      holdTime: 90,
      routerId: '10.0.0.1',
      families: [
        { afi: 1, safi: 1 },
        { afi: 2, safi: 1 },
      ],
      gracefulRestart: {
        restartState: false,
        notification: true,
        restartTime: 120,
        families: [{ afi: 1, safi: 1, forwardingState: true }],
      },
    }),
    encodeNotification(6, 2, Buffer.from('bye')),
    encodeRouteRefresh(1, 1),
    encodeUpdate(
      Buffer.from('180a0101', 'hex'),
      encodePathAttributes(
        {
          origin: 0,
          asPath: [
            { type: 2, asns: [65001, 4200000000] },
            { type: 1, asns: [1, 2] },
          ],
          nextHop: '10.0.0.1',
          med: 5,
          localPref: 100,
          atomicAggregate: true,
          aggregator: { asn: 70000, address: '1.2.3.4' },
          communities: [1, 2],
          largeCommunities: [[1, 2, 3]],
          originatorId: '1.1.1.1',
          clusterList: ['2.2.2.2'],
          unknown: [{ flags: 0xe0, type: 99, value: Buffer.from('ab', 'hex') }],
        },
        { fourOctetAs: false },
        true,
      ),
      Buffer.from('180a0100100a02', 'hex'),
    ),
    encodeUpdate(
      Buffer.alloc(0),
      Buffer.from(
        (
          '40010100 400200' +
          '800e35 0002 01 20 fd000000000000000000000000000001 fe800000000000000000000000000001 00 40 fd00000000000001 30 fd0000000002' +
          '800f0c 0002 01 40 fd00000000000001'
        ).replace(/ /g, ''),
        'hex',
      ),
      Buffer.alloc(0),
    ),
  ];

  it('never throws anything but BgpError on 40 000 mutated messages (both AS sizes)', () => {
    let s = 0x2545f491;
    const rng = () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return (s >>> 0) / 0x100000000;
    };
    const outcomes = { ok: 0, 'bgp-error': 0 };
    for (let i = 0; i < 40_000; i++) {
      const seed = seeds[i % seeds.length]!;
      const m = mutate(seed, rng);
      // Fix up the header length half of the time so the body parsers are reached.
      if (m.length >= 19 && rng() < 0.5) m.writeUInt16BE(m.length, 16);
      outcomes[decodeOrBgpError(m, i % 2 === 0)]++;
    }
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes['bgp-error']).toBeGreaterThan(0);
  });

  it('never throws anything but BgpError on random bytes behind a valid marker (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.boolean(),
        (type, body, four) => {
          const header = Buffer.alloc(19, 0xff);
          header.writeUInt16BE(19 + body.length, 16);
          header[18] = type;
          decodeOrBgpError(Buffer.concat([header, Buffer.from(body)]), four);
        },
      ),
      { numRuns: 20_000 },
    );
  });
});

describe('fuzz seeds', () => {
  it('the IPv6 MP seed is itself a valid UPDATE', () => {
    const bytes = encodeUpdate(
      Buffer.alloc(0),
      Buffer.from(
        '4001010040020080' +
          '0e350002012' +
          '0fd000000000000000000000000000001fe80000000000000000000000000000100' +
          '40fd0000000000000130fd0000000002800f0c00020140fd00000000000001',
        'hex',
      ),
      Buffer.alloc(0),
    );
    const u = decodeMessage(bytes, { fourOctetAs: true }) as UpdateMessage;
    expect(u.errors).toEqual([]);
    expect(u.mpReach?.nlri).toHaveLength(2);
    expect(u.mpUnreach?.withdrawn).toHaveLength(1);
  });
});
