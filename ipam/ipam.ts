// IP address management on the datastore. One Ipam per process serves any number of nodes.
//
// Correctness rests on one rule: every address lives in exactly one IPAMBlock object, and
// every change to a block is a compare-and-swap write. Two processes, two nodes or a
// hundred concurrent requests can therefore never hold one address twice, whatever the
// caches say. The caches (own blocks, the pools, the attachment index) only save round
// trips; a stale cache costs a retry, never a wrong answer, and no error is ever reported
// from cached data without reading the block again.
import { createHash } from 'node:crypto';
import type { Datastore } from '../datastore/types.js';
import { createLogger, type Logger } from '../model/log.js';
import {
  ConflictError,
  ExhaustedError,
  NotFoundError,
  UnavailableError,
  ValidationError,
  addressAt,
  bitsOf,
  containsCidr,
  containsIp,
  formatCidr,
  formatIp,
  hostCidr,
  offsetOf,
  overlaps,
  parseCidr,
  parseIp,
  type Allocation,
  type Cidr,
  type IPAMBlock,
  type IpAddr,
  type Labels,
} from '../model/index.js';
import {
  allocationFor,
  blockCidr,
  blockContaining,
  blockName,
  capacity,
  describeHolder,
  freeOffset,
  heldBy,
  newBlock,
  offsetsHeldBy,
  recordOf,
  recordsOf,
  usedCount,
  withAffinity,
  withAllocation,
  withoutOffsets,
} from './blocks.js';
import { BlockStore, DEFAULT_RETRY, type RetryPolicy } from './block-store.js';
import { KeyedMutex } from './mutex.js';
import { planAddresses, type FamilyPlan } from './plan.js';
import { PoolCache } from './pool-cache.js';
import { blockCount, familyName, poolContainsBlock, poolSet, type Pool } from './pools.js';
import { allocationsOfNode, blocksOfNode, borrowedByNode, freeIn, poolUsage } from './queries.js';
import type {
  AllocationRecord,
  AssignRequest,
  AssignResult,
  AssignedAddress,
  Attachment,
  AttachmentKey,
  GcResult,
  GcScope,
  PoolUsage,
} from './types.js';

export interface IpamOptions {
  datastore: Datastore;
  logger?: Logger;
  retry?: Partial<RetryPolicy>;
}

/** Where one address of a request ended up. */
interface Placed {
  block: string;
  cidr: Cidr;
  offset: number;
  pool: string;
  affinity: string | undefined;
}

type AllocateMode = 'own' | 'claim' | 'borrow';

const keyOfAttachment = (k: AttachmentKey) => `${k.containerID}\u0000${k.ifname}`;

function requireText(value: unknown, field: string): void {
  if (typeof value !== 'string' || value.length === 0)
    throw new ValidationError(field, 'must be a non-empty string');
}

function validateKey(k: AttachmentKey): void {
  requireText(k.containerID, 'attachment.containerID');
  requireText(k.ifname, 'attachment.ifname');
}

function validateAttachment(a: Attachment): void {
  requireText(a.namespace, 'attachment.namespace');
  requireText(a.pod, 'attachment.pod');
  validateKey(a);
}

/** Where in a pool a node starts looking for a free block: spread, so nodes rarely race. */
function startIndex(node: string, blocks: bigint): bigint {
  const h = createHash('sha1').update(node).digest();
  return h.readBigUInt64BE(0) % blocks;
}

export class Ipam {
  private readonly datastore: Datastore;
  private readonly log: Logger;
  private readonly retry: RetryPolicy;
  private readonly pools: PoolCache;
  private readonly blocks: BlockStore;
  private readonly nodeLocks = new KeyedMutex();
  /** Assign and release of one attachment never overlap (a DEL racing its own ADD). */
  private readonly attachmentLocks = new KeyedMutex();
  /** Attachments whose assign is running: GC never frees them. */
  private readonly inFlight = new Set<string>();
  private readonly loaded = new Map<string, Promise<void>>();
  /** Attachment → names of the blocks where this process knows it holds addresses. */
  private readonly index = new Map<string, Set<string>>();
  /** Block name → offset to search from next (next fit). */
  private readonly cursors = new Map<string, number>();

  constructor(options: IpamOptions) {
    this.datastore = options.datastore;
    this.log = options.logger ?? createLogger('ipam');
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.pools = new PoolCache(this.datastore);
    this.blocks = new BlockStore(this.datastore, this.retry);
  }

  /**
   * Allocates one address per selected family for an attachment. Throws ValidationError
   * (bad request, annotation, address or pool reference), ConflictError (a fixed address
   * held by someone else), ExhaustedError (no pool, or no free address), UnavailableError
   * (too many lost races, or the datastore). On any error nothing stays allocated.
   * Calling it again for an attachment that already holds addresses returns those.
   */
  async assign(req: AssignRequest): Promise<AssignResult> {
    validateAttachment(req.attachment);
    requireText(req.node, 'node');
    const k = keyOfAttachment(req.attachment);
    return this.attachmentLocks.run(k, () =>
      this.nodeLocks.run(req.node, async () => {
        this.inFlight.add(k);
        try {
          return await this.assignLocked(req);
        } finally {
          this.inFlight.delete(k);
        }
      }),
    );
  }

  private async assignLocked(req: AssignRequest): Promise<AssignResult> {
    await this.ensureLoaded(req.node);
    const held = await this.heldAlready(req.attachment);
    const [pools, labels] = await Promise.all([this.pools.get(), this.nodeLabels(req)]);
    // A retried ADD keeps what it holds and only completes the families it lacks.
    const plans = planAddresses(req, pools, labels).filter((p) => !held.some((h) => h.family === p.family));
    const placed: Placed[] = [];
    try {
      for (const plan of plans) placed.push(await this.place(plan, req));
    } catch (e) {
      await this.rollback(placed, req.attachment);
      throw e;
    }
    const addresses = [
      ...held.map((r) => this.assigned(r, req.node)),
      ...placed.map((p) => {
        const ip = addressAt(p.cidr, p.offset);
        return {
          family: ip.family,
          address: formatIp(ip),
          cidr: formatCidr(hostCidr(ip)),
          block: formatCidr(p.cidr),
          pool: p.pool,
          borrowed: p.affinity !== req.node,
        };
      }),
    ];
    return { addresses: addresses.sort((a, b) => a.family - b.family) };
  }

  /** Frees every address the attachment holds; releasing what is not held is not an error. */
  async release(key: AttachmentKey): Promise<AllocationRecord[]> {
    validateKey(key);
    const k = keyOfAttachment(key);
    return this.attachmentLocks.run(k, () => this.releaseLocked(key, k));
  }

  private async releaseLocked(key: AttachmentKey, k: string): Promise<AllocationRecord[]> {
    const known = [...(this.index.get(k) ?? [])];
    let released = (await Promise.all(known.map((name) => this.releaseIn(name, key)))).flat();
    if (released.length === 0) {
      // Not assigned through this process (or already released): look everywhere.
      const holding = (await this.blocks.list()).filter((b) => offsetsHeldBy(b, key).length > 0);
      released = (await Promise.all(holding.map((b) => this.releaseIn(b.metadata.name, key)))).flat();
    }
    this.index.delete(k);
    return released;
  }

  /**
   * The addresses an attachment holds (CNI CHECK): through the attachment index with fresh
   * reads of the blocks it names, else one scan of every block.
   */
  async allocationsFor(key: AttachmentKey): Promise<AllocationRecord[]> {
    validateKey(key);
    const held = await this.heldAlready(key);
    if (held.length > 0) return held;
    return (await this.blocks.list())
      .flatMap((b) => offsetsHeldBy(b, key).map((o) => recordOf(b, o)))
      .sort((x, y) => x.family - y.family);
  }

  /** Frees one address whatever holds it (`ternctl ipam release`). NotFoundError if free. */
  async releaseAddress(address: string): Promise<AllocationRecord> {
    const ip = parseIp(address, 'address');
    const shown = formatIp(ip);
    const block = (await this.blocks.list()).find((b) => containsIp(blockCidr(b), ip));
    if (!block) throw new NotFoundError(`${shown} is not allocated (no IPAMBlock contains it)`);
    const c = blockCidr(block);
    const offset = String(offsetOf(c, ip));
    const record = await this.blocks.modify(
      block.metadata.name,
      (cur) => {
        if (!cur?.spec.allocations[offset]) throw new NotFoundError(`${shown} is not allocated`);
        return { result: recordOf(cur, offset, c), write: this.afterRemoval(withoutOffsets(cur, [offset])) };
      },
      { confirmNegative: true },
    );
    this.unindex(record);
    return record;
  }

  /**
   * Frees every allocation in scope for which `isValid` is false, then deletes empty blocks
   * that are safe to let go: unclaimed ones, and the scoped node's empty blocks beyond one
   * per pool (it keeps a spare, so it does not claim again at once). The caller must count
   * attachments being added right now as valid.
   */
  async gc(isValid: (alloc: AllocationRecord) => boolean, scope: GcScope = {}): Promise<GcResult> {
    const inScope = (r: AllocationRecord) => scope.node === undefined || r.node === scope.node;
    const adding = (r: AllocationRecord) =>
      r.containerID !== undefined &&
      r.ifname !== undefined &&
      this.inFlight.has(keyOfAttachment({ containerID: r.containerID, ifname: r.ifname }));
    const stale = (r: AllocationRecord) => inScope(r) && !adding(r) && !isValid(r);
    const released: AllocationRecord[] = [];
    const all = await this.blocks.list();
    for (const b of all) {
      if (!recordsOf(b).some(stale)) continue;
      const freed = await this.blocks.modify(b.metadata.name, (cur) => {
        if (!cur) return { result: [] };
        const c = blockCidr(cur);
        const gone = Object.keys(cur.spec.allocations).filter((o) => stale(recordOf(cur, o, c)));
        if (gone.length === 0) return { result: [] };
        return {
          result: gone.map((o) => recordOf(cur, o, c)),
          write: this.afterRemoval(withoutOffsets(cur, gone)),
        };
      });
      for (const r of freed) this.unindex(r);
      released.push(...freed);
    }
    const deletedBlocks = await this.deleteSpareBlocks(scope.node);
    return { released, deletedBlocks };
  }

  async blocksOf(node: string): Promise<string[]> {
    return blocksOfNode(await this.blocks.list(), node);
  }

  async borrowedBy(node: string): Promise<string[]> {
    return borrowedByNode(await this.blocks.list(), node);
  }

  async allocationsOf(node: string): Promise<AllocationRecord[]> {
    return allocationsOfNode(await this.blocks.list(), node);
  }

  async usage(): Promise<PoolUsage[]> {
    const [{ items }, blocks] = await Promise.all([this.datastore.list('IPPool'), this.blocks.list()]);
    return poolUsage(poolSet(items), blocks);
  }

  /** Stops the pool watch. The datastore stays open (it is the caller's). */
  async close(): Promise<void> {
    await this.pools.close();
  }

  // ---- assign ----

  private ensureLoaded(node: string): Promise<void> {
    let p = this.loaded.get(node);
    if (!p) {
      p = this.load(node).catch((e: unknown) => {
        this.loaded.delete(node);
        throw e;
      });
      this.loaded.set(node, p);
    }
    return p;
  }

  /** Caches the node's blocks and indexes the attachments of its pods. */
  private async load(node: string): Promise<void> {
    for (const b of await this.blocks.list()) {
      if (b.spec.affinity === node) this.blocks.remember(b);
      for (const a of Object.values(b.spec.allocations)) {
        if (a.node === node && a.containerID && a.interface) this.indexAdd(a, b.metadata.name);
      }
    }
  }

  private async nodeLabels(req: AssignRequest): Promise<Labels> {
    if (req.nodeLabels) return req.nodeLabels;
    const node = await this.datastore.get('Node', { name: req.node });
    return node?.metadata.labels ?? {};
  }

  /** Addresses the attachment already holds (a retried ADD), confirmed by fresh reads. */
  private async heldAlready(a: AttachmentKey): Promise<AllocationRecord[]> {
    const names = this.index.get(keyOfAttachment(a));
    if (!names) return [];
    const found: AllocationRecord[] = [];
    for (const name of names) {
      const b = await this.blocks.read(name);
      const offsets = b ? offsetsHeldBy(b, a) : [];
      if (offsets.length === 0) names.delete(name);
      for (const o of offsets) found.push(recordOf(b!, o));
    }
    if (names.size === 0) this.index.delete(keyOfAttachment(a));
    return found.sort((x, y) => x.family - y.family);
  }

  private assigned(r: AllocationRecord, node: string): AssignedAddress {
    const ip = parseIp(r.address);
    return {
      family: r.family,
      address: r.address,
      cidr: formatCidr(hostCidr(ip)),
      block: r.block,
      pool: r.pool,
      borrowed: r.blockAffinity !== node,
    };
  }

  private async place(plan: FamilyPlan, req: AssignRequest): Promise<Placed> {
    const alloc = allocationFor(req.attachment, req.node);
    const placed =
      plan.kind === 'fixed'
        ? await this.placeFixed(plan, alloc)
        : await this.placeFromPools(plan, req.node, alloc);
    this.indexAdd(alloc, placed.block);
    this.cursors.set(placed.block, (placed.offset + 1) % capacity(placed.cidr));
    return placed;
  }

  /**
   * The one mechanism for a named address: CAS the allocation into the block that covers it,
   * creating that block unclaimed if it does not exist. (Issue 11's identity-bound addresses
   * go through here with an identity as the holder.)
   */
  private async placeFixed(plan: Extract<FamilyPlan, { kind: 'fixed' }>, alloc: Allocation): Promise<Placed> {
    const { address, pool } = plan;
    const cidr = await this.blockCovering(address, pool);
    const name = blockName(cidr);
    const offset = offsetOf(cidr, address);
    return this.blocks.modify(
      name,
      (cur) => {
        const block = cur ?? newBlock(cidr, pool.name, undefined);
        const placed = { block: name, cidr, offset, pool: pool.name, affinity: block.spec.affinity };
        const holder = block.spec.allocations[String(offset)];
        if (holder) {
          if (heldBy(holder, { containerID: alloc.containerID!, ifname: alloc.interface! }))
            return { result: placed };
          throw new ConflictError(`${formatIp(address)} is in use by ${describeHolder(holder)}`);
        }
        return { result: placed, write: withAllocation(block, offset, alloc) };
      },
      { confirmNegative: true },
    );
  }

  /**
   * The block that holds (or will hold) `address`: a known block containing it, else the
   * pool's block of its size, unless a block of another size (the pool's blockSize was
   * changed) already covers the address: never two blocks for one address.
   */
  private async blockCovering(address: IpAddr, pool: Pool): Promise<Cidr> {
    const cached = [...this.blocks.cached()].find((b) => containsIp(blockCidr(b), address));
    if (cached) return blockCidr(cached);
    const natural = blockContaining(address, pool.blockSize);
    if (await this.blocks.read(blockName(natural))) return natural;
    const other = (await this.blocks.list()).find((b) => containsIp(blockCidr(b), address));
    return other ? blockCidr(other) : natural;
  }

  /** Own blocks first, then claim a free block, then borrow; ExhaustedError when none. */
  private async placeFromPools(
    plan: Extract<FamilyPlan, { kind: 'pools' }>,
    node: string,
    alloc: Allocation,
  ): Promise<Placed> {
    for (const b of this.ownBlocks(this.blocks.cached(), node, plan.pools)) {
      const placed = await this.tryAllocate(b.metadata.name, blockCidr(b), plan.pools, node, alloc, 'own');
      if (placed) return placed;
    }
    for (let round = 1; round <= this.retry.maxAttempts; round++) {
      const all = await this.blocks.list();
      for (const b of all) if (b.spec.affinity === node) this.blocks.remember(b);
      let candidates = 0;
      for (const [cidr, mode] of this.candidates(all, node, plan.pools)) {
        candidates++;
        const placed = await this.tryAllocate(blockName(cidr), cidr, plan.pools, node, alloc, mode);
        if (placed) return placed;
      }
      if (candidates === 0) {
        const pools = plan.pools.map((p) => `${p.name} (${formatCidr(p.cidr)})`).join(', ');
        throw new ExhaustedError(
          `no free ${familyName(plan.family)} address in IPPool${plan.pools.length > 1 ? 's' : ''} ${pools} (chosen by ${plan.source})`,
        );
      }
      this.log.debug({ node, round }, 'ipam: every candidate block was taken meanwhile; listing again');
    }
    throw new UnavailableError(
      `no ${familyName(plan.family)} address for node ${node}: lost ${this.retry.maxAttempts} races in a row`,
    );
  }

  /** Blocks affine to `node` inside the plan's pools, in pool order then address order. */
  private *ownBlocks(
    blocks: Iterable<IPAMBlock>,
    node: string,
    pools: readonly Pool[],
  ): Generator<IPAMBlock> {
    const own = [...blocks].filter((b) => b.spec.affinity === node);
    for (const pool of pools) {
      const inPool = own
        .map((b) => ({ b, c: blockCidr(b) }))
        .filter(({ c }) => poolContainsBlock(pool, c))
        .sort((x, y) => (x.c.network < y.c.network ? -1 : 1));
      for (const { b } of inPool) yield b;
    }
  }

  /** Where to try, in order: own blocks with room, free blocks to claim, blocks to borrow from. */
  private *candidates(
    all: IPAMBlock[],
    node: string,
    pools: readonly Pool[],
  ): Generator<[Cidr, AllocateMode]> {
    for (const b of this.ownBlocks(all, node, pools)) if (freeIn(b) > 0) yield [blockCidr(b), 'own'];
    for (const pool of pools) yield* this.claimable(all, node, pool);
    for (const pool of pools) {
      const lenders = all
        .filter((b) => b.spec.affinity !== undefined && b.spec.affinity !== node && freeIn(b) > 0)
        .map((b) => ({ b, c: blockCidr(b) }))
        .filter(({ c }) => poolContainsBlock(pool, c))
        .sort((x, y) => freeIn(y.b) - freeIn(x.b));
      for (const { c } of lenders) yield [c, 'borrow'];
    }
  }

  /** Blocks of `pool` nobody has claimed: unclaimed existing ones with room, then new ones. */
  private *claimable(all: IPAMBlock[], node: string, pool: Pool): Generator<[Cidr, AllocateMode]> {
    const inPool = all.map((b) => ({ b, c: blockCidr(b) })).filter(({ c }) => poolContainsBlock(pool, c));
    for (const { b, c } of inPool) {
      if (b.spec.affinity === undefined && c.prefixLength === pool.blockSize && freeIn(b) > 0)
        yield [c, 'claim'];
    }
    const taken = new Set(
      inPool.filter(({ c }) => c.prefixLength === pool.blockSize).map(({ c }) => c.network),
    );
    // Blocks of another size (the pool's blockSize was changed): never carve over them.
    const odd = inPool.filter(({ c }) => c.prefixLength !== pool.blockSize).map(({ c }) => c);
    const n = blockCount(pool);
    if (BigInt(taken.size) >= n) return;
    const step = 1n << BigInt(bitsOf(pool.family) - pool.blockSize);
    const start = startIndex(node, n);
    for (let i = 0n; i < n; i++) {
      const network = pool.cidr.network + ((start + i) % n) * step;
      if (taken.has(network)) continue;
      const c: Cidr = { family: pool.family, network, prefixLength: pool.blockSize };
      if (odd.some((o) => overlaps(o, c))) continue;
      yield [c, 'claim'];
    }
  }

  /** One CAS attempt series on one block; undefined when the block turns out unusable. */
  private async tryAllocate(
    name: string,
    cidr: Cidr,
    pools: readonly Pool[],
    node: string,
    alloc: Allocation,
    mode: AllocateMode,
  ): Promise<Placed | undefined> {
    const pool = pools.find((p) => containsCidr(p.cidr, cidr))!;
    return this.blocks.modify(name, (cur) => {
      if (!cur && mode !== 'claim') return { result: undefined };
      const affinity = cur ? cur.spec.affinity : undefined;
      if (mode === 'own' && affinity !== node) return { result: undefined };
      if (mode === 'claim' && affinity !== undefined && affinity !== node) return { result: undefined };
      const block = cur ?? newBlock(cidr, pool.name, node);
      const offset = freeOffset(block, cidr, this.cursors.get(name) ?? 0);
      if (offset === undefined) return { result: undefined };
      let next = withAllocation(block, offset, alloc);
      if (mode === 'claim' && next.spec.affinity === undefined) next = withAffinity(next, node);
      return {
        result: { block: name, cidr, offset, pool: pool.name, affinity: next.spec.affinity },
        write: next,
      };
    });
  }

  /** Undoes the placements of a failed request; the first error is what the caller sees. */
  private async rollback(placed: Placed[], key: AttachmentKey): Promise<void> {
    for (const p of placed.reverse()) {
      try {
        const offset = String(p.offset);
        await this.blocks.modify(
          p.block,
          (cur) => {
            const a = cur?.spec.allocations[offset];
            if (!cur || !a || !heldBy(a, key)) return { result: undefined };
            return { result: undefined, write: this.afterRemoval(withoutOffsets(cur, [offset])) };
          },
          { confirmNegative: true },
        );
        this.unindexBlock(key, p.block);
      } catch (e) {
        this.log.error(
          { err: e, block: p.block, offset: p.offset },
          'ipam: rollback failed; GC will free the address',
        );
      }
    }
  }

  // ---- release ----

  private async releaseIn(name: string, key: AttachmentKey): Promise<AllocationRecord[]> {
    return this.blocks.modify(
      name,
      (cur) => {
        const offsets = cur ? offsetsHeldBy(cur, key) : [];
        if (!cur || offsets.length === 0) return { result: [] };
        const c = blockCidr(cur);
        return {
          result: offsets.map((o) => recordOf(cur, o, c)),
          write: this.afterRemoval(withoutOffsets(cur, offsets)),
        };
      },
      { confirmNegative: true },
    );
  }

  /** An unclaimed block that no longer holds anything is deleted rather than kept empty. */
  private afterRemoval(block: IPAMBlock): IPAMBlock | 'delete' {
    return block.spec.affinity === undefined && usedCount(block) === 0 ? 'delete' : block;
  }

  private async deleteSpareBlocks(node: string | undefined): Promise<string[]> {
    const all = await this.blocks.list();
    const empty = all.filter((b) => usedCount(b) === 0);
    const doomed = empty.filter((b) => b.spec.affinity === undefined);
    if (node !== undefined) {
      const keptPerPool = new Set<string>();
      for (const b of empty
        .filter((x) => x.spec.affinity === node)
        .sort((x, y) => (x.metadata.name < y.metadata.name ? -1 : 1))) {
        if (keptPerPool.has(b.spec.pool)) doomed.push(b);
        else keptPerPool.add(b.spec.pool);
      }
    }
    const deleted: string[] = [];
    for (const b of doomed) {
      const gone = await this.blocks.modify(b.metadata.name, (cur) => {
        // Only if it is still empty and still in the state we judged safe.
        if (!cur || usedCount(cur) > 0 || cur.spec.affinity !== b.spec.affinity) return { result: false };
        return { result: true, write: 'delete' as const };
      });
      if (gone) deleted.push(b.spec.cidr);
    }
    return deleted;
  }

  // ---- attachment index ----

  private indexAdd(a: Allocation, block: string): void {
    const k = keyOfAttachment({ containerID: a.containerID!, ifname: a.interface! });
    let names = this.index.get(k);
    if (!names) this.index.set(k, (names = new Set()));
    names.add(block);
  }

  private unindex(r: AllocationRecord): void {
    if (r.containerID === undefined || r.ifname === undefined) return;
    this.unindexBlock({ containerID: r.containerID, ifname: r.ifname }, blockName(parseCidr(r.block)));
  }

  private unindexBlock(key: AttachmentKey, block: string): void {
    const k = keyOfAttachment(key);
    const names = this.index.get(k);
    names?.delete(block);
    if (names?.size === 0) this.index.delete(k);
  }
}
