// PrefixMap (open addressing for IPv4, Map for IPv6) behaves exactly like a Map.
import { describe, expect, it } from 'vitest';
import { PrefixMap } from '../../../bgp/prefix-map.js';
import { ipv4Key, type PrefixKey } from '../../../bgp/wire/prefix.js';

describe('PrefixMap', () => {
  it('agrees with a Map over 50 000 random get/set/delete operations on both families (growth and tombstones included)', () => {
    const m = new PrefixMap<number>();
    const ref = new Map<PrefixKey, number>();
    const mismatches: string[] = [];
    let s = 7;
    const rnd = () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return s >>> 0;
    };
    for (let i = 0; i < 50_000; i++) {
      const len = rnd() % 33;
      const key: PrefixKey =
        i % 10 === 0
          ? `fd00::${(rnd() % 500).toString(16)}/128`
          : ipv4Key(len === 0 ? 0 : (rnd() >>> (32 - len)) * 2 ** (32 - len), len);
      const op = rnd() % 3;
      if (op === 0) {
        m.set(key, i);
        ref.set(key, i);
      } else if (op === 1) {
        if (m.delete(key) !== ref.delete(key)) mismatches.push(`delete ${key}`);
      } else if (m.get(key) !== ref.get(key) || m.has(key) !== ref.has(key)) {
        mismatches.push(`get ${key}`);
      }
      if (m.size !== ref.size) mismatches.push(`size after op ${i}`);
    }
    expect(mismatches).toEqual([]);
    expect(new Map(m.entries())).toEqual(ref);
    m.clear();
    expect(m.size).toBe(0);
    expect([...m.keys()]).toEqual([]);
  });
});
