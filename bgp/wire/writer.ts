// A growing output buffer for encoders: fields are appended in wire order, lengths that are
// only known afterwards are patched in place (path attributes choose their length form then).
import { AttrFlag } from './constants.js';
import { ipv6Bytes, parseIpv4 } from './prefix.js';

export class Writer {
  private buf: Buffer;
  private off = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.off;
  }

  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.off++] = v;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.off = this.buf.writeUInt16BE(v, this.off);
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.off = this.buf.writeUInt32BE(v >>> 0, this.off);
    return this;
  }

  ipv4(text: string): this {
    return this.u32(parseIpv4(text));
  }

  ipv6(text: string): this {
    return this.bytes(ipv6Bytes(text));
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
    return this;
  }

  /** Overwrites the byte at `at` (a length known only once what follows it is written). */
  patchU8(at: number, v: number): this {
    this.buf[at] = v;
    return this;
  }

  /**
   * One path attribute: header, then the value `body` writes. The one-octet length is used when
   * the value fits in 255 bytes, the Extended Length form otherwise (the value is moved up a byte).
   */
  attribute(flags: number, type: number, body: (w: this) => void): this {
    const start = this.off;
    this.u8(flags & ~AttrFlag.EXTENDED_LENGTH)
      .u8(type)
      .u8(0);
    body(this);
    const len = this.off - start - 3;
    if (len <= 255) {
      this.buf[start + 2] = len;
      return this;
    }
    this.room(1);
    this.buf.copy(this.buf, start + 4, start + 3, this.off);
    this.off += 1;
    this.buf[start] = flags | AttrFlag.EXTENDED_LENGTH;
    this.buf.writeUInt16BE(len, start + 2);
    return this;
  }

  /** The bytes written, copied out (the writer may be reused). */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.off));
  }
}
