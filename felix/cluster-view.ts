// The agent's view of the cluster: one informer per kind it follows, and the facts derived
// from them. Pod addresses come from IPAM allocations (cluster-wide, present the moment an
// ADD allocates) rather than from pod status, which only Kubernetes fills in, and later.
import { Informer, type Datastore } from '../datastore/index.js';
import { allocationsOfNode, blocksOfNode, borrowedByNode, recordsOf } from '../ipam/index.js';
import type { AllocationRecord } from '../ipam/index.js';

import type { Kind, ResourceByKind } from '../model/index.js';

export const FOLLOWED_KINDS = [
  'Node',
  'BGPPeer',
  'BGPConfiguration',
  'IPPool',
  'IPAMBlock',
  'Pod',
  'Namespace',
  'NetworkPolicy',
] as const satisfies readonly Kind[];
export type FollowedKind = (typeof FOLLOWED_KINDS)[number];

type Informers = { [K in FollowedKind]: Informer<K> };

export class ClusterView {
  private readonly informers: Informers;
  private readonly listeners = new Set<(kind: FollowedKind) => void>();

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
    };
    for (const kind of FOLLOWED_KINDS) {
      (this.informers[kind] as Informer<Kind>).on({ onChange: () => this.emit(kind) });
    }
  }

  informer<K extends FollowedKind>(kind: K): Informer<K> {
    return this.informers[kind] as Informer<K>;
  }

  list<K extends FollowedKind>(kind: K): Array<ResourceByKind[K]> {
    return this.informer(kind).list();
  }

  /** Calls `fn` with the kind of every change after start (relists included). */
  onChange(fn: (kind: FollowedKind) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async start(): Promise<void> {
    for (const kind of FOLLOWED_KINDS) this.informers[kind].start();
    await Promise.all(FOLLOWED_KINDS.map((k) => this.informers[k].synced()));
  }

  async stop(): Promise<void> {
    await Promise.all(FOLLOWED_KINDS.map((k) => this.informers[k].stop()));
  }

  /** Block CIDRs affine to `node`. */
  blocksOf(node: string): string[] {
    return blocksOfNode(this.list('IPAMBlock'), node);
  }

  /** Addresses held for pods on `node` inside blocks affine to other nodes. */
  borrowedBy(node: string): string[] {
    return borrowedByNode(this.list('IPAMBlock'), node);
  }

  allocationsOn(node: string): AllocationRecord[] {
    return allocationsOfNode(this.list('IPAMBlock'), node);
  }

  /** Addresses of every pod in the cluster, keyed `namespace/name`, from IPAM allocations. */
  podAddresses(): Map<string, { ips: string[]; node?: string; ifnames: string[] }> {
    const out = new Map<string, { ips: string[]; node?: string; ifnames: string[] }>();
    for (const block of this.list('IPAMBlock')) {
      for (const r of recordsOf(block)) {
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

  private emit(kind: FollowedKind): void {
    for (const fn of this.listeners) fn(kind);
  }
}
