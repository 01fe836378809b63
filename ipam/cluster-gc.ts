// Cluster-wide IPAM garbage collection: frees the addresses of pods that no longer exist and
// lets go of the blocks of nodes that no longer exist. One instance per cluster does the work
// (the holder of a Lease); any instance running by mistake is still safe, because every free
// is decided on fresh reads and written by compare-and-swap.
//
// Why a pod being created is never robbed: in Kubernetes the Pod object exists, bound to its
// node, before the kubelet asks the runtime for a sandbox, so before CNI ADD allocates. An
// allocation is judged stale only when its pod is missing (or bound elsewhere, or on a node
// that is gone) in a read made AFTER the blocks were read, stays so for the grace period, and
// is still so in a fresh read of the pod (and node) right before the free. The free itself
// matches the allocation's container ID and interface, so an address a new pod of the same
// name got meanwhile (new sandbox, new container ID) is a different allocation and stays.
import { Counter, Gauge, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../datastore/leader-election.js';
import type { Datastore } from '../datastore/types.js';
import { createLogger, type Logger } from '../model/log.js';
import type { IPAMBlock, Node, Pod } from '../model/index.js';
import { BlockStore, DEFAULT_RETRY } from './block-store.js';
import { recordsOf, usedCount } from './blocks.js';
import type { Ipam } from './ipam.js';
import type { AllocationRecord } from './types.js';

export type StaleReason = 'pod-missing' | 'pod-on-other-node' | 'pod-finished' | 'node-missing';

export interface ClusterGcOptions {
  datastore: Datastore;
  /** Does the frees, so identity-bound addresses keep their hold/reservation semantics. */
  ipam: Ipam;
  /** Whether this process may act now (the Lease holder). Checked before every destructive step. */
  isLeader: () => boolean;
  /** How long an allocation (or a node) must be seen gone before it is freed; default 10 minutes. */
  graceMs?: number;
  /** Between passes; default 60 s. */
  intervalMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Counters `tern_ipam_gc_*` are registered here when given. */
  registry?: Registry;
  /**
   * Where a pass reads blocks, Pods and Nodes from; default: a list of each from the datastore
   * (blocks first). The agent passes its informers' caches, so a pass costs no API reads: a
   * cache that lags only makes an allocation a candidate, and every free still waits for the
   * grace and a fresh read of the pod and node.
   */
  snapshot?: () => ClusterSnapshot | Promise<ClusterSnapshot>;
}

export interface ClusterSnapshot {
  blocks: readonly IPAMBlock[];
  pods: readonly Pod[];
  nodes: readonly Node[];
}

export const CLUSTER_GC_DEFAULTS = { graceMs: 600_000, intervalMs: 60_000 } as const;

export interface FreedAllocation extends AllocationRecord {
  reason: StaleReason;
}

export interface ClusterGcReport {
  /** False when this process was not the leader (nothing was read or written). */
  ran: boolean;
  /** Allocations seen stale now, still inside their grace period. */
  pending: number;
  freed: FreedAllocation[];
  /** CIDRs of blocks of vanished nodes: deleted (empty) or left unclaimed (still holding addresses). */
  releasedBlocks: string[];
}

interface Snapshot {
  pods: Map<string, Pod>;
  nodes: Set<string>;
}

/** One attachment's hold on its addresses: the same pod name with a new sandbox is another key. */
export function allocationKey(r: Pick<AllocationRecord, 'handle' | 'containerID' | 'ifname'>): string {
  return `${r.handle}\u0000${r.containerID ?? ''}\u0000${r.ifname ?? ''}`;
}

/**
 * Why the allocation no longer belongs to a live pod, or undefined while it does. Only
 * allocations held by an attachment (a container ID) are judged: holds and reservations of
 * identity-bound addresses are the sweep's (expiry, IPReservation gone).
 */
export function staleReason(r: AllocationRecord, s: Snapshot): StaleReason | undefined {
  if (r.containerID === undefined || !r.namespace || !r.pod) return undefined;
  const pod = s.pods.get(`${r.namespace}/${r.pod}`);
  if (!pod) return 'pod-missing';
  // A pod's node binding never changes: bound elsewhere means a later pod of that name.
  const boundTo = pod.spec?.nodeName;
  if (r.node !== undefined && boundTo && boundTo !== r.node) return 'pod-on-other-node';
  // Succeeded and Failed are terminal: the containers will never run again, yet a finished
  // Job's Pod object may stay for days. Its DEL normally freed the address already.
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return 'pod-finished';
  if (r.node !== undefined && !s.nodes.has(r.node)) return 'node-missing';
  return undefined;
}

export class ClusterGc {
  private readonly ds: Datastore;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly graceMs: number;
  private readonly intervalMs: number;
  private readonly blocks: BlockStore;
  /** Allocation key → when (our clock) it was first seen stale, in consecutive passes. */
  private readonly staleSince = new Map<string, number>();
  /** Node name → when its blocks were first seen with no Node object. */
  private readonly nodeGoneSince = new Map<string, number>();
  private readonly metrics: {
    freed?: Counter<'reason'>;
    blocks?: Counter;
    passes?: Counter<'result'>;
  } = {};
  private loop: Promise<void> | undefined;
  private abort = new AbortController();

  constructor(private readonly options: ClusterGcOptions) {
    this.ds = options.datastore;
    this.log = options.logger ?? createLogger('ipam-gc');
    this.clock = options.clock ?? systemClock;
    this.graceMs = options.graceMs ?? CLUSTER_GC_DEFAULTS.graceMs;
    this.intervalMs = options.intervalMs ?? CLUSTER_GC_DEFAULTS.intervalMs;
    this.blocks = new BlockStore(this.ds, DEFAULT_RETRY);
    if (options.registry) {
      const registers = [options.registry];
      this.metrics.freed = new Counter({
        name: 'tern_ipam_gc_freed_addresses_total',
        help: 'Addresses freed by the cluster IPAM garbage collector, by why their holder was judged gone',
        labelNames: ['reason'],
        registers,
      });
      this.metrics.blocks = new Counter({
        name: 'tern_ipam_gc_released_blocks_total',
        help: 'IPAM blocks of deleted nodes released (deleted or left unclaimed)',
        registers,
      });
      this.metrics.passes = new Counter({
        name: 'tern_ipam_gc_passes_total',
        help: 'Cluster IPAM garbage collection passes run by the leader, by result',
        labelNames: ['result'],
        registers,
      });
      const isLeader = options.isLeader;
      new Gauge({
        name: 'tern_ipam_gc_leader',
        help: '1 while this agent holds the IPAM GC Lease (runs the cluster IPAM garbage collection)',
        registers,
        collect() {
          this.set(isLeader() ? 1 : 0);
        },
      });
    }
  }

  /** Runs a pass every interval while this process leads; returns at once. */
  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    const signal = this.abort.signal;
    this.loop = (async () => {
      while (!signal.aborted) {
        await this.clock.sleep(this.intervalMs, signal);
        if (signal.aborted) return;
        try {
          await this.runOnce();
        } catch (e) {
          this.metrics.passes?.inc({ result: 'error' });
          this.log.warn({ err: e }, 'ipam gc: pass failed; retrying next interval');
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.loop = undefined;
  }

  /** One pass. A follower forgets what it saw: a new leader waits a whole grace period. */
  async runOnce(): Promise<ClusterGcReport> {
    if (!this.options.isLeader()) {
      this.staleSince.clear();
      this.nodeGoneSince.clear();
      return { ran: false, pending: 0, freed: [], releasedBlocks: [] };
    }
    const { blocks, pods, nodes } = await (this.options.snapshot ?? (() => this.listAll()))();
    const snapshot: Snapshot = {
      pods: new Map(pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p])),
      nodes: new Set(nodes.map((n) => n.metadata.name)),
    };
    const now = this.clock.now();

    const due = this.trackStale(blocks, snapshot, now);
    const confirmed = await this.recheck(due);
    const freed = confirmed.size > 0 && this.options.isLeader() ? await this.free(confirmed) : [];

    const goneNodes = await this.trackGoneNodes(blocks, snapshot, now);
    const releasedBlocks = this.options.isLeader() ? await this.releaseBlocksOf(goneNodes) : [];

    this.metrics.passes?.inc({ result: 'ok' });
    return { ran: true, pending: this.staleSince.size, freed, releasedBlocks };
  }

  /**
   * Blocks first, then pods and nodes: every allocation read was made for a pod that existed
   * before the pod list, so a pod missing from that list is not one still being created.
   */
  private async listAll(): Promise<ClusterSnapshot> {
    const blocks = await this.blocks.list();
    const [pods, nodes] = await Promise.all([this.ds.list('Pod'), this.ds.list('Node')]);
    return { blocks, pods: pods.items, nodes: nodes.items };
  }

  /** Updates the stale-since table from this pass; returns the allocations past their grace. */
  private trackStale(blocks: readonly IPAMBlock[], s: Snapshot, now: number): Map<string, AllocationRecord> {
    const seen = new Set<string>();
    const due = new Map<string, AllocationRecord>();
    for (const r of blocks.flatMap(recordsOf)) {
      if (!staleReason(r, s)) continue;
      const key = allocationKey(r);
      seen.add(key);
      const since = this.staleSince.get(key) ?? now;
      this.staleSince.set(key, since);
      if (now - since >= this.graceMs) due.set(key, r);
    }
    for (const key of this.staleSince.keys()) if (!seen.has(key)) this.staleSince.delete(key);
    return due;
  }

  /** Re-reads the pod (and node) of every due allocation now; keeps those still stale. */
  private async recheck(due: Map<string, AllocationRecord>): Promise<Map<string, StaleReason>> {
    const confirmed = new Map<string, StaleReason>();
    const pods = new Map<string, Promise<Pod | undefined>>();
    const nodes = new Map<string, Promise<Node | undefined>>();
    for (const [key, r] of due) {
      const podKey = `${r.namespace!}/${r.pod!}`;
      if (!pods.has(podKey)) pods.set(podKey, this.ds.get('Pod', { namespace: r.namespace!, name: r.pod! }));
      const pod = await pods.get(podKey)!;
      let nodeExists = true;
      if (r.node !== undefined) {
        if (!nodes.has(r.node)) nodes.set(r.node, this.ds.get('Node', { name: r.node }));
        nodeExists = (await nodes.get(r.node)!) !== undefined;
      }
      const fresh: Snapshot = {
        pods: new Map(pod ? [[podKey, pod]] : []),
        nodes: new Set(nodeExists && r.node !== undefined ? [r.node] : []),
      };
      const reason = staleReason(r, fresh);
      if (reason) confirmed.set(key, reason);
      else this.staleSince.delete(key);
    }
    return confirmed;
  }

  private async free(confirmed: Map<string, StaleReason>): Promise<FreedAllocation[]> {
    const { released } = await this.options.ipam.gc((r) => !confirmed.has(allocationKey(r)));
    const freed: FreedAllocation[] = [];
    for (const r of released) {
      const reason = confirmed.get(allocationKey(r));
      if (!reason) continue; // freed by the sweep (an expired hold) in the same call
      this.staleSince.delete(allocationKey(r));
      freed.push({ ...r, reason });
      this.metrics.freed?.inc({ reason });
      this.log.info(
        {
          address: r.address,
          pod: `${r.namespace ?? '?'}/${r.pod ?? '?'}`,
          containerID: r.containerID,
          ifname: r.ifname,
          node: r.node,
          reason,
          ...(r.binding === 'identity' ? { keptFor: r.identity } : {}),
        },
        'ipam gc: freed the address of a pod that is gone',
      );
    }
    return freed;
  }

  /** Nodes with blocks but no Node object, past their grace and confirmed by a fresh read. */
  private async trackGoneNodes(blocks: readonly IPAMBlock[], s: Snapshot, now: number): Promise<string[]> {
    const affine = new Set(blocks.map((b) => b.spec.affinity).filter((n): n is string => n !== undefined));
    const gone: string[] = [];
    for (const node of affine) {
      if (s.nodes.has(node)) continue;
      const since = this.nodeGoneSince.get(node) ?? now;
      this.nodeGoneSince.set(node, since);
      if (now - since < this.graceMs) continue;
      if (await this.ds.get('Node', { name: node })) this.nodeGoneSince.delete(node);
      else gone.push(node);
    }
    for (const node of this.nodeGoneSince.keys())
      if (!affine.has(node) || s.nodes.has(node)) this.nodeGoneSince.delete(node);
    return gone;
  }

  /**
   * Lets go of every block affine to a vanished node: deleted when empty, else left unclaimed
   * with what it still holds (pods on other nodes that borrowed from it, identity-bound holds,
   * pods whose grace has not run out); any node may then claim it, and IPAM deletes it once empty.
   */
  private async releaseBlocksOf(nodes: readonly string[]): Promise<string[]> {
    const released: string[] = [];
    if (nodes.length === 0) return released;
    const gone = new Set(nodes);
    for (const b of await this.blocks.list()) {
      const node = b.spec.affinity;
      if (node === undefined || !gone.has(node)) continue;
      const outcome = await this.blocks.modify(b.metadata.name, (cur) => {
        if (!cur || cur.spec.affinity !== node) return { result: undefined };
        if (usedCount(cur) === 0) return { result: 'deleted' as const, write: 'delete' as const };
        const { affinity: _dropped, ...spec } = cur.spec;
        return { result: 'unclaimed' as const, write: { ...cur, spec } };
      });
      if (!outcome) continue;
      released.push(b.spec.cidr);
      this.metrics.blocks?.inc();
      this.log.info(
        { block: b.spec.cidr, node, outcome, holding: usedCount(b) },
        'ipam gc: released the block of a node that is gone',
      );
    }
    for (const n of nodes) this.nodeGoneSince.delete(n);
    return released;
  }
}
