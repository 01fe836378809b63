// The agent's view of the cluster: one informer per kind it follows, and the facts derived
// from them. Pod addresses come from IPAM allocations (cluster-wide, present the moment an
// ADD allocates) rather than from pod status, which only Kubernetes fills in, and later.
import { Informer, type Datastore, type InformerEvent } from '../datastore/index.js';
import { recordsOf } from '../ipam/index.js';
import type { AllocationRecord } from '../ipam/index.js';
import {
  keyOf,
  keyString,
  parseCidr,
  type IPAMBlock,
  type Kind,
  type ObjectKey,
  type ResourceByKind,
} from '../model/index.js';

export const FOLLOWED_KINDS = [
  'Node',
  'BGPPeer',
  'BGPConfiguration',
  'IPPool',
  'IPAMBlock',
  'Pod',
  'Namespace',
  'NetworkPolicy',
  'ClusterNetworkPolicy',
] as const satisfies readonly Kind[];
export type FollowedKind = (typeof FOLLOWED_KINDS)[number];

type Informers = { [K in FollowedKind]: Informer<K> };

/** One change of the view: the informer's event (the object, and the old one on modification) and its kind. */
export type ClusterChange = { [K in FollowedKind]: { kind: K } & InformerEvent<K> }[FollowedKind];

/** What the agent needs of one IPAM block, computed once per change of that block. */
interface BlockFacts {
  cidr: string;
  /** Network address, for ordering without parsing again. */
  network: bigint;
  affinity?: string;
  records: AllocationRecord[];
}

export class ClusterView {
  private readonly informers: Informers;
  private readonly listeners = new Set<(change: ClusterChange) => void>();
  /**
   * IPAM blocks by name, kept from the informer's exact change stream (relists included): every
   * query below is a scan of plain objects, never a re-parse of every block on every change.
   */
  private readonly blocks = new Map<string, BlockFacts>();

  constructor(datastore: Datastore) {
    const make = <K extends FollowedKind>(kind: K) => new Informer(datastore, kind);
    this.informers = {
      Node: make('Node'),
      BGPPeer: make('BGPPeer'),
      BGPConfiguration: make('BGPConfiguration'),
      IPPool: make('IPPool'),
      IPAMBlock: make('IPAMBlock'),
      Pod: make('Pod'),
      Namespace: make('Namespace'),
      NetworkPolicy: make('NetworkPolicy'),
      ClusterNetworkPolicy: make('ClusterNetworkPolicy'),
    };
    this.informers.IPAMBlock.on({
      onChange: (e) => {
        if (e.type === 'deleted') this.blocks.delete(e.object.metadata.name);
        else this.blocks.set(e.object.metadata.name, factsOf(e.object));
      },
    });
    for (const kind of FOLLOWED_KINDS) {
      (this.informers[kind] as Informer<Kind>).on({
        onChange: (e) => this.emit({ kind, ...e } as ClusterChange),
      });
    }
  }

  informer<K extends FollowedKind>(kind: K): Informer<K> {
    return this.informers[kind] as Informer<K>;
  }

  list<K extends FollowedKind>(kind: K): Array<ResourceByKind[K]> {
    return this.informer(kind).list();
  }

  /**
   * Calls `fn` with every change after start (relists included), carrying the object, after the
   * view's own derived data (the block index) has taken it in.
   */
  onChange(fn: (change: ClusterChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * The object once the view has it: at once when it is there, else at the change that brings it
   * (no polling); undefined when it has not arrived within `timeoutMs`.
   */
  whenPresent<K extends FollowedKind>(
    kind: K,
    key: ObjectKey,
    timeoutMs: number,
  ): Promise<ResourceByKind[K] | undefined> {
    const now = this.informer(kind).get(key);
    if (now) return Promise.resolve(now);
    const wanted = keyString(key);
    return new Promise((resolve) => {
      const done = (object: ResourceByKind[K] | undefined) => {
        clearTimeout(timer);
        unsubscribe();
        resolve(object);
      };
      const unsubscribe = this.onChange((c) => {
        if (c.kind === kind && c.type !== 'deleted' && keyString(keyOf(c.object.metadata)) === wanted)
          done(c.object as ResourceByKind[K]);
      });
      const timer = setTimeout(() => done(undefined), timeoutMs);
    });
  }

  async start(): Promise<void> {
    for (const kind of FOLLOWED_KINDS) this.informers[kind].start();
    await Promise.all(FOLLOWED_KINDS.map((k) => this.informers[k].synced()));
  }

  async stop(): Promise<void> {
    await Promise.all(FOLLOWED_KINDS.map((k) => this.informers[k].stop()));
  }

  private sortedBlocks(): BlockFacts[] {
    return [...this.blocks.values()].sort((a, b) =>
      a.network < b.network ? -1 : a.network > b.network ? 1 : 0,
    );
  }

  /** Block CIDRs affine to `node`, in address order. */
  blocksOf(node: string): string[] {
    return this.sortedBlocks()
      .filter((b) => b.affinity === node)
      .map((b) => b.cidr);
  }

  /** Addresses held for pods on `node` in blocks not affine to it (borrowed, or fixed in unclaimed blocks). */
  borrowedBy(node: string): string[] {
    return this.sortedBlocks()
      .filter((b) => b.affinity !== node)
      .flatMap((b) => b.records.filter((r) => r.node === node).map((r) => r.address));
  }

  /** Allocations held for pods on `node`, in any block, in address order. */
  allocationsOn(node: string): AllocationRecord[] {
    return this.sortedBlocks().flatMap((b) => b.records.filter((r) => r.node === node));
  }

  /** Addresses of every pod in the cluster, keyed `namespace/name`, from IPAM allocations. */
  podAddresses(): Map<string, { ips: string[]; node?: string; ifnames: string[] }> {
    const out = new Map<string, { ips: string[]; node?: string; ifnames: string[] }>();
    for (const block of this.sortedBlocks()) {
      for (const r of block.records) {
        if (!r.namespace || !r.pod) continue;
        const key = `${r.namespace}/${r.pod}`;
        const entry = out.get(key) ?? { ips: [], ifnames: [], ...(r.node ? { node: r.node } : {}) };
        entry.ips.push(r.address);
        if (r.ifname && !entry.ifnames.includes(r.ifname)) entry.ifnames.push(r.ifname);
        out.set(key, entry);
      }
    }
    return out;
  }

  private emit(change: ClusterChange): void {
    for (const fn of this.listeners) fn(change);
  }
}

function factsOf(block: IPAMBlock): BlockFacts {
  return {
    cidr: block.spec.cidr,
    network: parseCidr(block.spec.cidr).network,
    ...(block.spec.affinity ? { affinity: block.spec.affinity } : {}),
    records: recordsOf(block),
  };
}
