// IPAMBlock arithmetic: naming, carving pools into blocks, and the pure edits of a block's
// allocation table. No I/O here.
import {
  TERN_API_VERSION,
  addressAt,
  formatCidr,
  formatIp,
  parseCidr,
  size,
  type Allocation,
  type Cidr,
  type IPAMBlock,
  type IpAddr,
} from '../model/index.js';
import type { Binding } from './identity.js';
import type { AllocationRecord, Attachment, AttachmentKey, BindingState } from './types.js';

/**
 * The object name of the block covering `c`: the CIDR with `.`, `:` and `/` turned into `-`
 * (`10-0-3-0-26`, `fd00--1-0-122`), a `0` put in front when it would start with `-`. The
 * mapping is one-to-one, so two writers of the same block always race on the same key.
 */
export function blockName(c: Cidr): string {
  const text = formatCidr(c).replace(/[.:/]/g, '-');
  return text.startsWith('-') ? `0${text}` : text;
}

/** The block of prefix length `blockSize` that contains `ip`. */
export function blockContaining(ip: IpAddr, blockSize: number): Cidr {
  const bits = ip.family === 4 ? 32 : 128;
  const hostMask = (1n << BigInt(bits - blockSize)) - 1n;
  return { family: ip.family, network: ip.value & ~hostMask, prefixLength: blockSize };
}

// Parsed block CIDRs by text: the allocator looks at its blocks on every request, and
// parsing through ip-address costs far more than the rest of the decision.
const parsed = new Map<string, Cidr>();
const PARSED_LIMIT = 100_000;

export function blockCidr(block: IPAMBlock): Cidr {
  let c = parsed.get(block.spec.cidr);
  if (!c) {
    if (parsed.size >= PARSED_LIMIT) parsed.clear();
    c = parseCidr(block.spec.cidr, 'spec.cidr');
    parsed.set(block.spec.cidr, c);
  }
  return c;
}

/** Number of addresses in a block (at most 4096: the IPPool schema bounds blockSize). */
export function capacity(c: Cidr): number {
  return Number(size(c));
}

export function usedCount(block: IPAMBlock): number {
  return Object.keys(block.spec.allocations).length;
}

/** A sticky hold whose time has passed: the address is free, whoever sweeps it first. */
export function isExpired(alloc: Allocation, now: number | undefined): boolean {
  return now !== undefined && alloc.heldUntil !== undefined && Date.parse(alloc.heldUntil) <= now;
}

/** The allocation at `offset` unless there is none or it is an expired hold. */
export function liveAt(
  block: IPAMBlock,
  offset: number | string,
  now: number | undefined,
): Allocation | undefined {
  const a = block.spec.allocations[String(offset)];
  return a && !isExpired(a, now) ? a : undefined;
}

/**
 * A free offset in the block, searching from `from` and wrapping (next fit: a just-released
 * address is not handed out again at once, which spares stale conntrack and ARP entries).
 * With `now`, an expired sticky hold counts as free (the lazy half of hold expiry); `skip`
 * leaves out offsets reserved elsewhere (IPReservation addresses nobody holds yet).
 */
export function freeOffset(
  block: IPAMBlock,
  c: Cidr,
  from = 0,
  now?: number,
  skip?: ReadonlySet<number>,
): number | undefined {
  const n = capacity(c);
  for (let i = 0; i < n; i++) {
    const offset = (from + i) % n;
    if (!liveAt(block, offset, now) && !skip?.has(offset)) return offset;
  }
  return undefined;
}

export function handleOf(a: Attachment): string {
  return `${a.namespace}/${a.pod}/${a.containerID}/${a.ifname}`;
}

export function allocationFor(a: Attachment, node: string): Allocation {
  return {
    handle: handleOf(a),
    namespace: a.namespace,
    pod: a.pod,
    containerID: a.containerID,
    interface: a.ifname,
    node,
  };
}

/** An allocation bound to a pod identity, held by the attachment now. */
export function boundAllocation(a: Attachment, node: string, bind: Binding): Allocation {
  return { ...allocationFor(a, node), ...identityFields(bind) };
}

/** An identity-bound allocation no pod holds: reserved (ordinal list, IPReservation). */
export function reservedAllocation(bind: Binding): Allocation {
  return identityFields(bind);
}

function identityFields(bind: Binding): Allocation {
  return {
    handle: `identity:${bind.identity}`,
    binding: 'identity',
    identity: bind.identity,
    source: bind.source,
    ...(bind.owner !== undefined ? { owner: bind.owner } : {}),
  };
}

/**
 * What an identity-bound allocation becomes when its pod lets go (DEL, GC): the attachment
 * fields and node dropped, held until `heldUntil` (sticky) or reserved. Undefined for an
 * attachment-bound allocation (it is freed).
 */
export function detached(alloc: Allocation, heldUntil: string | undefined): Allocation | undefined {
  if (alloc.binding !== 'identity' || !alloc.identity) return undefined;
  return {
    handle: alloc.handle,
    binding: 'identity',
    identity: alloc.identity,
    ...(alloc.source !== undefined ? { source: alloc.source } : {}),
    ...(alloc.owner !== undefined ? { owner: alloc.owner } : {}),
    // The interface stays: a sticky pod's eth0 gets eth0's address back, not net1's.
    ...(alloc.interface !== undefined ? { interface: alloc.interface } : {}),
    ...(heldUntil !== undefined ? { heldUntil } : {}),
  };
}

export function stateOf(alloc: Allocation): BindingState {
  if (alloc.containerID) return 'in use';
  return alloc.heldUntil !== undefined ? 'held' : 'reserved';
}

/** The same holder in the same state (rollback undoes only its own write). */
export function sameAllocation(a: Allocation | undefined, b: Allocation): boolean {
  return (
    a !== undefined &&
    a.handle === b.handle &&
    a.containerID === b.containerID &&
    a.interface === b.interface &&
    a.node === b.node &&
    a.identity === b.identity &&
    a.heldUntil === b.heldUntil
  );
}

export function heldBy(alloc: Allocation, key: AttachmentKey): boolean {
  return alloc.containerID === key.containerID && alloc.interface === key.ifname;
}

/** Human description of a holder for error messages. */
export function describeHolder(alloc: Allocation): string {
  if (alloc.binding === 'identity' && alloc.identity && !alloc.containerID) {
    const why =
      alloc.source === 'sticky'
        ? `held until ${alloc.heldUntil ?? '?'} (sticky)`
        : alloc.source === 'ordinal'
          ? `reserved by the ordinal list of ${alloc.owner ?? '?'}`
          : `reserved by IPReservation ${alloc.owner ?? '?'}`;
    return `pod ${alloc.identity} (${why})`;
  }
  if (alloc.namespace && alloc.pod) {
    const where = alloc.node ? ` on node ${alloc.node}` : '';
    return `pod ${alloc.namespace}/${alloc.pod} (container ${alloc.containerID ?? '?'}, interface ${alloc.interface ?? '?'})${where}`;
  }
  return `handle ${alloc.handle}`;
}

export function newBlock(c: Cidr, pool: string, affinity: string | undefined): IPAMBlock {
  return {
    apiVersion: TERN_API_VERSION,
    kind: 'IPAMBlock',
    metadata: { name: blockName(c) },
    spec: { cidr: formatCidr(c), pool, ...(affinity ? { affinity } : {}), allocations: {} },
  };
}

export function withAllocation(block: IPAMBlock, offset: number, alloc: Allocation): IPAMBlock {
  return {
    ...block,
    spec: { ...block.spec, allocations: { ...block.spec.allocations, [String(offset)]: alloc } },
  };
}

export function withoutOffsets(block: IPAMBlock, offsets: readonly string[]): IPAMBlock {
  const allocations = { ...block.spec.allocations };
  for (const o of offsets) delete allocations[o];
  return { ...block, spec: { ...block.spec, allocations } };
}

export function withAffinity(block: IPAMBlock, node: string): IPAMBlock {
  return { ...block, spec: { ...block.spec, affinity: node } };
}

/** Offsets of `block` held by the attachment. */
export function offsetsHeldBy(block: IPAMBlock, key: AttachmentKey): string[] {
  return Object.entries(block.spec.allocations)
    .filter(([, a]) => heldBy(a, key))
    .map(([o]) => o);
}

export function recordOf(block: IPAMBlock, offset: string, c: Cidr = blockCidr(block)): AllocationRecord {
  const a = block.spec.allocations[offset]!;
  return {
    address: formatIp(addressAt(c, BigInt(offset))),
    family: c.family,
    block: block.spec.cidr,
    pool: block.spec.pool,
    ...(block.spec.affinity ? { blockAffinity: block.spec.affinity } : {}),
    handle: a.handle,
    ...(a.namespace !== undefined ? { namespace: a.namespace } : {}),
    ...(a.pod !== undefined ? { pod: a.pod } : {}),
    ...(a.containerID !== undefined ? { containerID: a.containerID } : {}),
    ...(a.interface !== undefined ? { ifname: a.interface } : {}),
    ...(a.node !== undefined ? { node: a.node } : {}),
    ...(a.binding !== undefined ? { binding: a.binding } : {}),
    ...(a.identity !== undefined ? { identity: a.identity } : {}),
    ...(a.source !== undefined ? { source: a.source } : {}),
    ...(a.owner !== undefined ? { owner: a.owner } : {}),
    ...(a.heldUntil !== undefined ? { heldUntil: a.heldUntil } : {}),
  };
}

/** Every allocation of `block` as records. */
export function recordsOf(block: IPAMBlock): AllocationRecord[] {
  const c = blockCidr(block);
  return Object.keys(block.spec.allocations)
    .sort((a, b) => Number(a) - Number(b))
    .map((o) => recordOf(block, o, c));
}
