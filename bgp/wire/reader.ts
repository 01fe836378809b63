// A cursor over received bytes. Decoders check a field's length before reading it (each knows
// its wire layout), so the reads themselves do not re-check bounds against `end`.
import { formatIpv4, formatIpv6 } from './prefix.js';

export class Reader {
  constructor(
    readonly buf: Buffer,
    public off: number,
    public end: number,
  ) {}

  /** Moves the cursor to the field [start, end). */
  at(start: number, end: number): this {
    this.off = start;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.off;
  }

  u8(): number {
    return this.buf[this.off++]!;
  }

  u16(): number {
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }

  u32(): number {
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  /** A 2- or 4-octet AS number. */
  asn(size: 2 | 4): number {
    return size === 4 ? this.u32() : this.u16();
  }

  ipv4(): string {
    return formatIpv4(this.u32());
  }

  ipv6(): string {
    const s = formatIpv6(this.buf, this.off);
    this.off += 16;
    return s;
  }

  /** A copy of the next `n` bytes (the received chunk is reused by the framer). */
  copy(n: number): Buffer {
    const b = Buffer.from(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return b;
  }
}
