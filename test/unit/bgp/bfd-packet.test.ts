// BFD Control packet codec (RFC 5880 §4.1): every field round-trips at its bounds, and each
// packet-level reception rule of §6.8.6 is a typed error naming the field.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BfdPacketError,
  BfdState,
  decodeBfdPacket,
  encodeBfdPacket,
  type BfdPacket,
} from '../../../bgp/bfd/packet.js';

const base: BfdPacket = {
  diagnostic: 0,
  state: BfdState.Down,
  poll: false,
  final: false,
  controlPlaneIndependent: false,
  demand: false,
  detectMult: 3,
  myDiscriminator: 0x01020304,
  yourDiscriminator: 0,
  desiredMinTxUs: 1_000_000,
  requiredMinRxUs: 300_000,
  requiredMinEchoRxUs: 0,
};

function fieldError(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof BfdPacketError) return err.field;
    throw err;
  }
  throw new Error('no error thrown');
}

describe('BFD packet codec', () => {
  it('encodes the RFC 5880 layout byte for byte', () => {
    const b = encodeBfdPacket({
      ...base,
      diagnostic: 3,
      state: BfdState.Up,
      poll: true,
      controlPlaneIndependent: true,
      demand: true,
      yourDiscriminator: 0xaabbccdd,
      requiredMinEchoRxUs: 50_000,
    });
    expect(b.toString('hex')).toBe(
      '23' + // version 1, diag 3
        'ea' + // Up (11) P=1 F=0 C=1 A=0 D=1 M=0
        '03' +
        '18' + // length 24
        '01020304' +
        'aabbccdd' +
        '000f4240' + // 1,000,000
        '000493e0' + // 300,000
        '0000c350', // 50,000
    );
  });

  it('round-trips every field over its whole range', () => {
    fc.assert(
      fc.property(
        fc.record({
          diagnostic: fc.integer({ min: 0, max: 31 }),
          state: fc.constantFrom(BfdState.AdminDown, BfdState.Down, BfdState.Init, BfdState.Up),
          pf: fc.constantFrom('none', 'poll', 'final'),
          controlPlaneIndependent: fc.boolean(),
          demand: fc.boolean(),
          detectMult: fc.integer({ min: 1, max: 255 }),
          myDiscriminator: fc.integer({ min: 1, max: 0xffffffff }),
          yourDiscriminator: fc.integer({ min: 0, max: 0xffffffff }),
          desiredMinTxUs: fc.integer({ min: 0, max: 0xffffffff }),
          requiredMinRxUs: fc.integer({ min: 0, max: 0xffffffff }),
          requiredMinEchoRxUs: fc.integer({ min: 0, max: 0xffffffff }),
          auth: fc.option(fc.uint8Array({ minLength: 0, maxLength: 22 })),
        }),
        ({ pf, auth, ...r }) => {
          const p: BfdPacket = {
            ...r,
            state: r.state as BfdState,
            poll: pf === 'poll',
            final: pf === 'final',
            ...(auth
              ? { authentication: { type: 2, data: Buffer.from([2, auth.length + 2, ...auth]) } }
              : {}),
          };
          expect(decodeBfdPacket(encodeBfdPacket(p))).toEqual(p);
        },
      ),
    );
  });

  it('ignores bytes after the Length field (UDP padding)', () => {
    const b = Buffer.concat([encodeBfdPacket(base), Buffer.alloc(8, 0xff)]);
    expect(decodeBfdPacket(b)).toEqual(base);
  });

  it('rejects short, mis-versioned, mis-sized and multipoint packets with the field named', () => {
    const good = encodeBfdPacket(base);
    const mutate = (i: number, v: number) => {
      const b = Buffer.from(good);
      b[i] = v;
      return b;
    };
    expect(fieldError(() => decodeBfdPacket(good.subarray(0, 23)))).toBe('length');
    expect(fieldError(() => decodeBfdPacket(mutate(0, 0x40)))).toBe('version'); // version 2
    expect(fieldError(() => decodeBfdPacket(mutate(0, 0x00)))).toBe('version'); // version 0
    expect(fieldError(() => decodeBfdPacket(mutate(3, 23)))).toBe('length'); // below 24
    expect(fieldError(() => decodeBfdPacket(mutate(3, 25)))).toBe('length'); // beyond the datagram
    expect(fieldError(() => decodeBfdPacket(mutate(2, 0)))).toBe('detectMult');
    expect(fieldError(() => decodeBfdPacket(mutate(1, 0x41)))).toBe('multipoint');
    expect(fieldError(() => decodeBfdPacket(mutate(1, 0x70)))).toBe('flags'); // P and F
    const zeroDisc = Buffer.from(good);
    zeroDisc.writeUInt32BE(0, 4);
    expect(fieldError(() => decodeBfdPacket(zeroDisc))).toBe('myDiscriminator');
  });

  it('rejects an A bit whose authentication section is missing or does not fill the packet', () => {
    const withA = Buffer.from(encodeBfdPacket(base));
    withA[1] = withA[1]! | 0x04;
    expect(fieldError(() => decodeBfdPacket(withA))).toBe('length'); // 24 < 26
    const auth = encodeBfdPacket({ ...base, authentication: { type: 1, data: Buffer.from([1, 4, 0, 0]) } });
    expect(decodeBfdPacket(auth).authentication?.type).toBe(1);
    const badLen = Buffer.from(auth);
    badLen[25] = 3; // section says 3, packet holds 4
    expect(fieldError(() => decodeBfdPacket(badLen))).toBe('authentication');
  });

  it('refuses to encode values outside their fields', () => {
    expect(fieldError(() => encodeBfdPacket({ ...base, diagnostic: 32 }))).toBe('diagnostic');
    expect(fieldError(() => encodeBfdPacket({ ...base, detectMult: 0 }))).toBe('detectMult');
    expect(fieldError(() => encodeBfdPacket({ ...base, detectMult: 256 }))).toBe('detectMult');
    expect(fieldError(() => encodeBfdPacket({ ...base, myDiscriminator: 0 }))).toBe('myDiscriminator');
    expect(fieldError(() => encodeBfdPacket({ ...base, desiredMinTxUs: 2 ** 32 }))).toBe('desiredMinTxUs');
    expect(fieldError(() => encodeBfdPacket({ ...base, requiredMinRxUs: -1 }))).toBe('requiredMinRxUs');
    expect(fieldError(() => encodeBfdPacket({ ...base, poll: true, final: true }))).toBe('flags');
  });
});
