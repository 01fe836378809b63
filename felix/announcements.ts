// What this node announces over BGP: its IPAM blocks, aggregated where sibling blocks
// combine into a shorter prefix, and the single addresses it borrowed from other nodes'
// blocks (as /32 or /128, which win over the owner's block by longest match).
import { formatCidr, hostCidr, parseCidr, parseIp, type Cidr } from '../model/index.js';

/** Merges sibling prefixes (two halves of one parent) repeatedly, and drops covered ones. */
export function aggregate(prefixes: readonly Cidr[]): Cidr[] {
  const byFamily = new Map<number, Cidr[]>();
  for (const p of prefixes) {
    const list = byFamily.get(p.family);
    if (list) list.push(p);
    else byFamily.set(p.family, [p]);
  }
  const out: Cidr[] = [];
  for (const list of byFamily.values()) {
    let current = removeCovered(list);
    for (;;) {
      const merged = mergeSiblingsOnce(current);
      if (merged.length === current.length) break;
      current = removeCovered(merged);
    }
    out.push(...current);
  }
  return out;
}

function sortKey(a: Cidr, b: Cidr): number {
  return a.network < b.network ? -1 : a.network > b.network ? 1 : a.prefixLength - b.prefixLength;
}

function removeCovered(list: readonly Cidr[]): Cidr[] {
  const sorted = [...list].sort(sortKey);
  const out: Cidr[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    const bits = p.family === 4 ? 32 : 128;
    if (
      last &&
      p.prefixLength >= last.prefixLength &&
      p.network >> BigInt(bits - last.prefixLength) === last.network >> BigInt(bits - last.prefixLength)
    ) {
      continue;
    }
    out.push(p);
  }
  return out;
}

function mergeSiblingsOnce(sorted: readonly Cidr[]): Cidr[] {
  const out: Cidr[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i]!;
    const q = sorted[i + 1];
    const bits = p.family === 4 ? 32 : 128;
    if (q && p.prefixLength > 0 && q.prefixLength === p.prefixLength) {
      const parentLen = p.prefixLength - 1;
      const half = 1n << BigInt(bits - p.prefixLength);
      const isLeftHalf = (p.network & half) === 0n;
      if (isLeftHalf && q.network === p.network + half) {
        out.push({ family: p.family, network: p.network, prefixLength: parentLen });
        i++;
        continue;
      }
    }
    out.push(p);
  }
  return out;
}

/**
 * Parsed CIDRs by text. A node's block list changes by one block at a time, so re-parsing every
 * block (ip-address is ~10 µs a parse) on each change would cost O(blocks) per new pod with
 * small blocks; cached, a change costs the new block's parse plus the bigint merge.
 */
const parsed = new Map<string, Cidr>();
function parseCached(text: string, host: boolean): Cidr {
  let c = parsed.get(text);
  if (!c) {
    if (parsed.size > 100_000) parsed.clear();
    c = host ? hostCidr(parseIp(text)) : parseCidr(text);
    parsed.set(text, c);
  }
  return c;
}

/** Prefixes (canonical strings) this node originates. */
export function announcements(blockCidrs: readonly string[], borrowedAddresses: readonly string[]): string[] {
  const blocks = aggregate(blockCidrs.map((c) => parseCached(c, false)));
  const borrowed = borrowedAddresses.map((a) => parseCached(a, true));
  return [...blocks, ...borrowed].sort(sortKey).map(formatCidr);
}
