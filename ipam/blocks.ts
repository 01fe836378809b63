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
import type { AllocationRecord, Attachment, AttachmentKey } from './types.js';

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

/**
 * A free offset in the block, searching from `from` and wrapping (next fit: a just-released
 * address is not handed out again at once, which spares stale conntrack and ARP entries).
 */
export function freeOffset(block: IPAMBlock, c: Cidr, from = 0): number | undefined {
  const n = capacity(c);
  const taken = block.spec.allocations;
  for (let i = 0; i < n; i++) {
    const offset = (from + i) % n;
    if (!(String(offset) in taken)) return offset;
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

export function heldBy(alloc: Allocation, key: AttachmentKey): boolean {
  return alloc.containerID === key.containerID && alloc.interface === key.ifname;
}

/** Human description of a holder for error messages. */
export function describeHolder(alloc: Allocation): string {
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
  };
}

/** Every allocation of `block` as records. */
export function recordsOf(block: IPAMBlock): AllocationRecord[] {
  const c = blockCidr(block);
  return Object.keys(block.spec.allocations)
    .sort((a, b) => Number(a) - Number(b))
    .map((o) => recordOf(block, o, c));
}
