// Read-only views over a set of blocks. Pure, so the agent can run them over its own watch
// cache as well as through Ipam (which lists first).
import { containsCidr, formatCidr, parseCidr, size, type IPAMBlock } from '../model/index.js';
import { blockCidr, capacity, isExpired, recordsOf, stateOf, usedCount } from './blocks.js';
import { blockCount, type PoolSet } from './pools.js';
import type { AllocationRecord, BindingRecord, PoolUsage } from './types.js';

function byAddress(a: string, b: string): number {
  const x = parseCidr(a.includes('/') ? a : `${a}/${a.includes(':') ? 128 : 32}`, 'cidr', false);
  const y = parseCidr(b.includes('/') ? b : `${b}/${b.includes(':') ? 128 : 32}`, 'cidr', false);
  if (x.family !== y.family) return x.family - y.family;
  return x.network < y.network ? -1 : x.network > y.network ? 1 : x.prefixLength - y.prefixLength;
}

/** CIDRs of the blocks affine to `node`: its blackhole routes and aggregate announcements. */
export function blocksOfNode(blocks: Iterable<IPAMBlock>, node: string): string[] {
  return [...blocks]
    .filter((b) => b.spec.affinity === node)
    .map((b) => b.spec.cidr)
    .sort(byAddress);
}

/** Allocations held for pods on `node`, in any block. */
export function allocationsOfNode(blocks: Iterable<IPAMBlock>, node: string): AllocationRecord[] {
  return [...blocks]
    .flatMap((b) => recordsOf(b).filter((r) => r.node === node))
    .sort((a, b) => byAddress(a.address, b.address));
}

/**
 * Addresses held for pods on `node` inside blocks not affine to it (borrowed, fixed addresses
 * in unclaimed blocks, identity-bound addresses that moved here): `node` announces each of
 * them as a /32 (/128). Plain addresses, as the agent's announcement builder takes them.
 */
export function borrowedByNode(blocks: Iterable<IPAMBlock>, node: string): string[] {
  return [...blocks]
    .filter((b) => b.spec.affinity !== node)
    .flatMap((b) => recordsOf(b).filter((r) => r.node === node))
    .map((r) => r.address)
    .sort(byAddress);
}

export function poolUsage(pools: PoolSet, blocks: Iterable<IPAMBlock>): PoolUsage[] {
  const all = [...blocks].map((b) => ({ b, c: blockCidr(b) }));
  return [...pools.pools, ...[...pools.shadowed.values()].map((s) => s.pool)]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((pool) => {
      const mine = pools.shadowed.has(pool.name) ? [] : all.filter(({ c }) => containsCidr(pool.cidr, c));
      let used = 0;
      let borrowed = 0;
      for (const { b } of mine) {
        used += usedCount(b);
        borrowed += Object.values(b.spec.allocations).filter(
          (a) => a.node !== undefined && a.node !== b.spec.affinity,
        ).length;
      }
      const total = Number(size(pool.cidr));
      return {
        pool: pool.name,
        cidr: formatCidr(pool.cidr),
        family: pool.family,
        disabled: pool.disabled,
        blockSize: pool.blockSize,
        blocks: {
          total: Number(blockCount(pool)),
          claimed: mine.filter(({ b }) => b.spec.affinity !== undefined).length,
          unclaimed: mine.filter(({ b }) => b.spec.affinity === undefined).length,
        },
        addresses: { total, used, free: total - used, borrowed },
      };
    });
}

/**
 * Free addresses left in a block (for the allocator's ordering); with `now`, expired sticky
 * holds count as free, as the allocator treats them.
 */
export function freeIn(b: IPAMBlock, now?: number): number {
  const used =
    now === undefined
      ? usedCount(b)
      : Object.values(b.spec.allocations).filter((a) => !isExpired(a, now)).length;
  return capacity(blockCidr(b)) - used;
}

/**
 * Identity-bound addresses (ordinal lists, reservations, sticky) and their state, by address.
 * A hold whose time has passed (`now`) is left out: it is free, the sweep just has not run.
 */
export function bindingsOf(blocks: Iterable<IPAMBlock>, now: number): BindingRecord[] {
  const out: BindingRecord[] = [];
  for (const b of blocks) {
    for (const [offset, a] of Object.entries(b.spec.allocations)) {
      if (a.binding !== 'identity' || !a.identity || isExpired(a, now)) continue;
      const r = recordsOf({ ...b, spec: { ...b.spec, allocations: { [offset]: a } } })[0]!;
      out.push({
        address: r.address,
        identity: a.identity,
        source: a.source ?? 'sticky',
        ...(a.owner !== undefined ? { owner: a.owner } : {}),
        state: stateOf(a),
        ...(a.node !== undefined ? { node: a.node } : {}),
        ...(a.containerID !== undefined ? { containerID: a.containerID } : {}),
        ...(a.interface !== undefined ? { ifname: a.interface } : {}),
        ...(a.heldUntil !== undefined ? { heldUntil: a.heldUntil } : {}),
        block: b.spec.cidr,
        pool: b.spec.pool,
      });
    }
  }
  return out.sort((x, y) => byAddress(x.address, y.address));
}
