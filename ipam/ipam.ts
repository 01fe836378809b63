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
  boundAllocation,
  capacity,
  describeHolder,
  detached,
  freeOffset,
  heldBy,
  liveAt,
  newBlock,
  offsetsHeldBy,
  recordOf,
  recordsOf,
  reservedAllocation,
  sameAllocation,
  usedCount,
  withAffinity,
  withAllocation,
  withoutOffsets,
} from './blocks.js';
import { BlockStore, DEFAULT_RETRY, type RetryPolicy } from './block-store.js';
import { identityOf, isSticky, ReservationIndex, type Binding } from './identity.js';
import { KindCache } from './kind-cache.js';
import { KeyedMutex } from './mutex.js';
import { planAddresses, type FamilyPlan, type Reservation } from './plan.js';
import { PoolCache } from './pool-cache.js';
import { blockCount, familyName, poolContainsBlock, poolSet, type Pool, type PoolSet } from './pools.js';
import { allocationsOfNode, bindingsOf, blocksOfNode, borrowedByNode, freeIn, poolUsage } from './queries.js';
import type {
  AllocationRecord,
  AssignRequest,
  AssignResult,
  AssignedAddress,
  Attachment,
  AttachmentKey,
  BindingRecord,
  GcResult,
  GcScope,
  PoolUsage,
} from './types.js';

export interface IpamOptions {
  datastore: Datastore;
  logger?: Logger;
  retry?: Partial<RetryPolicy>;
  /**
   * How long a sticky address stays held for its identity after DEL, for pools that do not
   * set `stickyHoldSeconds`. Default 600 (10 minutes).
   */
  stickyHoldSeconds?: number;
  /**
   * Period of the sweep that frees expired sticky holds and reservations whose IPReservation
   * is gone (started with the first assign, stopped by close). Default 60 000 ms; 0: none.
   */
  sweepIntervalMs?: number;
  /** The clock (ms since the epoch); tests pass a fake one. */
  now?: () => number;
}

export const DEFAULT_STICKY_HOLD_SECONDS = 600;

const RESERVED_FULL = Symbol('reserved-full');

/** One allocation this request wrote, and what was there before (an identity's earlier holder). */
interface Written {
  block: string;
  offset: number;
  written: Allocation;
  previous?: Allocation;
}

/** Where one address of a request ended up. */
interface Placed extends Written {
  cidr: Cidr;
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

/** A named address someone else holds: the message names the address and both holders. */
function conflictMessage(
  address: IpAddr,
  alloc: Allocation,
  bind: Binding | undefined,
  source: string,
  holder: Allocation,
): string {
  const shown = formatIp(address);
  if (bind)
    return `${shown} is named for pod ${bind.identity} by ${bind.origin}, but is held by ${describeHolder(holder)}`;
  return `${shown} is in use by ${describeHolder(holder)}; pod ${alloc.namespace ?? '?'}/${alloc.pod ?? '?'} asked for it by ${source}`;
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
  private readonly reservations: KindCache<'IPReservation', ReservationIndex>;
  private readonly blocks: BlockStore;
  private readonly now: () => number;
  private readonly holdSeconds: number;
  private readonly sweepIntervalMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
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
    this.reservations = new KindCache(this.datastore, 'IPReservation', (o) => new ReservationIndex(o));
    this.blocks = new BlockStore(this.datastore, this.retry);
    this.now = options.now ?? Date.now;
    this.holdSeconds = options.stickyHoldSeconds ?? DEFAULT_STICKY_HOLD_SECONDS;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
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
    this.startSweep();
    const held = await this.heldAlready(req.attachment);
    const [pools, labels, reservations] = await Promise.all([
      this.pools.get(),
      this.nodeLabels(req),
      this.reservations.get(),
    ]);
    const stickyHeld = isSticky(req.podAnnotations, req.namespaceAnnotations)
      ? await this.stickyBindings(req.attachment)
      : [];
    const plan = planAddresses(req, pools, labels, { reservations, stickyHeld });
    // A retried ADD keeps what it holds and only completes the families it lacks.
    const plans = plan.plans.filter((p) => !held.some((h) => h.family === p.family));
    const placed: Placed[] = [];
    const reserved: Written[] = [];
    try {
      for (const p of plans) placed.push(await this.place(p, req, reservations));
      for (const r of plan.reserve) {
        const w = await this.reserve(r);
        if (w) reserved.push(w);
      }
    } catch (e) {
      await this.rollback([...placed, ...reserved]);
      for (const p of placed) this.unindexBlock(req.attachment, p.block);
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
    const pools = await this.pools.get();
    let released = (await Promise.all(known.map((name) => this.releaseIn(name, key, pools)))).flat();
    if (released.length === 0) {
      // Not assigned through this process (or already released): look everywhere.
      const holding = (await this.blocks.list()).filter((b) => offsetsHeldBy(b, key).length > 0);
      released = (await Promise.all(holding.map((b) => this.releaseIn(b.metadata.name, key, pools)))).flat();
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
    // Identity-bound addresses no pod holds (held, reserved) are not attachments: the sweep judges them.
    const stale = (r: AllocationRecord) =>
      r.containerID !== undefined && inScope(r) && !adding(r) && !isValid(r);
    const released: AllocationRecord[] = [];
    const all = await this.blocks.list();
    const pools = await this.pools.get();
    for (const b of all) {
      if (!recordsOf(b).some(stale)) continue;
      const freed = await this.blocks.modify(b.metadata.name, (cur) => {
        if (!cur) return { result: [] };
        const c = blockCidr(cur);
        const gone = Object.keys(cur.spec.allocations).filter((o) => stale(recordOf(cur, o, c)));
        if (gone.length === 0) return { result: [] };
        return {
          result: gone.map((o) => recordOf(cur, o, c)),
          write: this.detach(cur, gone, pools),
        };
      });
      for (const r of freed) this.unindex(r);
      released.push(...freed);
    }
    released.push(...(await this.sweep()));
    const deletedBlocks = await this.deleteSpareBlocks(scope.node);
    return { released, deletedBlocks };
  }

  /**
   * Frees expired sticky holds and reserved addresses whose IPReservation no longer names
   * them (read fresh, not from the cache). Runs periodically and from `gc`; an expired hold is
   * also free to any allocation that meets it before the sweep does.
   */
  async sweep(): Promise<AllocationRecord[]> {
    const now = this.now();
    const [blocks, { items }] = await Promise.all([this.blocks.list(), this.datastore.list('IPReservation')]);
    const index = new ReservationIndex(items);
    const dead = (r: AllocationRecord) =>
      r.binding === 'identity' &&
      r.containerID === undefined &&
      ((r.heldUntil !== undefined && Date.parse(r.heldUntil) <= now) ||
        (r.source === 'reservation' && !index.names(parseIp(r.address), r.identity ?? '')));
    const freed: AllocationRecord[] = [];
    for (const b of blocks) {
      if (!recordsOf(b).some(dead)) continue;
      freed.push(
        ...(await this.blocks.modify(b.metadata.name, (cur) => {
          if (!cur) return { result: [] };
          const c = blockCidr(cur);
          const gone = Object.keys(cur.spec.allocations).filter((o) => dead(recordOf(cur, o, c)));
          if (gone.length === 0) return { result: [] };
          return {
            result: gone.map((o) => recordOf(cur, o, c)),
            write: this.afterRemoval(withoutOffsets(cur, gone)),
          };
        })),
      );
    }
    if (freed.length)
      this.log.info({ addresses: freed.map((r) => r.address) }, 'ipam: freed expired bindings');
    return freed;
  }

  /**
   * Frees the addresses bound to identities of `owner` (`<namespace>/<set>` of an ordinal
   * list, `<namespace>/<IPReservation>`) that no pod holds now: the StatefulSet is gone.
   */
  async releaseReserved(owner: string): Promise<AllocationRecord[]> {
    const mine = (r: AllocationRecord) => r.owner === owner && r.containerID === undefined;
    const freed: AllocationRecord[] = [];
    for (const b of await this.blocks.list()) {
      if (!recordsOf(b).some(mine)) continue;
      freed.push(
        ...(await this.blocks.modify(b.metadata.name, (cur) => {
          if (!cur) return { result: [] };
          const c = blockCidr(cur);
          const gone = Object.keys(cur.spec.allocations).filter((o) => mine(recordOf(cur, o, c)));
          if (gone.length === 0) return { result: [] };
          return {
            result: gone.map((o) => recordOf(cur, o, c)),
            write: this.afterRemoval(withoutOffsets(cur, gone)),
          };
        })),
      );
    }
    return freed;
  }

  /** Every identity-bound address in the cluster, read now. */
  async bindings(): Promise<BindingRecord[]> {
    return bindingsOf(await this.blocks.list(), this.now());
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
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await Promise.all([this.pools.close(), this.reservations.close()]);
  }

  private startSweep(): void {
    if (this.sweepTimer || this.closed || this.sweepIntervalMs <= 0) return;
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((e: unknown) => this.log.warn({ err: e }, 'ipam: sweep of expired bindings failed'));
    }, this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /**
   * The live sticky bindings of the attachment's identity for its interface (or for no
   * interface yet), in any state: held after DEL, or in use by an earlier pod of that name
   * that was never deleted (its node died): the new pod takes it over.
   */
  private async stickyBindings(a: Attachment): Promise<AllocationRecord[]> {
    const identity = identityOf(a.namespace, a.pod);
    const now = this.now();
    return (await this.blocks.list())
      .flatMap((b) => recordsOf(b))
      .filter(
        (r) =>
          r.binding === 'identity' &&
          r.identity === identity &&
          r.source === 'sticky' &&
          (r.ifname === undefined || r.ifname === a.ifname) &&
          !(r.heldUntil !== undefined && Date.parse(r.heldUntil) <= now),
      );
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

  private async place(plan: FamilyPlan, req: AssignRequest, reservations: ReservationIndex): Promise<Placed> {
    const alloc = plan.bind
      ? boundAllocation(req.attachment, req.node, plan.bind)
      : allocationFor(req.attachment, req.node);
    let placed: Placed | undefined;
    if (plan.kind === 'fixed') {
      placed = await this.placeFixed(plan, alloc);
      // A sticky address that expired and was taken between our read and our write: the pod
      // simply gets a new one, as it would a moment later.
      if (!placed && plan.bind?.source === 'sticky') {
        const pools = (await this.pools.get()).pools.filter(
          (p) => p.family === plan.family && !p.disabled && p.name === plan.pool.name,
        );
        placed = await this.placeFromPools(
          { kind: 'pools', family: plan.family, pools, source: plan.source, bind: plan.bind },
          req.node,
          alloc,
          reservations,
        );
      }
    } else {
      placed = await this.placeFromPools(plan, req.node, alloc, reservations);
    }
    if (!placed) throw new UnavailableError(`no ${familyName(plan.family)} address placed (${plan.source})`);
    this.indexAdd(alloc, placed.block);
    this.cursors.set(placed.block, (placed.offset + 1) % capacity(placed.cidr));
    return placed;
  }

  /**
   * The one mechanism for a named address: CAS the allocation into the block that covers it,
   * creating that block unclaimed if it does not exist. An identity-bound allocation may
   * replace the same identity's earlier holding (held after DEL, reserved, or in use by an
   * earlier pod of that name on any node): one write moves the address to this pod, and the
   * node hosting it announces it. Anything else there is a conflict naming both holders.
   * Undefined only for a sticky address that another holder took after its hold expired.
   */
  private async placeFixed(
    plan: Extract<FamilyPlan, { kind: 'fixed' }>,
    alloc: Allocation,
  ): Promise<Placed | undefined> {
    const { address, pool, bind } = plan;
    const cidr = await this.blockCovering(address, pool);
    const name = blockName(cidr);
    const offset = offsetOf(cidr, address);
    const now = this.now();
    return this.blocks.modify(
      name,
      (cur) => {
        const block = cur ?? newBlock(cidr, pool.name, undefined);
        const placed = {
          block: name,
          cidr,
          offset,
          pool: pool.name,
          affinity: block.spec.affinity,
          written: alloc,
        };
        const holder = liveAt(block, offset, now);
        if (!holder) return { result: placed, write: withAllocation(block, offset, alloc) };
        if (heldBy(holder, { containerID: alloc.containerID!, ifname: alloc.interface! }))
          return { result: placed };
        if (bind && holder.binding === 'identity' && holder.identity === bind.identity) {
          if (holder.containerID && holder.interface !== alloc.interface)
            throw new ConflictError(
              `${formatIp(address)} is named for pod ${bind.identity} by ${bind.origin}, but the pod's interface ${holder.interface ?? '?'} holds it (container ${holder.containerID})`,
            );
          return { result: { ...placed, previous: holder }, write: withAllocation(block, offset, alloc) };
        }
        if (bind?.source === 'sticky') return { result: undefined };
        throw new ConflictError(conflictMessage(address, alloc, bind, plan.source, holder));
      },
      { confirmNegative: true },
    );
  }

  /**
   * Binds an address to another identity than the requester's (the other replicas of an
   * ordinal list) if nothing holds it; a holder of another identity is a conflict. Returns
   * what it wrote, for rollback.
   */
  private async reserve(r: Reservation): Promise<Written | undefined> {
    const cidr = await this.blockCovering(r.address, r.pool);
    const name = blockName(cidr);
    const offset = offsetOf(cidr, r.address);
    const alloc = reservedAllocation(r.bind);
    const now = this.now();
    return this.blocks.modify(
      name,
      (cur) => {
        const block = cur ?? newBlock(cidr, r.pool.name, undefined);
        const holder = liveAt(block, offset, now);
        if (!holder)
          return {
            result: { block: name, offset, written: alloc },
            write: withAllocation(block, offset, alloc),
          };
        if (holder.binding === 'identity' && holder.identity === r.bind.identity)
          return { result: undefined };
        throw new ConflictError(
          `${formatIp(r.address)} is named for pod ${r.bind.identity} by ${r.bind.origin}, but is held by ${describeHolder(holder)}`,
        );
      },
      // A cached "already reserved for that replica" is fine (no read per entry per ADD);
      // an error is confirmed on a fresh read first.
      { confirmErrors: true },
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
    reservations: ReservationIndex,
  ): Promise<Placed> {
    const reserved = reservations.reservedAddresses();
    const tryAllocate = (name: string, cidr: Cidr, mode: AllocateMode) =>
      this.tryAllocate(name, cidr, plan.pools, node, alloc, mode, reserved);
    for (const b of this.ownBlocks(this.blocks.cached(), node, plan.pools)) {
      const placed = await tryAllocate(b.metadata.name, blockCidr(b), 'own');
      if (placed && placed !== RESERVED_FULL) return placed;
    }
    for (let round = 1; round <= this.retry.maxAttempts; round++) {
      const all = await this.blocks.list();
      for (const b of all) if (b.spec.affinity === node) this.blocks.remember(b);
      let candidates = 0;
      for (const [cidr, mode] of this.candidates(all, node, plan.pools)) {
        const placed = await tryAllocate(blockName(cidr), cidr, mode);
        // A block whose only free addresses are reserved is no candidate (not a lost race).
        if (placed !== RESERVED_FULL) candidates++;
        if (placed && placed !== RESERVED_FULL) return placed;
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
    const now = this.now();
    for (const b of this.ownBlocks(all, node, pools)) if (freeIn(b, now) > 0) yield [blockCidr(b), 'own'];
    for (const pool of pools) yield* this.claimable(all, node, pool);
    for (const pool of pools) {
      const lenders = all
        .filter((b) => b.spec.affinity !== undefined && b.spec.affinity !== node && freeIn(b, now) > 0)
        .map((b) => ({ b, c: blockCidr(b) }))
        .filter(({ c }) => poolContainsBlock(pool, c))
        .sort((x, y) => freeIn(y.b, now) - freeIn(x.b, now));
      for (const { c } of lenders) yield [c, 'borrow'];
    }
  }

  /** Blocks of `pool` nobody has claimed: unclaimed existing ones with room, then new ones. */
  private *claimable(all: IPAMBlock[], node: string, pool: Pool): Generator<[Cidr, AllocateMode]> {
    const now = this.now();
    const inPool = all.map((b) => ({ b, c: blockCidr(b) })).filter(({ c }) => poolContainsBlock(pool, c));
    for (const { b, c } of inPool) {
      if (b.spec.affinity === undefined && c.prefixLength === pool.blockSize && freeIn(b, now) > 0)
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

  /**
   * One CAS attempt series on one block; undefined when the block turns out unusable,
   * RESERVED_FULL when its only free addresses are reserved by IPReservations.
   */
  private async tryAllocate(
    name: string,
    cidr: Cidr,
    pools: readonly Pool[],
    node: string,
    alloc: Allocation,
    mode: AllocateMode,
    reserved: readonly IpAddr[],
  ): Promise<Placed | typeof RESERVED_FULL | undefined> {
    const pool = pools.find((p) => containsCidr(p.cidr, cidr))!;
    const now = this.now();
    // IPReservation addresses nobody holds yet are never handed out from a pool.
    const skip = reserved.length
      ? new Set(reserved.filter((ip) => containsIp(cidr, ip)).map((ip) => offsetOf(cidr, ip)))
      : undefined;
    return this.blocks.modify<Placed | typeof RESERVED_FULL | undefined>(name, (cur) => {
      if (!cur && mode !== 'claim') return { result: undefined };
      const affinity = cur ? cur.spec.affinity : undefined;
      if (mode === 'own' && affinity !== node) return { result: undefined };
      if (mode === 'claim' && affinity !== undefined && affinity !== node) return { result: undefined };
      const block = cur ?? newBlock(cidr, pool.name, node);
      const offset = freeOffset(block, cidr, this.cursors.get(name) ?? 0, now, skip);
      if (offset === undefined)
        return {
          result: skip?.size && freeOffset(block, cidr, 0, now) !== undefined ? RESERVED_FULL : undefined,
        };
      let next = withAllocation(block, offset, alloc);
      if (mode === 'claim' && next.spec.affinity === undefined) next = withAffinity(next, node);
      return {
        result: { block: name, cidr, offset, pool: pool.name, affinity: next.spec.affinity, written: alloc },
        write: next,
      };
    });
  }

  /**
   * Undoes the writes of a failed request, newest first: what it put in place goes, and an
   * identity's earlier holding it replaced comes back. The first error is what the caller sees.
   */
  private async rollback(writes: Written[]): Promise<void> {
    for (const p of writes.reverse()) {
      try {
        const offset = String(p.offset);
        await this.blocks.modify(
          p.block,
          (cur) => {
            if (!cur || !sameAllocation(cur.spec.allocations[offset], p.written))
              return { result: undefined };
            if (p.previous) return { result: undefined, write: withAllocation(cur, p.offset, p.previous) };
            return { result: undefined, write: this.afterRemoval(withoutOffsets(cur, [offset])) };
          },
          { confirmNegative: true },
        );
      } catch (e) {
        this.log.error(
          { err: e, block: p.block, offset: p.offset },
          'ipam: rollback failed; GC will free the address',
        );
      }
    }
  }

  // ---- release ----

  private async releaseIn(name: string, key: AttachmentKey, pools: PoolSet): Promise<AllocationRecord[]> {
    return this.blocks.modify(
      name,
      (cur) => {
        const offsets = cur ? offsetsHeldBy(cur, key) : [];
        if (!cur || offsets.length === 0) return { result: [] };
        const c = blockCidr(cur);
        return {
          result: offsets.map((o) => recordOf(cur, o, c)),
          write: this.detach(cur, offsets, pools),
        };
      },
      { confirmNegative: true },
    );
  }

  /**
   * The block once the pods at `offsets` let go: attachment-bound addresses are freed,
   * identity-bound ones stay, held for the pool's hold time (sticky) or reserved.
   */
  private detach(block: IPAMBlock, offsets: readonly string[], pools: PoolSet): IPAMBlock | 'delete' {
    const pool =
      pools.pools.find((p) => p.name === block.spec.pool) ?? pools.shadowed.get(block.spec.pool)?.pool;
    const holdSeconds = pool?.object.spec.stickyHoldSeconds ?? this.holdSeconds;
    const heldUntil = new Date(this.now() + holdSeconds * 1000).toISOString();
    const freed: string[] = [];
    let next = block;
    for (const o of offsets) {
      const a = block.spec.allocations[o]!;
      const kept = detached(a, a.source === 'sticky' ? heldUntil : undefined);
      if (kept && !(a.source === 'sticky' && holdSeconds === 0)) next = withAllocation(next, Number(o), kept);
      else freed.push(o);
    }
    return this.afterRemoval(withoutOffsets(next, freed));
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
