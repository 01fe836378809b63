import { describe, expect, it } from 'vitest';
import {
  ValidationError,
  addressAt,
  addresses,
  containsCidr,
  containsIp,
  formatCidr,
  formatIp,
  lastAddress,
  offsetOf,
  overlaps,
  parseCidr,
  parseIp,
  size,
  split,
} from '../../../model/index.js';

const c = (text: string) => parseCidr(text);
const ip = (text: string) => parseIp(text);

describe('parseCidr / formatCidr', () => {
  it.each<[string, string, bigint]>([
    ['0.0.0.0/0', '0.0.0.0/0', 1n << 32n],
    ['10.0.0.0/8', '10.0.0.0/8', 1n << 24n],
    ['192.168.1.7/32', '192.168.1.7/32', 1n],
    ['::/0', '::/0', 1n << 128n],
    ['fd00::/64', 'fd00::/64', 1n << 64n],
    ['fd00:0:0:0::1/128', 'fd00::1/128', 1n],
    ['FD00:AB::/32', 'fd00:ab::/32', 1n << 96n],
  ])('%s parses to %s with %s addresses', (text, canonical, n) => {
    expect(formatCidr(c(text))).toBe(canonical);
    expect(size(c(text))).toBe(n);
  });

  it.each([
    ['10.0.0.1/8', 'host bits'],
    ['192.168.1.1/31', 'host bits'],
    ['fd00::1/64', 'host bits'],
    ['10.0.0.0', 'missing /prefix'],
    ['10.0.0.0/33', 'invalid prefix length'],
    ['fd00::/129', 'invalid prefix length'],
    ['10.0.0.0/-1', 'invalid prefix length'],
    ['10.0.0.0/', 'invalid prefix length'],
    ['10.0.0.0/8/8', 'invalid prefix length'],
    ['10.0.0.0/ 8', 'invalid prefix length'],
    ['10.0.0/8', 'not an IP address'],
    ['256.0.0.0/8', 'not an IP address'],
    ['010.0.0.0/8', 'not an IP address'],
    ['fd00::zz/64', 'not an IP address'],
    ['fe80::%eth0/64', 'not an IP address'],
    ['/8', 'not an IP address'],
    ['', 'missing /prefix'],
  ])('rejects %j (%s) naming the field', (text, why) => {
    const err = (() => {
      try {
        parseCidr(text, 'spec.cidr');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('spec.cidr');
    expect((err as Error).message).toContain(why);
  });

  it('clears host bits when not strict', () => {
    expect(formatCidr(parseCidr('10.1.2.3/16', 'x', false))).toBe('10.1.0.0/16');
    expect(formatCidr(parseCidr('fd00::abcd/120', 'x', false))).toBe('fd00::ab00/120');
  });
});

describe('parseIp / formatIp', () => {
  it.each([
    ['10.1.2.3', 4, '10.1.2.3'],
    ['0.0.0.0', 4, '0.0.0.0'],
    ['255.255.255.255', 4, '255.255.255.255'],
    ['::', 6, '::'],
    ['fd00:0::0:1', 6, 'fd00::1'],
    ['::ffff:10.0.0.1', 6, '::ffff:a00:1'],
  ] as const)('%s is IPv%s, formatted %s', (text, family, formatted) => {
    const a = ip(text);
    expect(a.family).toBe(family);
    expect(formatIp(a)).toBe(formatted);
  });

  it.each(['10.0.0.0/8', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '', ' 10.0.0.1', 'fd00::1::2', 'localhost'])(
    'rejects %j',
    (text) => {
      expect(() => parseIp(text, 'peerIP')).toThrow(ValidationError);
    },
  );
});

describe('containment and overlap', () => {
  it.each<[string, string, boolean]>([
    ['0.0.0.0/0', '255.255.255.255', true],
    ['0.0.0.0/0', '::1', false],
    ['::/0', '10.0.0.1', false],
    ['::/0', 'ffff::1', true],
    ['10.0.0.0/24', '10.0.0.0', true],
    ['10.0.0.0/24', '10.0.0.255', true],
    ['10.0.0.0/24', '10.0.1.0', false],
    ['10.0.0.5/32', '10.0.0.5', true],
    ['10.0.0.5/32', '10.0.0.6', false],
    ['fd00::1/128', 'fd00::1', true],
    ['fd00::/64', 'fd00::ffff:ffff:ffff:ffff', true],
    ['fd00::/64', 'fd00:0:0:1::', false],
  ])('%s contains %s: %s', (cidr, addr, expected) => {
    expect(containsIp(c(cidr), ip(addr))).toBe(expected);
  });

  it.each<[string, string, boolean, boolean]>([
    // outer, inner, outer contains inner, overlaps
    ['10.0.0.0/8', '10.1.0.0/16', true, true],
    ['10.1.0.0/16', '10.0.0.0/8', false, true],
    ['10.0.0.0/16', '10.1.0.0/16', false, false],
    ['10.0.0.0/24', '10.0.0.0/24', true, true],
    ['0.0.0.0/0', '10.0.0.1/32', true, true],
    ['0.0.0.0/0', '::/0', false, false],
    ['::/0', '0.0.0.0/0', false, false],
    ['fd00::/8', 'fd12:3456::/32', true, true],
    ['fd00::/64', 'fd00:0:0:1::/64', false, false],
    ['::/0', 'fd00::1/128', true, true],
    ['10.0.0.0/31', '10.0.0.1/32', true, true],
  ])('%s ⊇ %s: %s, overlap: %s', (a, b, contains, overlap) => {
    expect(containsCidr(c(a), c(b))).toBe(contains);
    expect(overlaps(c(a), c(b))).toBe(overlap);
    expect(overlaps(c(b), c(a))).toBe(overlap);
  });
});

describe('split', () => {
  it('cuts an IPv4 pool into /26 blocks in address order', () => {
    const blocks = [...split(c('10.0.0.0/24'), 26)].map(formatCidr);
    expect(blocks).toEqual(['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26']);
  });

  it('cuts an IPv6 /120 into /122 blocks of 64 addresses', () => {
    const blocks = [...split(c('fd00:10::/120'), 122)];
    expect(blocks.map(formatCidr)).toEqual([
      'fd00:10::/122',
      'fd00:10::40/122',
      'fd00:10::80/122',
      'fd00:10::c0/122',
    ]);
    expect(blocks.every((b) => size(b) === 64n)).toBe(true);
  });

  it('cuts an IPv6 /64 lazily: the first and 1000th /122 blocks are where arithmetic says', () => {
    const it = split(c('fd00:1:2:3::/64'), 122);
    const first = it.next().value!;
    let nth = first;
    for (let i = 1; i < 1000; i++) nth = it.next().value!;
    expect(formatCidr(first)).toBe('fd00:1:2:3::/122');
    expect(nth.network - first.network).toBe(999n * 64n);
    expect(formatCidr(nth)).toBe('fd00:1:2:3::f9c0/122');
  });

  it('splits into itself and into /32 and /128 host blocks', () => {
    expect([...split(c('10.0.0.0/24'), 24)].map(formatCidr)).toEqual(['10.0.0.0/24']);
    expect([...split(c('10.0.0.4/30'), 32)].map(formatCidr)).toEqual([
      '10.0.0.4/32',
      '10.0.0.5/32',
      '10.0.0.6/32',
      '10.0.0.7/32',
    ]);
    expect([...split(c('fd00::/127'), 128)].map(formatCidr)).toEqual(['fd00::/128', 'fd00::1/128']);
  });

  it('splits /0 without overflow', () => {
    const blocks = split(c('0.0.0.0/0'), 1);
    expect([...blocks].map(formatCidr)).toEqual(['0.0.0.0/1', '128.0.0.0/1']);
    const v6 = split(c('::/0'), 1);
    expect([...v6].map(formatCidr)).toEqual(['::/1', '8000::/1']);
  });

  it.each<[string, number]>([
    ['10.0.0.0/24', 23],
    ['10.0.0.0/24', 33],
    ['fd00::/64', 129],
    ['fd00::/64', 63],
  ])('refuses to split %s into /%d', (cidr, len) => {
    expect(() => [...split(c(cidr), len)]).toThrow(ValidationError);
  });
});

describe('addresses, offsets, last address', () => {
  it('iterates every address of a /30 and of a /128', () => {
    expect([...addresses(c('10.0.0.4/30'))].map(formatIp)).toEqual([
      '10.0.0.4',
      '10.0.0.5',
      '10.0.0.6',
      '10.0.0.7',
    ]);
    expect([...addresses(c('fd00::5/128'))].map(formatIp)).toEqual(['fd00::5']);
  });

  it('maps offsets to addresses and back at the ends of the space', () => {
    const all4 = c('0.0.0.0/0');
    expect(formatIp(lastAddress(all4))).toBe('255.255.255.255');
    expect(formatIp(lastAddress(c('::/0')))).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
    const block = c('fd00::40/122');
    expect(formatIp(addressAt(block, 63))).toBe('fd00::7f');
    expect(offsetOf(block, ip('fd00::7f'))).toBe(63);
    expect(formatIp(lastAddress(block))).toBe('fd00::7f');
  });
});
