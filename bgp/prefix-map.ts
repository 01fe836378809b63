// A map keyed by PrefixKey. IPv4 keys (the bulk of any table) live in an open-addressing hash
// table over typed arrays: no heap object per key, one probe sequence per operation, and the
// slot found by the last get() is reused by a set()/delete() of the same key (the common
// read-modify-write of the RIB costs one probe). IPv6 keys use a plain Map.
import type { PrefixKey } from './wire/prefix.js';

const TWO32 = 4294967296;
const EMPTY = 255;
const TOMBSTONE = 254;
const MIN_BITS = 4;

export class PrefixMap<V> {
  private bits = MIN_BITS;
  private nets = new Int32Array(1 << MIN_BITS);
  private lens = new Uint8Array(1 << MIN_BITS).fill(EMPTY);
  private vals: (V | undefined)[] = new Array<V | undefined>(1 << MIN_BITS).fill(undefined);
  private used = 0; // live + tombstones
  private live4 = 0;
  private readonly v6 = new Map<string, V>();
  // Probe cache: the result of the last probe, valid while `cachedFor === key` and no resize.
  private cachedFor: number = -1;
  private cachedSlot = 0;
  private cachedFound = false;

  get size(): number {
    return this.live4 + this.v6.size;
  }

  /** Finds `key`: sets cachedSlot to its slot, or to the slot an insert should use. */
  private probe(key: number): void {
    if (this.cachedFor === key) return;
    const len = Math.floor(key / TWO32);
    const net = (key - len * TWO32) | 0;
    const mask = (1 << this.bits) - 1;
    // Same hash as in resize().
    let i = Math.imul(net ^ Math.imul(len + 1, 0x45d9f3b), 0x9e3779b1) >>> (32 - this.bits);
    let insertAt = -1;
    for (;;) {
      const l = this.lens[i]!;
      if (l === EMPTY) {
        this.cachedSlot = insertAt >= 0 ? insertAt : i;
        this.cachedFound = false;
        break;
      }
      if (l === TOMBSTONE) {
        if (insertAt < 0) insertAt = i;
      } else if (l === len && this.nets[i] === net) {
        this.cachedSlot = i;
        this.cachedFound = true;
        break;
      }
      i = (i + 1) & mask;
    }
    this.cachedFor = key;
  }

  get(key: PrefixKey): V | undefined {
    if (typeof key === 'string') return this.v6.get(key);
    this.probe(key);
    return this.cachedFound ? this.vals[this.cachedSlot] : undefined;
  }

  has(key: PrefixKey): boolean {
    if (typeof key === 'string') return this.v6.has(key);
    this.probe(key);
    return this.cachedFound;
  }

  set(key: PrefixKey, value: V): void {
    if (typeof key === 'string') {
      this.v6.set(key, value);
      return;
    }
    this.probe(key);
    const i = this.cachedSlot;
    if (this.cachedFound) {
      this.vals[i] = value;
      return;
    }
    const len = Math.floor(key / TWO32);
    if (this.lens[i] === EMPTY) this.used++;
    this.lens[i] = len;
    this.nets[i] = (key - len * TWO32) | 0;
    this.vals[i] = value;
    this.live4++;
    this.cachedFound = true;
    if (this.used * 4 > (1 << this.bits) * 3 - 4) this.resize();
  }

  delete(key: PrefixKey): boolean {
    if (typeof key === 'string') return this.v6.delete(key);
    this.probe(key);
    if (!this.cachedFound) return false;
    const i = this.cachedSlot;
    this.lens[i] = TOMBSTONE;
    this.vals[i] = undefined;
    this.live4--;
    this.cachedFor = -1;
    return true;
  }

  clear(): void {
    this.bits = MIN_BITS;
    this.nets = new Int32Array(1 << MIN_BITS);
    this.lens = new Uint8Array(1 << MIN_BITS).fill(EMPTY);
    this.vals = new Array<V | undefined>(1 << MIN_BITS).fill(undefined);
    this.used = this.live4 = 0;
    this.cachedFor = -1;
    this.v6.clear();
  }

  /** Grows (or just drops tombstones) keeping the load under ½ after the rebuild. */
  private resize(): void {
    const { nets, lens, vals } = this;
    let bits = MIN_BITS;
    while (1 << bits < this.live4 * 2 + 2) bits++;
    this.bits = bits;
    this.nets = new Int32Array(1 << bits);
    this.lens = new Uint8Array(1 << bits).fill(EMPTY);
    this.vals = new Array<V | undefined>(1 << bits).fill(undefined);
    this.used = this.live4 = 0;
    this.cachedFor = -1;
    const mask = (1 << bits) - 1;
    for (let i = 0; i < lens.length; i++) {
      const l = lens[i]!;
      if (l > 32) continue;
      const net = nets[i]!;
      let j = Math.imul(net ^ Math.imul(l + 1, 0x45d9f3b), 0x9e3779b1) >>> (32 - bits);
      while (this.lens[j] !== EMPTY) j = (j + 1) & mask;
      this.lens[j] = l;
      this.nets[j] = net;
      this.vals[j] = vals[i];
      this.live4++;
    }
    this.used = this.live4;
  }

  *entries(): IterableIterator<[PrefixKey, V]> {
    const { nets, lens, vals } = this;
    for (let i = 0; i < lens.length; i++) {
      const l = lens[i]!;
      if (l <= 32) yield [l * TWO32 + (nets[i]! >>> 0), vals[i] as V];
    }
    yield* this.v6.entries();
  }

  *keys(): IterableIterator<PrefixKey> {
    for (const [k] of this.entries()) yield k;
  }
}
