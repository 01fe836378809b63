// Drives the node's BGP speaker from the cluster view: sessions follow Nodes, BGPPeers and
// the BGPConfiguration; announcements follow the node's IPAM blocks and borrowed addresses;
// best paths learned from peers become routes of the reconciler's `bgp` class.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { BgpSpeaker, type SpeakerOptions } from '../bgp/index.js';
import { installableNextHop } from '../bgp/next-hop.js';
import type {
  BestPathChange,
  OriginateAttributes,
  PeerOptions,
  PeerStatus,
  RibEntry,
} from '../bgp/speaker.js';
import type { Policy } from '../bgp/index.js';
import { parseIp, type BGPConfiguration } from '../model/index.js';
import { announcements } from './announcements.js';
import {
  bgpNodeOf,
  clusterSettings,
  desiredPeers,
  diffPeers,
  type BgpNode,
  type DesiredPeer,
} from './bgp-peers.js';
import type { ClusterView } from './cluster-view.js';
import type { RouteReconciler } from '../kernel/routes/reconciler.js';

export interface BgpControllerOptions {
  view: ClusterView;
  routes: RouteReconciler;
  nodeName: string;
  nodeIPv4?: string;
  nodeIPv6?: string;
  /** This node's own AS; absent = the cluster's. */
  asNumber?: number;
  listenPort: number;
  logger: Logger;
  /** Longest wait for peers before stale learned routes (adopted at start) may be removed. */
  initialSyncMs?: number;
  /**
   * Restart time advertised for graceful restart (RFC 4724), seconds; 0 turns graceful restart
   * off. BGPConfiguration.gracefulRestartTime overrides it cluster-wide.
   */
  gracefulRestartSeconds?: number;
  /**
   * This start is a restart (the kernel held routes of ours): set the R bit and send our table
   * only after the peers' End-of-RIB. A cold start sends at once: deferring it would hold back
   * a new node's announcements for up to the selection-deferral time while its peers come up.
   */
  restarting?: boolean;
  /** Builds the speaker; default a real BgpSpeaker (unit tests pass a fake). */
  createSpeaker?: (options: SpeakerOptions) => Speaker;
}

/** What the controller uses of the speaker (BgpSpeaker; a fake in unit tests). */
export interface Speaker {
  start(): Promise<void>;
  stop(): Promise<void>;
  addPeer(options: PeerOptions): void;
  removePeer(address: string): void;
  updatePeer(options: PeerOptions): void;
  originate(prefix: string, attrs?: OriginateAttributes): void;
  withdraw(prefix: string): void;
  peers(): PeerStatus[];
  rib(filter?: { prefix?: string }): RibEntry[];
  on(event: 'bestPathChanged', listener: (change: BestPathChange) => void): unknown;
  on(event: 'peerStateChanged', listener: (status: PeerStatus) => void): unknown;
  /** A restarting speaker has every peer's End-of-RIB (or gave up waiting): the RIB is complete. */
  on(event: 'deferralEnded', listener: () => void): unknown;
}

/**
 * The BGP identifier: the node's IPv4 address, else (IPv6-only node) 32 bits of a hash of its
 * name, so that two IPv6-only nodes never present the same identifier (RFC 6286 needs it unique
 * within the AS; an OPEN carrying the receiver's own identifier is refused).
 */
export function routerIdOf(nodeName: string, ipv4: string | undefined): string {
  if (ipv4) return ipv4;
  const h = createHash('sha1').update(nodeName).digest();
  // Avoid 0.0.0.0 (invalid) by forcing the first octet into 1..254.
  return [(h[0]! % 254) + 1, h[1], h[2], h[3]].join('.');
}

/** How long a prefix known from the CNI path is announced without the datastore confirming it. */
const PROVISIONAL_MS = 10_000;

export interface PeerStatusWithSource extends PeerStatus {
  source: string;
}

export class BgpController {
  private speaker: Speaker | undefined;
  private speakerKey = '';
  private readonly peers = new Map<string, DesiredPeer>();
  private readonly originated = new Set<string>();
  private readonly learned = new Set<string>();
  private syncTimer: NodeJS.Timeout | undefined;
  private bgpSynced = false;
  /** Large community marking this node's own announcements (see ownRoutesOnly). */
  private marker = '';
  private asn = 0;
  /**
   * Prefixes this node's IPAM has just claimed or borrowed, known from the CNI path before the
   * datastore watch reports them (prefix → expiry, ms). The watch round trip is thus off the
   * announcement's critical path; an entry goes once the view has it, or at expiry.
   */
  private readonly provisional = new Map<string, { borrowed: boolean; until: number }>();
  private provisionalTimer: NodeJS.Timeout | undefined;
  /** A restarting speaker is waiting for its peers' End-of-RIB. */
  private deferring = false;
  private startedOnce = false;

  /** Only the agent's first speaker can be a restart; a later one follows an identity change. */
  private isRestart(): boolean {
    return !!this.o.restarting && !this.startedOnce;
  }

  constructor(private readonly o: BgpControllerOptions) {}

  private clusterConfig(): BGPConfiguration | undefined {
    return this.o.view.list('BGPConfiguration').find((c) => c.metadata.name === 'default');
  }

  private self(): BgpNode {
    const settings = clusterSettings(this.clusterConfig());
    const node = this.o.view.informer('Node').get({ name: this.o.nodeName });
    const fromStore = node ? bgpNodeOf(node, settings.asn) : undefined;
    return {
      name: this.o.nodeName,
      ...(this.o.nodeIPv4 ? { ipv4: this.o.nodeIPv4 } : {}),
      ...(this.o.nodeIPv6 ? { ipv6: this.o.nodeIPv6 } : {}),
      asn: this.o.asNumber ?? fromStore?.asn ?? settings.asn,
      labels: fromStore?.labels ?? {},
      ...(fromStore?.routeReflectorClusterId
        ? { routeReflectorClusterId: fromStore.routeReflectorClusterId }
        : {}),
    };
  }

  private running: Promise<void> | undefined;
  private again = false;

  /**
   * Brings the speaker and its sessions and announcements in line with the cluster view. Calls
   * made while a pass runs are folded into one more pass (a speaker restart awaits, and two
   * interleaved passes would each start a speaker); every caller resolves after a pass that
   * began after its call.
   */
  async reconcile(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.reconcileOnce();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async reconcileOnce(): Promise<void> {
    const settings = clusterSettings(this.clusterConfig());
    const self = this.self();
    const routerId = routerIdOf(self.name, self.ipv4);
    const clusterId = settings.isReflector(self)
      ? (self.routeReflectorClusterId ?? settings.clusterId)
      : undefined;
    const listenPort = settings.listenPort ?? this.o.listenPort;
    const restartTime = this.clusterConfig()?.spec.gracefulRestartTime ?? this.o.gracefulRestartSeconds ?? 0;
    const key = JSON.stringify([self.asn, routerId, clusterId, listenPort, restartTime]);
    if (!this.speaker || key !== this.speakerKey)
      await this.restartSpeaker({ asn: self.asn, routerId, clusterId, listenPort, restartTime }, key);
    const speaker = this.speaker!;

    const nodes = this.o.view
      .list('Node')
      .map((n) => bgpNodeOf(n, settings.asn))
      .filter((n): n is BgpNode => n !== undefined);
    const desired = desiredPeers(self, nodes, this.o.view.list('BGPPeer'), settings);
    const diff = diffPeers(this.peers, desired);
    for (const address of diff.remove) {
      speaker.removePeer(address);
      this.peers.delete(address);
    }
    // A peer the speaker refuses (say, a password without the TCP MD5 addon built) is logged and
    // left out; the others go on, and the next reconcile tries it again.
    for (const p of diff.change) {
      if (this.tryPeer(p, () => speaker.updatePeer(this.peerOptions(p)))) this.peers.set(p.address, p);
      else {
        speaker.removePeer(p.address);
        this.peers.delete(p.address);
      }
    }
    for (const p of diff.add) {
      if (this.tryPeer(p, () => speaker.addPeer(this.peerOptions(p)))) this.peers.set(p.address, p);
    }
    if (diff.add.length + diff.remove.length + diff.change.length > 0) {
      this.o.logger.info(
        {
          add: diff.add.map((p) => p.address),
          remove: diff.remove,
          change: diff.change.map((p) => p.address),
        },
        'BGP peers changed',
      );
    }

    const blocks = this.o.view.blocksOf(this.o.nodeName);
    const borrowed = this.o.view.borrowedBy(this.o.nodeName);
    this.mergeProvisional(blocks, borrowed);
    const wanted = this.announcementsOf(blocks, borrowed);
    // New prefixes first, withdrawals after: a block that replaces a narrower announcement
    // (or the reverse) is never absent from the peers in between.
    for (const prefix of wanted) {
      if (!this.originated.has(prefix)) {
        speaker.originate(prefix, { communities: [this.marker] });
        this.originated.add(prefix);
      }
    }
    for (const prefix of this.originated) {
      if (!wanted.has(prefix)) {
        speaker.withdraw(prefix);
        this.originated.delete(prefix);
      }
    }
    this.maybeMarkSynced();
  }

  /**
   * Called by the agent the moment IPAM has assigned addresses to a local pod (before the veth
   * exists): announces a newly claimed block (or a borrowed address) at once.
   */
  assigned(addresses: ReadonlyArray<{ block: string; address: string; borrowed: boolean }>): Promise<void> {
    const until = Date.now() + PROVISIONAL_MS;
    let added = false;
    for (const a of addresses) {
      const prefix = a.borrowed ? a.address : a.block;
      if (!this.provisional.has(prefix)) added = true;
      this.provisional.set(prefix, { borrowed: a.borrowed, until });
    }
    if (!added) return Promise.resolve();
    this.provisionalTimer ??= setTimeout(() => {
      this.provisionalTimer = undefined;
      void this.reconcile().catch(() => undefined);
    }, PROVISIONAL_MS + 100);
    this.provisionalTimer.unref();
    return this.reconcile();
  }

  private announced: { key: string; wanted: Set<string> } = { key: '', wanted: new Set() };

  /** Aggregation (CIDR parsing, bigint merging) only when this node's blocks actually changed. */
  private announcementsOf(blocks: string[], borrowed: string[]): Set<string> {
    const key = `${blocks.sort().join(',')}|${borrowed.sort().join(',')}`;
    if (key !== this.announced.key)
      this.announced = { key, wanted: new Set(announcements(blocks, borrowed)) };
    return this.announced.wanted;
  }

  /** Adds provisional prefixes the view does not have yet to `blocks` / `borrowed`; drops the rest. */
  private mergeProvisional(blocks: string[], borrowed: string[]): void {
    const now = Date.now();
    for (const [prefix, p] of this.provisional) {
      const known = p.borrowed ? borrowed : blocks;
      if (known.includes(prefix) || p.until < now) this.provisional.delete(prefix);
      else known.push(prefix);
    }
  }

  private async restartSpeaker(
    identity: {
      asn: number;
      routerId: string;
      clusterId: string | undefined;
      listenPort: number;
      restartTime: number;
    },
    key: string,
  ): Promise<void> {
    const { asn, routerId, clusterId, listenPort, restartTime } = identity;
    if (this.speaker) {
      this.o.logger.info({ asn, routerId, clusterId }, 'BGP identity changed: restarting the speaker');
      await this.speaker.stop();
      this.peers.clear();
      this.originated.clear();
    }
    this.asn = asn;
    this.marker = `${asn}:${Number(parseIp(routerId).value)}:1`;
    const options: SpeakerOptions = {
      asn,
      routerId,
      listen: { port: listenPort },
      ...(clusterId ? { clusterId } : {}),
      // Dual stack on one session: IPv6 blocks over an IPv4 session (and the reverse) carry the
      // node's own address of that family as next hop.
      nextHops: {
        ...(this.o.nodeIPv4 ? { ipv4: this.o.nodeIPv4 } : {}),
        ...(this.o.nodeIPv6 ? { ipv6: this.o.nodeIPv6 } : {}),
      },
      // Graceful restart in both roles: peers keep this node's routes (forwarding state: the
      // kernel keeps them, see the reconciler) while the agent restarts, and this node keeps a
      // restarting peer's routes.
      gracefulRestart:
        restartTime > 0 ? { restartTime, forwardingState: true, restarting: this.isRestart() } : false,
      logger: this.o.logger.child({ component: 'bgp' }),
    };
    const speaker: Speaker = this.o.createSpeaker ? this.o.createSpeaker(options) : new BgpSpeaker(options);
    speaker.on('bestPathChanged', (c) => this.onBestPath(c));
    speaker.on('peerStateChanged', () => this.maybeMarkSynced());
    this.deferring = !!options.gracefulRestart && options.gracefulRestart.restarting === true;
    this.startedOnce = true;
    speaker.on('deferralEnded', () => {
      this.deferring = false;
      this.markBgpSynced('End-of-RIB from every peer');
    });
    await speaker.start();
    this.speaker = speaker;
    this.speakerKey = key;
    this.syncTimer ??= setTimeout(
      () => this.markBgpSynced('initial sync timeout'),
      this.o.initialSyncMs ?? 30_000,
    );
    this.syncTimer.unref();
  }

  private onBestPath(change: BestPathChange): void {
    const best = change.best;
    const own = best === undefined || best.source === 'local' || !best.nextHop;
    // A route through ourselves (global next hop = a node address; a link-local half never is).
    const nextHop = best?.nextHop;
    if (own || nextHop === this.o.nodeIPv4 || nextHop === this.o.nodeIPv6) {
      if (this.learned.delete(change.prefix)) this.o.routes.remove('bgp', change.prefix);
      return;
    }
    // The global next hop when usable; a link-local one (with the session's interface) otherwise.
    const hop = installableNextHop(best.nextHop, best.linkLocalNextHop, best.nextHopInterface);
    if (!hop) {
      if (this.learned.delete(change.prefix)) this.o.routes.remove('bgp', change.prefix);
      this.o.logger.warn({ prefix: change.prefix, nextHop }, 'BGP route with no installable next hop');
      return;
    }
    this.learned.add(change.prefix);
    this.o.routes.upsert('bgp', { dst: change.prefix, ...hop });
  }

  /**
   * Learned routes adopted from a previous run stay until the speaker's RIB is complete: after a
   * graceful restart, when it has every peer's End-of-RIB (`deferralEnded`); otherwise when every
   * session is up and has had a moment to send its table. The initial-sync timeout is the
   * backstop. A restart never flushes them.
   */
  private maybeMarkSynced(): void {
    if (this.bgpSynced || !this.speaker || this.deferring) return;
    const statuses = this.speaker.peers();
    if (statuses.length > 0 && statuses.every((p) => p.state === 'Established')) {
      setTimeout(() => this.markBgpSynced('all sessions established'), 2000).unref();
    }
  }

  private markBgpSynced(reason: string): void {
    if (this.bgpSynced) return;
    this.bgpSynced = true;
    this.o.routes.markSynced('bgp');
    this.o.logger.info({ reason, learned: this.learned.size }, 'BGP routes synced');
  }

  /** Sessions ordered by peer address. */
  peerStatuses(): PeerStatusWithSource[] {
    return (this.speaker?.peers() ?? [])
      .map((p) => ({ ...p, source: this.peers.get(p.address)?.source ?? '' }))
      .sort((a, b) => compareIps(a.address, b.address));
  }

  rib(prefix?: string) {
    return this.speaker?.rib(prefix ? { prefix } : {}) ?? [];
  }

  originatedPrefixes(): string[] {
    return [...this.originated].sort();
  }

  async stop(): Promise<void> {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.provisionalTimer) clearTimeout(this.provisionalTimer);
    await this.speaker?.stop();
  }

  private tryPeer(p: DesiredPeer, apply: () => void): boolean {
    try {
      apply();
      return true;
    } catch (err) {
      this.o.logger.error(
        { peer: p.address, source: p.source, err: (err as Error).message },
        'BGP peer not configured',
      );
      return false;
    }
  }

  private peerOptions(p: DesiredPeer) {
    return {
      ...peerOptions(p),
      ...(p.asn !== this.asn ? { exportPolicy: ownRoutesOnly(this.marker) } : {}),
    };
  }
}

/**
 * Export policy towards eBGP peers (ToR switches, nodes of another AS): only this node's own
 * announcements, recognised by its marker community, which is removed on the way out. Without
 * it a node would re-advertise routes it learned from other nodes with itself as next hop, and
 * the fabric could send another node's pod traffic through it.
 */
export function ownRoutesOnly(marker: string): Policy {
  return {
    rules: [{ match: { communities: [marker] }, action: 'accept', set: { removeCommunities: [marker] } }],
    defaultAction: 'reject',
  };
}

function compareIps(a: string, b: string): number {
  const x = parseIp(a);
  const y = parseIp(b);
  return x.family !== y.family ? x.family - y.family : x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

function peerOptions(p: DesiredPeer) {
  return {
    address: p.address,
    asn: p.asn,
    ...(p.routeReflectorClient ? { routeReflectorClient: true } : {}),
    ...(p.holdTime !== undefined ? { holdTime: p.holdTime } : {}),
    ...(p.keepaliveTime !== undefined ? { keepaliveTime: p.keepaliveTime } : {}),
    ...(p.passive !== undefined ? { passive: p.passive } : {}),
    ...(p.port !== undefined ? { port: p.port } : {}),
    ...(p.password !== undefined ? { password: p.password } : {}),
    ...(p.ttlSecurity !== undefined ? { ttlSecurity: p.ttlSecurity } : {}),
    ...(p.bfd !== undefined ? { bfd: p.bfd } : {}),
    connectRetryTime: 5,
  };
}
