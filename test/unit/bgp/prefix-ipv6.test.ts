// IPv6 NLRI decoding (a hot path, written without Buffer copies or arrays) against the model's
// independent CIDR formatting: same canonical RFC 5952 text for any prefix, host bits cleared.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCidr } from '../../../model/index.js';
import { decodePrefixes, formatIpv6 } from '../../../bgp/wire/prefix.js';

const toBigint = (bytes: Uint8Array) => bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);

describe('IPv6 prefix decoding', () => {
  it('gives the canonical text of the masked network for any 16 bytes and length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 128 }),
        (bytes, len) => {
          const nbytes = (len + 7) >> 3;
          const wire = Buffer.from([len, ...bytes.subarray(0, nbytes)]);
          const out: (string | number)[] = [];
          decodePrefixes(wire, 0, wire.length, 6, out);
          const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(128 - len);
          expect(out).toEqual([
            formatCidr({ family: 6, network: toBigint(bytes) & mask, prefixLength: len }),
          ]);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('formats addresses with zero runs the RFC 5952 way', () => {
    const text = (hex: string) => formatIpv6(Buffer.from(hex, 'hex'));
    expect(text('00000000000000000000000000000000')).toBe('::');
    expect(text('00000000000000000000000000000001')).toBe('::1');
    expect(text('fd000000000000000000000000000000')).toBe('fd00::');
    expect(text('20010db8000000010000000000000001')).toBe('2001:db8:0:1::1');
    expect(text('20010db8000000000001000000000001')).toBe('2001:db8::1:0:0:1');
    expect(text('20010db8000100010001000100010001')).toBe('2001:db8:1:1:1:1:1:1');
    expect(text('fe800000000000000000ffff0a000001')).toBe('fe80::ffff:a00:1');
  });
});
