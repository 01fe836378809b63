// IPPool interpretation: effective block size, which pools are usable, which select a node,
// and resolving the names/CIDRs users write to pools.
import {
  DEFAULT_BLOCK_SIZE,
  cidrEquals,
  containsCidr,
  containsIp,
  formatCidr,
  matches,
  overlaps,
  parseCidr,
  size,
  type Cidr,
  type IPPool,
  type IpAddr,
  type IpFamily,
  type Labels,
} from '../model/index.js';

export interface Pool {
  name: string;
  cidr: Cidr;
  family: IpFamily;
  blockSize: number;
  disabled: boolean;
  object: IPPool;
}

export function effectiveBlockSize(cidr: Cidr, blockSize: number | undefined): number {
  return blockSize ?? Math.max(DEFAULT_BLOCK_SIZE[cidr.family], cidr.prefixLength);
}

export function toPool(object: IPPool): Pool {
  const cidr = parseCidr(object.spec.cidr, `IPPool ${object.metadata.name} spec.cidr`);
  return {
    name: object.metadata.name,
    cidr,
    family: cidr.family,
    blockSize: effectiveBlockSize(cidr, object.spec.blockSize),
    disabled: object.spec.disabled === true,
    object,
  };
}

export interface PoolSet {
  /** Pools IPAM uses, sorted by name. */
  pools: Pool[];
  /**
   * Pools left out because they overlap a pool that sorts first by name: two pools carving
   * the same addresses into different blocks could hand one address out twice.
   */
  shadowed: Map<string, { pool: Pool; by: Pool }>;
}

export function poolSet(objects: Iterable<IPPool>): PoolSet {
  const all = [...objects].map(toPool).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pools: Pool[] = [];
  const shadowed = new Map<string, { pool: Pool; by: Pool }>();
  for (const p of all) {
    const by = pools.find((q) => overlaps(q.cidr, p.cidr));
    if (by) shadowed.set(p.name, { pool: p, by });
    else pools.push(p);
  }
  return { pools, shadowed };
}

export function selectsNode(pool: Pool, labels: Labels): boolean {
  return pool.object.spec.nodeSelector === undefined || matches(pool.object.spec.nodeSelector, labels);
}

/** The usable pool containing `ip`, if any. */
export function poolContaining(set: PoolSet, ip: IpAddr): Pool | undefined {
  return set.pools.find((p) => containsIp(p.cidr, ip));
}

export function poolContainsBlock(pool: Pool, block: Cidr): boolean {
  return containsCidr(pool.cidr, block);
}

/** Number of blocks the pool is cut into. */
export function blockCount(pool: Pool): bigint {
  return size(pool.cidr) >> BigInt((pool.family === 4 ? 32 : 128) - pool.blockSize);
}

export type PoolLookup = { pool: Pool } | { error: string };

/** Resolves a pool reference (a name, or a CIDR equal to a pool's) to a usable pool. */
export function lookupPool(set: PoolSet, ref: string): PoolLookup {
  if (ref.includes('/')) {
    let c: Cidr;
    try {
      c = parseCidr(ref);
    } catch (e) {
      return { error: (e as Error).message.replace(/^cidr: /, '') };
    }
    const pool = set.pools.find((p) => cidrEquals(p.cidr, c));
    if (pool) return { pool };
    const shadow = [...set.shadowed.values()].find((s) => cidrEquals(s.pool.cidr, c));
    if (shadow) return { error: shadowMessage(shadow.pool, shadow.by) };
    return { error: `no IPPool has CIDR ${formatCidr(c)}` };
  }
  const pool = set.pools.find((p) => p.name === ref);
  if (pool) return { pool };
  const shadow = set.shadowed.get(ref);
  if (shadow) return { error: shadowMessage(shadow.pool, shadow.by) };
  return { error: `unknown IPPool ${JSON.stringify(ref)}` };
}

function shadowMessage(pool: Pool, by: Pool): string {
  return `IPPool ${pool.name} (${formatCidr(pool.cidr)}) overlaps IPPool ${by.name} (${formatCidr(by.cidr)}) and is not used`;
}

export const familyName = (f: IpFamily): string => (f === 4 ? 'IPv4' : 'IPv6');
