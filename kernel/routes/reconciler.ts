// The route reconciler: keeps the kernel's routes of tern's protocols equal to the desired state,
// reacting to every change at once (batched into few netlink round trips), repairing drift seen in
// rtnetlink notifications, and re-reading the whole table periodically to catch anything missed.
// It never touches a route whose protocol is not one of tern's, and it never flushes: on start it
// adopts what is there and deletes stale routes of a class only once that class's desired state
// is complete (`setRoutes` or `markSynced`).
import { performance } from 'node:perf_hooks';
import { RTM_F_CLONED, RTN, RT_TABLE_MAIN, type KernelLink, type KernelRoute } from '../netlink/codec.js';
import { RtnlRouteKernel, type KernelEvents, type RouteKernel } from '../netlink/route-kernel.js';
import { parseCidr } from '../../model/cidr.js';
import { decide, plan, type Change, type PlanState } from './plan.js';
import {
  CLASS_PRECEDENCE,
  ROUTE_CLASSES,
  addressBytes,
  classOfProtocol,
  defaultPriority,
  formatAddress,
  normalizeRoute,
  routeKey,
  type DesiredRoute,
  type RouteByClass,
  type RouteClass,
} from './types.js';

/** The subset of a pino logger the reconciler uses. */
export interface ReconcilerLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export type ChangeKind = 'add' | 'replace' | 'delete';

export interface BatchReport {
  /** Route changes sent to the kernel in this batch. */
  changes: number;
  failed: number;
  /** sendmsg calls it took (each carries up to 512 changes). */
  sendCalls: number;
  durationMs: number;
}

export interface RouteReconcilerOptions {
  logger?: ReconcilerLogger;
  /** Period of the full resync (dump + diff); 0 disables it. Default 30 s. */
  resyncIntervalMs?: number;
  /** Routing table id. Default 254 (main). */
  table?: number;
  /** Substitute kernel (tests). Default: rtnetlink. */
  kernel?: RouteKernel;
  /** Called for every change the kernel accepted: ms from the desired-state change (or drift seen) to the ack. */
  onProgrammed?(cls: RouteClass, kind: ChangeKind, latencyMs: number): void;
  onBatch?(report: BatchReport): void;
}

export interface ReconcilerStats {
  added: number;
  replaced: number;
  deleted: number;
  failed: number;
  /** Changes made to undo drift (routes changed or deleted behind our back). */
  driftRepaired: number;
  resyncs: number;
  /** Notification losses (each triggers a resync). */
  overruns: number;
  batches: number;
  /** Desired routes per class. */
  desired: Record<RouteClass, number>;
  /** Routes of our protocols in the table, as last seen. */
  installed: number;
  /** Desired routes the kernel cannot take yet (interface missing or down, next hop unreachable). */
  waiting: number;
  /** Desired routes blocked by another program's route at the same destination and metric. */
  conflicts: number;
  /** Our routes kept although not desired, because their class is not marked synced yet. */
  keptUntilSynced: number;
}

const noopLogger: ReconcilerLogger = { debug() {}, info() {}, warn() {}, error() {} };

const ERRNO = { ESRCH: 3, EEXIST: 17, ENODEV: 19, ENETDOWN: 100, ENETUNREACH: 101, EHOSTUNREACH: 113 };
const NOT_READY = new Set([ERRNO.ENODEV, ERRNO.ENETDOWN, ERRNO.ENETUNREACH, ERRNO.EHOSTUNREACH]);
/** A batch with at least this many changes runs in bulk mode (see drain). */
const BULK_CHANGES = 1024;
/** How soon after a bulk batch the table is re-read to catch changes made during the pause. */
const BULK_VERIFY_DELAY_MS = 500;
/** Resyncs triggered by errors or notification loss are at least this far apart. */
const MIN_REPAIR_RESYNC_GAP_MS = 1000;

type Queued = { route: ['new' | 'del', KernelRoute] } | { link: ['new' | 'del', KernelLink] };

/** One of tern's routes in the kernel, as the status API reports it. */
export interface InstalledRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  type?: 'blackhole';
  protocol: string;
  class: RouteClass;
}

export class RouteReconciler {
  private readonly log: ReconcilerLogger;
  private readonly table: number;
  private readonly resyncIntervalMs: number;
  private readonly kernel: RouteKernel;
  private readonly desired: Record<RouteClass, Map<string, DesiredRoute>> = {
    pod: new Map(),
    block: new Map(),
    bgp: new Map(),
  };
  /** Desired keys by the interface they name, to retry them when it appears. */
  private readonly keysByDev = new Map<string, Set<string>>();
  private readonly synced = new Set<RouteClass>();
  private ours = new Map<string, KernelRoute>();
  private foreign = new Set<string>();
  private links = new Map<string, { index: number; up: boolean }>();
  private linkNames = new Map<number, string>();
  /** Keys to re-decide, with the time the need arose (for latency). */
  private dirty = new Map<string, number>();
  /** Dirty keys whose change repairs drift. */
  private readonly drifted = new Set<string>();
  private readonly waiting = new Set<string>();
  private readonly conflicts = new Set<string>();
  private readonly kept = new Set<string>();
  private state: 'new' | 'running' | 'stopped' = 'new';
  /** Events that arrive while a dump is being read are replayed on top of it. */
  private eventQueue: Queued[] | undefined;
  private chain: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRepairResync = 0;
  private repairResyncQueued = false;
  private readonly counters = {
    added: 0,
    replaced: 0,
    deleted: 0,
    failed: 0,
    driftRepaired: 0,
    resyncs: 0,
    overruns: 0,
    batches: 0,
  };

  constructor(private readonly options: RouteReconcilerOptions = {}) {
    this.log = options.logger ?? noopLogger;
    this.table = options.table ?? RT_TABLE_MAIN;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 30_000;
    this.kernel = options.kernel ?? new RtnlRouteKernel();
  }

  // ---- public API ----

  /** Reads the kernel's links and routes, adopts ours, then programs the desired state known so far. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('RouteReconciler.start: already started');
    this.state = 'running';
    this.kernel.subscribe(this.events);
    await this.resync();
    if (this.resyncIntervalMs > 0) {
      this.timer = setInterval(() => {
        this.resync().catch((err: unknown) => this.log.error({ err }, 'periodic route resync failed'));
      }, this.resyncIntervalMs);
      this.timer.unref();
    }
  }

  /** Stops watching and programming. Every route stays in the kernel. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    if (this.timer) clearInterval(this.timer);
    await this.chain;
    if (wasRunning) this.kernel.close();
  }

  /**
   * Replaces the whole desired set of a class and marks the class synced: our routes of that class
   * that are not in `routes` are deleted. All routes are validated before anything changes.
   */
  setRoutes<C extends RouteClass>(cls: C, routes: readonly RouteByClass[C][]): void {
    const next = new Map<string, DesiredRoute>();
    for (const r of routes) {
      const d = normalizeRoute(cls, r);
      next.set(d.key, d);
    }
    const now = performance.now();
    const current = this.desired[cls];
    for (const [key, d] of current) if (!next.has(key)) this.unsetDesired(d, now);
    for (const d of next.values()) this.setDesired(d, now);
    this.markSynced(cls);
  }

  /** Adds or changes one desired route. */
  upsert<C extends RouteClass>(cls: C, route: RouteByClass[C]): void {
    this.setDesired(normalizeRoute(cls, route), performance.now());
  }

  /** Removes one desired route by destination CIDR. Its kernel route goes once the class is synced. */
  remove(cls: RouteClass, dst: string): void {
    const cidr = parseCidr(dst, `routes.${cls}.dst`);
    const bytes = addressBytes({ family: cidr.family, value: cidr.network });
    const d = this.desired[cls].get(
      routeKey(cidr.family, bytes, cidr.prefixLength, defaultPriority(cidr.family)),
    );
    if (d) this.unsetDesired(d, performance.now());
  }

  /** Declares the class's desired state complete: its stale routes (adopted at start) may now go. */
  markSynced(cls: RouteClass): void {
    if (!this.synced.has(cls)) this.log.info({ cls }, 'route class synced');
    this.synced.add(cls);
    const now = performance.now();
    for (const [key, r] of this.ours) if (classOfProtocol(r.protocol) === cls) this.markDirty(key, now);
  }

  /** Resolves once every change made so far has been sent to the kernel and answered. */
  async whenIdle(): Promise<void> {
    for (;;) {
      await this.chain;
      if (this.state !== 'running' || (this.dirty.size === 0 && !this.flushQueued)) return;
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Re-reads links and routes from the kernel and repairs every difference. */
  resync(): Promise<void> {
    return this.exclusive(() => this.doResync());
  }

  /** The desired routes of a class as given (canonical destination text). */
  desiredRoutes(cls: RouteClass): string[] {
    return [...this.desired[cls].values()].map((d) => d.dstText);
  }

  /**
   * tern's routes as the kernel has them: the reconciler's mirror of the table (dumped at start and
   * at each resync, kept by notifications and the kernel's answers), formatted as `ip -j route`
   * does (a host route's destination without its /32 or /128).
   */
  installed(): InstalledRoute[] {
    const out: InstalledRoute[] = [];
    for (const r of this.ours.values()) {
      const cls = classOfProtocol(r.protocol);
      if (!cls) continue;
      const dst = formatAddress(r.family, r.dst);
      const dev = this.linkNames.get(r.oif);
      out.push({
        dst: r.dstLen === (r.family === 4 ? 32 : 128) ? dst : `${dst}/${r.dstLen}`,
        ...(r.gateway ? { gateway: formatAddress(r.family, r.gateway) } : {}),
        ...(dev ? { dev } : {}),
        ...(r.type === RTN.BLACKHOLE ? { type: 'blackhole' } : {}),
        protocol: String(r.protocol),
        class: cls,
      });
    }
    return out;
  }

  stats(): ReconcilerStats {
    return {
      ...this.counters,
      desired: { pod: this.desired.pod.size, block: this.desired.block.size, bgp: this.desired.bgp.size },
      installed: this.ours.size,
      waiting: this.waiting.size,
      conflicts: this.conflicts.size,
      keptUntilSynced: this.kept.size,
    };
  }

  // ---- desired state ----

  private effective = (key: string): DesiredRoute | undefined => {
    for (const cls of CLASS_PRECEDENCE) {
      const d = this.desired[cls].get(key);
      if (d) return d;
    }
    return undefined;
  };

  private setDesired(d: DesiredRoute, now: number): void {
    const map = this.desired[d.cls];
    const prev = map.get(d.key);
    if (prev && prev.dev === d.dev && sameBytes(prev.gateway, d.gateway)) return;
    if (prev?.dev !== undefined) this.keysByDev.get(prev.dev)?.delete(d.key);
    map.set(d.key, d);
    if (d.dev !== undefined) {
      let keys = this.keysByDev.get(d.dev);
      if (!keys) this.keysByDev.set(d.dev, (keys = new Set()));
      keys.add(d.key);
    }
    this.markDirty(d.key, now);
  }

  private unsetDesired(d: DesiredRoute, now: number): void {
    this.desired[d.cls].delete(d.key);
    if (d.dev !== undefined) {
      const keys = this.keysByDev.get(d.dev);
      keys?.delete(d.key);
      if (keys?.size === 0) this.keysByDev.delete(d.dev);
    }
    this.markDirty(d.key, now);
  }

  // ---- scheduling ----

  private markDirty(key: string, now: number): void {
    if (!this.dirty.has(key)) this.dirty.set(key, now);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.state !== 'running' || this.flushQueued) return;
    this.flushQueued = true;
    // setImmediate: everything changed in the same turn of the event loop goes out in one batch.
    setImmediate(() => {
      void this.exclusive(async () => {
        this.flushQueued = false;
        await this.drain();
      });
    });
  }

  /** Runs `fn` after everything queued before it; flushes and resyncs never overlap. */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(() => (this.state === 'running' ? fn() : undefined));
    this.chain = run.catch((err: unknown) => this.log.error({ err }, 'route reconciler step failed'));
    return run;
  }

  private get planState(): PlanState {
    return {
      table: this.table,
      desired: this.effective,
      ours: this.ours,
      foreign: this.foreign,
      ifindex: (name) => this.links.get(name)?.index,
      synced: this.synced,
    };
  }

  private async drain(): Promise<void> {
    while (this.dirty.size > 0 && this.state === 'running') {
      const batch = this.dirty;
      this.dirty = new Map();
      for (const key of batch.keys()) {
        this.waiting.delete(key);
        this.conflicts.delete(key);
        this.kept.delete(key);
      }
      const p = plan(batch.keys(), this.planState);
      for (const key of p.holds.get('awaiting-interface') ?? []) this.waiting.add(key);
      for (const key of p.holds.get('kept-until-synced') ?? []) this.kept.add(key);
      for (const key of p.holds.get('foreign-conflict') ?? []) this.noteConflict(key);
      if (p.changes.length >= BULK_CHANGES) {
        // Bulk: no notification per own change (reading them costs more than the changes, and a
        // burst beyond the socket buffer overruns it); the kernel's answers tell us what happened.
        // Foreign changes made during the pause are caught by a table read shortly after, which
        // also coalesces consecutive bulk batches into one read.
        this.kernel.setRouteEvents(false);
        try {
          await this.apply(p.changes, batch);
        } finally {
          this.kernel.setRouteEvents(true);
        }
        this.requestRepairResync(BULK_VERIFY_DELAY_MS);
      } else if (p.changes.length > 0) {
        await this.apply(p.changes, batch);
      }
      for (const key of batch.keys()) this.drifted.delete(key);
    }
  }

  /** Sends the changes; returns the keys the kernel did not take. */
  private async apply(changes: Change[], since: Map<string, number>): Promise<Set<string>> {
    const t0 = performance.now();
    const unsettled = new Set<string>();
    let results: Int32Array;
    try {
      results = await this.kernel.apply(changes.map((c) => ({ op: c.kind, route: c.route })));
    } catch (err) {
      // Outcome unknown (replies lost or timed out): re-read the kernel rather than guess.
      this.counters.failed += changes.length;
      this.log.error({ err, changes: changes.length }, 'route batch failed; resyncing');
      this.requestRepairResync();
      for (const c of changes) unsettled.add(c.key);
      return unsettled;
    }
    const done = performance.now();
    let failed = 0;
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i]!;
      const errno = results[i]!;
      if (errno === 0 || (c.kind === 'delete' && errno === ERRNO.ESRCH)) {
        this.recordApplied(c);
        if (errno === 0) this.options.onProgrammed?.(c.cls, c.kind, done - (since.get(c.key) ?? t0));
      } else if (c.kind === 'add' && errno === ERRNO.EEXIST) {
        // The destination is taken: by a foreign route, or by an identical route of ours whose
        // notification has not arrived yet (the CNI data path installs a pod's route itself).
        // Marking it foreign here would block the route until the next periodic resync; the
        // notification, or a re-read soon after, tells which it is.
        unsettled.add(c.key);
        this.requestRepairResync();
      } else if (c.kind !== 'delete' && NOT_READY.has(errno)) {
        unsettled.add(c.key);
        this.waiting.add(c.key);
        this.log.debug({ dst: this.describe(c.route), errno }, 'route not installable yet; will retry');
      } else {
        unsettled.add(c.key);
        failed++;
        this.log.error({ dst: this.describe(c.route), op: c.kind, errno }, 'kernel refused route change');
      }
    }
    this.counters.failed += failed;
    this.counters.batches++;
    this.options.onBatch?.({
      changes: changes.length,
      failed,
      sendCalls: Math.ceil(changes.length / 512),
      durationMs: done - t0,
    });
    return unsettled;
  }

  private recordApplied(c: Change): void {
    if (this.drifted.has(c.key)) this.counters.driftRepaired++;
    if (c.kind === 'delete') {
      this.ours.delete(c.key);
      this.counters.deleted++;
    } else {
      this.ours.set(c.key, c.route);
      if (c.kind === 'add') this.counters.added++;
      else this.counters.replaced++;
    }
  }

  private noteConflict(key: string): void {
    if (!this.conflicts.has(key)) {
      const d = this.effective(key);
      this.log.warn(
        { dst: d?.dstText, cls: d?.cls },
        'another route holds this destination; not overwriting it',
      );
    }
    this.conflicts.add(key);
  }

  private describe(r: KernelRoute): string {
    return `${formatAddress(r.family, r.dst)}/${r.dstLen}`;
  }

  // ---- kernel state ----

  private async doResync(): Promise<void> {
    await this.reload(this.counters.resyncs > 0);
    this.counters.resyncs++;
    await this.drain();
  }

  /**
   * Re-reads links and routes (events arriving meanwhile are replayed on top) and marks every key
   * whose kernel state differs from the plan; `asDrift` counts those repairs as drift.
   */
  private async reload(asDrift: boolean): Promise<void> {
    this.eventQueue = [];
    try {
      const links = await this.kernel.dumpLinks();
      const routes = await this.kernel.dumpRoutes();
      this.links = new Map();
      this.linkNames = new Map();
      for (const l of links) this.putLink(l);
      const ours = new Map<string, KernelRoute>();
      const foreign = new Set<string>();
      for (const r of routes) {
        if (!this.inScope(r)) continue;
        const key = keyOf(r);
        if (classOfProtocol(r.protocol)) ours.set(key, r);
        else if (this.effective(key)) foreign.add(key);
      }
      this.ours = ours;
      this.foreign = foreign;
    } finally {
      const queued = this.eventQueue;
      this.eventQueue = undefined;
      for (const e of queued) {
        if ('route' in e) this.onRoute(...e.route);
        else this.onLink(...e.link);
      }
    }
    const now = performance.now();
    const state = this.planState;
    const keys = new Set<string>(this.ours.keys());
    for (const cls of ROUTE_CLASSES) for (const key of this.desired[cls].keys()) keys.add(key);
    for (const key of keys) {
      const d = decide(key, state);
      const change = d.kind === 'add' || d.kind === 'replace' || d.kind === 'delete';
      if (change && asDrift && !this.dirty.has(key)) this.drifted.add(key);
      // Holds (waiting, conflict, kept) are re-decided too, so their bookkeeping stays current.
      if (change || (d.kind !== 'in-sync' && d.kind !== 'absent'))
        this.dirty.set(key, this.dirty.get(key) ?? now);
    }
  }

  private requestRepairResync(delayMs = 0): void {
    if (this.repairResyncQueued || this.state !== 'running') return;
    this.repairResyncQueued = true;
    const wait = Math.max(delayMs, this.lastRepairResync + MIN_REPAIR_RESYNC_GAP_MS - Date.now());
    setTimeout(() => {
      this.repairResyncQueued = false;
      this.lastRepairResync = Date.now();
      this.resync().catch((err: unknown) => this.log.error({ err }, 'repair resync failed'));
    }, wait).unref();
  }

  private inScope(r: KernelRoute): boolean {
    return r.table === this.table && (r.flags & RTM_F_CLONED) === 0 && r.tos === 0;
  }

  private readonly events: KernelEvents = {
    route: (kind, r) => this.onRoute(kind, r),
    link: (kind, l) => this.onLink(kind, l),
    overrun: () => {
      this.counters.overruns++;
      this.log.warn({}, 'rtnetlink notifications lost; resyncing');
      this.requestRepairResync();
    },
    unprotected: (reason) =>
      this.log.warn(
        { reason },
        'rtnetlink monitor unguarded: a notification burst beyond its buffer would abort',
      ),
  };

  private onRoute(kind: 'new' | 'del', r: KernelRoute): void {
    if (this.eventQueue) {
      this.eventQueue.push({ route: [kind, r] });
      return;
    }
    if (!this.inScope(r)) return;
    const key = keyOf(r);
    if (classOfProtocol(r.protocol)) {
      if (kind === 'new') this.ours.set(key, r);
      else if (this.ours.get(key)?.protocol === r.protocol) this.ours.delete(key);
    } else {
      // An IPv4 key holds one route: a foreign one arriving there replaced ours (`ip route replace`).
      if (kind === 'new' && r.family === 4) this.ours.delete(key);
      if (!this.effective(key)) return;
      if (kind === 'new') this.foreign.add(key);
      else this.foreign.delete(key);
    }
    this.checkDrift(key);
  }

  /** Marks the key for repair when the kernel's state at it no longer matches the plan. */
  private checkDrift(key: string): void {
    const d = decide(key, this.planState);
    if (d.kind === 'add' || d.kind === 'replace' || d.kind === 'delete') {
      if (!this.dirty.has(key)) this.drifted.add(key);
      this.markDirty(key, performance.now());
    } else if (this.conflicts.has(key) && d.kind !== 'foreign-conflict') {
      this.markDirty(key, performance.now());
    }
  }

  private onLink(kind: 'new' | 'del', l: KernelLink): void {
    if (this.eventQueue) {
      this.eventQueue.push({ link: [kind, l] });
      return;
    }
    const oldName = this.linkNames.get(l.index);
    const prev = this.links.get(l.name);
    const now = performance.now();
    if (kind === 'del') {
      if (prev?.index === l.index) this.links.delete(l.name);
      this.linkNames.delete(l.index);
      this.forgetRoutesVia(l.index);
      this.retryDev(l.name, now);
      return;
    }
    if (oldName !== undefined && oldName !== l.name) {
      this.links.delete(oldName);
      this.retryDev(oldName, now);
    }
    this.putLink(l);
    if (prev && prev.index === l.index && prev.up === l.up && oldName === l.name) return;
    if (prev && prev.index !== l.index) this.forgetRoutesVia(prev.index);
    // The kernel drops IPv4 routes through an interface that goes down, without notifications.
    if (!l.up) this.forgetRoutesVia(l.index, 4);
    this.retryDev(l.name, now);
    if (l.up) for (const key of this.waiting) this.markDirty(key, now);
  }

  private putLink(l: KernelLink): void {
    this.links.set(l.name, { index: l.index, up: l.up });
    this.linkNames.set(l.index, l.name);
  }

  private retryDev(name: string, now: number): void {
    for (const key of this.keysByDev.get(name) ?? []) this.markDirty(key, now);
  }

  /** Drops our routes through an interface from the view (the kernel removed them silently). */
  private forgetRoutesVia(index: number, family?: 4 | 6): void {
    const now = performance.now();
    for (const [key, r] of this.ours) {
      if (r.oif === index && (family === undefined || r.family === family)) {
        this.ours.delete(key);
        this.markDirty(key, now);
      }
    }
  }
}

function keyOf(r: KernelRoute): string {
  return routeKey(r.family, r.dst, r.dstLen, r.priority);
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}
