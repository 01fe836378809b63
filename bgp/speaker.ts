// The BGP speaker: peers (sessions + Adj-RIB-In/Out), the Loc-RIB, import/export processing
// (iBGP, eBGP, route reflection, policy) and the listening socket. No I/O besides node:net.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { pino, type Logger } from 'pino';
import { ValidationError } from '../model/errors.js';
import { parseIp } from '../model/cidr.js';
import { AdjRibOut } from './adj-rib-out.js';
import { BFD_DOWN_REASON, CEASE_BFD_DOWN, bgpEffect } from './bfd/bgp-effect.js';
import { BfdManager, type BfdPeerStateChange, type BfdPeerStatus } from './bfd/manager.js';
import type { BfdOptions } from './bfd/options.js';
import {
  acceptAll,
  compilePolicy,
  type Policy,
  prependAs,
  stripUndefined,
  parseCommunity,
} from './policy.js';
import { resolveGracefulRestart, type GracefulRestartOptions } from './graceful-restart.js';
import { GracefulRestartState } from './graceful-restart-state.js';
import { FAMILIES, Peer, exportCaches, type SpeakerCore } from './peer.js';
import { RouteRefreshState } from './route-refresh-state.js';
import { type ConfiguredNextHops, localNextHops } from './next-hop.js';
import { AttributeInterner, LocRib, type Path, RouteSource } from './rib.js';
import { ListenerSecurity, checkSecurity, securityOf } from './tcp-security.js';
import {
  Session,
  type DownCause,
  type Negotiated,
  type SessionHandler,
  type SessionState,
} from './session.js';
import type { PathAttributes } from './wire/attributes.js';
import { AsPathSegmentType, CeaseSubcode, Origin } from './wire/constants.js';
import type { UpdateMessage } from './wire/messages.js';
import { familyOf, formatPrefix, parseIpv4, parsePrefix, type PrefixKey } from './wire/prefix.js';
import { toRouteView, type RouteView } from './view.js';

export interface SpeakerOptions {
  readonly asn: number;
  readonly routerId: string;
  /** Where to accept connections; default all addresses, port 179. `false`: no listener. */
  readonly listen?: { readonly host?: string; readonly port?: number } | false;
  /** Route reflector cluster ID; default the router ID. */
  readonly clusterId?: string;
  /**
   * Graceful restart (RFC 4724 + RFC 8538) in both roles; off when absent. `{}` takes the defaults
   * (restart time 120 s, F bit and N bit set, this start counts as a restart).
   */
  readonly gracefulRestart?: GracefulRestartOptions | false;
  /**
   * The node's own addresses, next hops for routes of the family the session is not carried
   * over (IPv6 routes on an IPv4 session and the reverse). See next-hop.ts for the fallbacks.
   */
  readonly nextHops?: ConfiguredNextHops;
  /**
   * Enhanced route refresh (RFC 7313): seconds after a peer's BoRR before the routes it has not
   * re-sent are purged when its EoRR never comes. Default 360.
   */
  readonly refreshPurgeTime?: number;
  /** BFD transport: the UDP port listened on and sent to (default 3784; tests use another). */
  readonly bfd?: { readonly port?: number };
  readonly logger?: Logger;
}

export interface PeerOptions {
  readonly address: string;
  readonly asn: number;
  readonly localAddress?: string;
  /** The peer's TCP port (default 179). */
  readonly port?: number;
  readonly passive?: boolean;
  readonly routeReflectorClient?: boolean;
  /** Seconds (default 90; 0 = no hold timer). */
  readonly holdTime?: number;
  readonly keepaliveTime?: number;
  /** Seconds between connection attempts (default 30). */
  readonly connectRetryTime?: number;
  /** Set our address as next hop on routes sent to this (iBGP) peer; always done for eBGP. */
  readonly nextHopSelf?: boolean;
  /** TCP MD5 key (RFC 2385), 1..80 bytes; needs the native addon (native/). */
  readonly password?: string;
  /** GTSM (RFC 5082): the peer is at most this many hops away (1..254); we send TTL 255. */
  readonly ttlSecurity?: number;
  readonly importPolicy?: Policy;
  readonly exportPolicy?: Policy;
  /** `false`: no graceful restart with this peer even when the speaker has it. */
  readonly gracefulRestart?: boolean;
  /** `false`: do not advertise enhanced route refresh (RFC 7313) to this peer. */
  readonly enhancedRouteRefresh?: boolean;
  /**
   * BFD (RFC 5880/5881) to the peer address: its Up → Down takes the BGP session down at once
   * (Cease/BFD Down) and holds it down until BFD is Up again. Defaults 300 ms / 300 ms / 3.
   */
  readonly bfd?: BfdOptions;
}

export interface OriginateAttributes {
  /** Default: the session's local address towards each peer. */
  readonly nextHop?: string;
  readonly origin?: 'igp' | 'egp' | 'incomplete';
  readonly med?: number;
  readonly localPref?: number;
  readonly communities?: readonly string[];
}

export interface PeerStatus {
  readonly address: string;
  readonly asn: number;
  readonly type: 'ibgp' | 'ebgp';
  readonly state: SessionState;
  /** ISO time of the last state change. */
  readonly since: string;
  /** Seconds in Established, when it is. */
  readonly uptime?: number;
  readonly routerId?: string;
  readonly localAddress?: string;
  readonly holdTime?: number;
  readonly passive: boolean;
  readonly routeReflectorClient: boolean;
  readonly prefixesReceived: number;
  readonly prefixesAccepted: number;
  readonly prefixesAdvertised: number;
  /** Routes kept from this peer's previous session (graceful restart) and not yet refreshed. */
  readonly prefixesStale?: number;
  readonly lastError?: string;
  /** The BFD session to this peer, when configured. */
  readonly bfd?: BfdPeerStatus;
}

export interface BestPathChange {
  readonly prefix: string;
  /**
   * Undefined: no route any more. `nextHopInterface`: the interface of the session the route
   * came from, the device a link-local next hop is reached through.
   */
  readonly best?: RouteView & { readonly nextHopInterface?: string };
}

export interface RibEntry {
  readonly prefix: string;
  readonly paths: readonly RouteView[];
}

type Events = {
  bestPathChanged: [BestPathChange];
  peerStateChanged: [PeerStatus];
  /** Graceful restart: route selection deferral ended, our table was sent to the peers. */
  deferralEnded: [];
};

export class BgpSpeaker extends EventEmitter<Events> {
  readonly asn: number;
  readonly routerId: string;
  readonly clusterId: string;
  private readonly log: Logger;
  private readonly interner = new AttributeInterner();
  private readonly locRib = new LocRib();
  private readonly local: RouteSource;
  private readonly peersByAddress = new Map<string, Peer>();
  private readonly peersBySession = new Map<Session, Peer>();
  private server: net.Server | undefined;
  private readonly tcpSecurity: ListenerSecurity;
  private readonly bfd: BfdManager;
  /** Peers whose BGP session BFD took down, held down until BFD is Up again. */
  private readonly heldByBfd = new Set<string>();
  /** Whether anyone listens to bestPathChanged (kept current by the listener hooks below). */
  private notifyBest = false;
  private started = false;
  private readonly gr: GracefulRestartState;
  private readonly refresh: RouteRefreshState;

  constructor(private readonly options: SpeakerOptions) {
    super();
    if (!Number.isInteger(options.asn) || options.asn < 1 || options.asn > 0xffffffff) {
      throw new ValidationError('asn', `${options.asn} is not an AS number (1..4294967295)`);
    }
    parseIpv4(options.routerId, 'routerId');
    if (options.clusterId) parseIpv4(options.clusterId, 'clusterId');
    this.asn = options.asn;
    this.routerId = options.routerId;
    this.clusterId = options.clusterId ?? options.routerId;
    this.log = options.logger ?? pino({ level: 'silent' });
    this.tcpSecurity = new ListenerSecurity(this.log);
    this.bfd = new BfdManager({ logger: this.log, ...(options.bfd?.port ? { port: options.bfd.port } : {}) });
    this.bfd.on('stateChanged', (c) => this.onBfdChange(c));
    const core: SpeakerCore = {
      log: this.log,
      locRib: this.locRib,
      peerList: () => this.peersByAddress.values(),
      setRoute: (prefix, source, path) => this.setRoute(prefix, source, path),
      exportTo: (peer, prefix, best, force) => this.exportTo(peer, prefix, best, force),
      sendInitialTable: (peer) => this.sendInitialTable(peer),
    };
    this.gr = new GracefulRestartState(core, resolveGracefulRestart(options.gracefulRestart), () =>
      this.emit('deferralEnded'),
    );
    this.refresh = new RouteRefreshState(core, options.refreshPurgeTime ?? 360);
    this.local = new RouteSource('local', '', options.asn);
    // Checked per route on the ingest path, so cache it instead of calling listenerCount().
    const plain = this as EventEmitter;
    plain.on('newListener', (event: string) => {
      if (event === 'bestPathChanged') this.notifyBest = true;
    });
    plain.on('removeListener', () => (this.notifyBest = this.listenerCount('bestPathChanged') > 0));
    this.local.setRouterId(options.routerId);
  }

  // ------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.gr.start();
    if (this.options.listen !== false) {
      const server = net.createServer((socket) => this.incoming(socket));
      const { host, port = 179 } = this.options.listen ?? {};
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, ...(host ? { host } : {}) }, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
      server.on('error', (err) => this.log.error({ err }, 'listener error'));
      this.server = server;
      this.tcpSecurity.attach(server);
    }
    for (const p of this.peersByAddress.values()) {
      // A previous stop() closed the BFD sessions.
      if (p.options.bfd && !this.bfd.status(p.options.address)) {
        this.bfd.add(p.options.address, bfdPeerOptions(p.options));
      }
      p.session.start();
    }
  }

  /** The port actually listened on (useful with port 0). */
  get listenPort(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  /** Whether our table is still held back after a restart (see GracefulRestartOptions.restarting). */
  get deferringSelection(): boolean {
    return this.gr.deferringSelection;
  }

  async stop(): Promise<void> {
    this.started = false;
    this.gr.stop();
    for (const p of this.peersByAddress.values())
      p.session.stop(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, 'speaker stopped');
    const server = this.server;
    this.server = undefined;
    this.tcpSecurity.detach();
    await this.bfd.close();
    this.heldByBfd.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private incoming(socket: net.Socket): void {
    const remote = normalize(socket.remoteAddress);
    const peer = this.peersByAddress.get(remote);
    if (!peer) {
      this.log.debug({ remote }, 'connection from an unconfigured address closed');
      socket.destroy();
      return;
    }
    const refused = this.tcpSecurity.secureAccepted(socket, securityOf(peer.options));
    if (refused) {
      peer.session.lastError = refused;
      return void socket.destroy();
    }
    peer.session.accept(socket);
  }

  // ------------------------------------------------------------ peers

  addPeer(options: PeerOptions): void {
    const address = canonicalAddress(options.address, 'address');
    if (this.peersByAddress.has(address))
      throw new ValidationError('address', `peer ${address} already exists`);
    if (!Number.isInteger(options.asn) || options.asn < 1 || options.asn > 0xffffffff) {
      throw new ValidationError('asn', `${options.asn} is not an AS number`);
    }
    const holdTime = options.holdTime ?? 90;
    if (holdTime !== 0 && (holdTime < 3 || holdTime > 65535))
      throw new ValidationError('holdTime', 'must be 0 or 3..65535');
    const opts = { ...options, address };
    const security = securityOf(options);
    if (security) checkSecurity(security);
    const session = new Session(
      {
        localAsn: this.asn,
        routerId: this.routerId,
        peerAddress: address,
        peerAsn: options.asn,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        port: options.port ?? 179,
        passive: !!options.passive,
        holdTime,
        ...(options.keepaliveTime !== undefined ? { keepaliveTime: options.keepaliveTime } : {}),
        connectRetryTime: options.connectRetryTime ?? 30,
        families: FAMILIES,
        ...(security ? { security } : {}),
        ...(options.enhancedRouteRefresh === false ? { enhancedRouteRefresh: false } : {}),
      },
      this.sessionHandler,
      this.log,
    );
    const peer = new Peer(opts, session, options.asn === this.asn);
    this.gr.setCapability(peer);
    this.tcpSecurity.setPeer(address, security);
    if (options.bfd) this.bfd.add(address, bfdPeerOptions(options));
    this.peersByAddress.set(address, peer);
    this.peersBySession.set(session, peer);
    if (this.started) session.start();
  }

  removePeer(address: string): void {
    const peer = this.peersByAddress.get(canonicalAddress(address, 'address'));
    if (!peer) return;
    peer.session.stop(CeaseSubcode.PEER_DECONFIGURED, 'peer removed');
    this.gr.clearStale(peer);
    this.dropPeerRoutes(peer);
    this.peersByAddress.delete(peer.options.address);
    this.peersBySession.delete(peer.session);
    this.tcpSecurity.setPeer(peer.options.address, undefined);
    this.bfd.remove(peer.options.address);
    this.heldByBfd.delete(peer.options.address);
  }

  /**
   * Changes a peer. Session parameters (AS, addresses, port, timers, passive) restart only this
   * session; policy and role changes are applied in place.
   */
  updatePeer(options: PeerOptions): void {
    const address = canonicalAddress(options.address, 'address');
    const peer = this.peersByAddress.get(address);
    if (!peer) throw new ValidationError('address', `no peer ${address}`);
    const o = peer.options;
    const sessionChanged =
      o.asn !== options.asn ||
      o.localAddress !== options.localAddress ||
      o.port !== options.port ||
      !!o.passive !== !!options.passive ||
      o.holdTime !== options.holdTime ||
      o.keepaliveTime !== options.keepaliveTime ||
      o.connectRetryTime !== options.connectRetryTime ||
      o.gracefulRestart !== options.gracefulRestart ||
      o.password !== options.password ||
      o.ttlSecurity !== options.ttlSecurity ||
      o.enhancedRouteRefresh !== options.enhancedRouteRefresh;
    if (sessionChanged || !o.bfd !== !options.bfd) {
      this.removePeer(address);
      this.addPeer(options);
      this.gr.maybeEndDeferral();
      return;
    }
    const importChanged = JSON.stringify(o.importPolicy) !== JSON.stringify(options.importPolicy);
    peer.options = { ...options, address };
    peer.source.rrClient = !!options.routeReflectorClient;
    peer.importFn = compilePolicy(options.importPolicy, 'importPolicy');
    peer.exportFn = compilePolicy(options.exportPolicy, 'exportPolicy');
    peer.exportCache = exportCaches();
    if (options.bfd) this.bfd.update(address, bfdPeerOptions(options));
    if (importChanged && peer.session.state === 'Established') {
      // Without stored pre-policy routes, ask the peer to send everything again (RFC 2918).
      if (peer.session.negotiated?.routeRefresh) {
        for (const f of peer.session.negotiated.families) peer.out?.routeRefresh(f);
      } else {
        peer.session.stop(CeaseSubcode.OTHER_CONFIGURATION_CHANGE, 'import policy changed');
        peer.session.start();
      }
    }
    if (peer.session.state === 'Established') this.refreshExports(peer);
  }

  peers(): PeerStatus[] {
    return [...this.peersByAddress.values()].map((p) => this.status(p));
  }

  private status(p: Peer): PeerStatus {
    const s = p.session;
    const n = s.negotiated;
    return stripUndefined({
      address: p.options.address,
      asn: p.options.asn,
      type: p.ibgp ? 'ibgp' : 'ebgp',
      state: s.state,
      since: new Date(s.since).toISOString(),
      uptime: s.state === 'Established' ? Math.floor((Date.now() - s.since) / 1000) : undefined,
      routerId: n?.peerRouterId,
      localAddress: n?.localAddress,
      holdTime: n?.holdTime,
      passive: !!p.options.passive,
      routeReflectorClient: !!p.options.routeReflectorClient,
      prefixesReceived: p.accepted + p.rejected.size,
      prefixesAccepted: p.accepted,
      prefixesAdvertised: p.out?.advertisedCount ?? 0,
      prefixesStale: p.stale?.size,
      lastError: s.lastError,
      bfd: this.bfd.status(p.options.address),
    } as PeerStatus);
  }

  // ------------------------------------------------------------ local routes

  originate(prefix: string, attrs: OriginateAttributes = {}): void {
    const key = parsePrefix(prefix);
    if (attrs.nextHop) canonicalAddress(attrs.nextHop, 'nextHop');
    const communities = attrs.communities?.map((c, i) => parseCommunity(c, `communities[${i}]`));
    const a: PathAttributes = stripUndefined({
      origin:
        attrs.origin === 'egp' ? Origin.EGP : attrs.origin === 'incomplete' ? Origin.INCOMPLETE : Origin.IGP,
      asPath: [],
      nextHop: attrs.nextHop ? canonicalAddress(attrs.nextHop, 'nextHop') : undefined,
      med: attrs.med,
      localPref: attrs.localPref,
      communities: communities?.filter((c) => !c.large).map((c) => c.value as number),
      largeCommunities: communities?.filter((c) => c.large).map((c) => c.value as [number, number, number]),
    });
    this.setRoute(key, this.local, this.local.path(this.interner.intern(stripEmpty(a))));
  }

  withdraw(prefix: string): void {
    this.setRoute(parsePrefix(prefix), this.local, undefined);
  }

  // ------------------------------------------------------------ RIB views

  rib(filter: { prefix?: string } = {}): RibEntry[] {
    const out: RibEntry[] = [];
    const view = (key: PrefixKey) => ({
      prefix: formatPrefix(key),
      paths: this.locRib.candidates(key).map((p, i) => toRouteView(p, i === 0)),
    });
    if (filter.prefix) {
      const key = parsePrefix(filter.prefix);
      if (this.locRib.candidates(key).length) out.push(view(key));
      return out;
    }
    for (const key of this.locRib.prefixes()) out.push(view(key));
    return out;
  }

  /** Number of prefixes in the Loc-RIB. */
  get ribSize(): number {
    return this.locRib.size;
  }

  // ------------------------------------------------------------ sessions → RIB

  private readonly sessionHandler: SessionHandler = {
    established: (session, n) => this.onEstablished(session, n),
    update: (session, u) => this.onUpdate(session, u),
    routeRefresh: (session, m) => {
      const peer = this.peersBySession.get(session);
      if (peer) this.refresh.onMessage(peer, m);
    },
    down: (session, reason, cause) => this.onDown(session, reason, cause),
    stateChanged: (session) => {
      const peer = this.peersBySession.get(session);
      if (peer && this.listenerCount('peerStateChanged')) this.emit('peerStateChanged', this.status(peer));
    },
  };

  private onEstablished(session: Session, n: Negotiated): void {
    const peer = this.peersBySession.get(session);
    if (!peer) return;
    peer.source.setRouterId(n.peerRouterId);
    peer.exportCache = exportCaches();
    peer.nextHops = localNextHops(n.localAddress, n.remoteAddress, this.options.nextHops);
    peer.negotiated = n;
    peer.out = new AdjRibOut(session, n, this.log);
    this.gr.established(peer, n);
  }

  private sendInitialTable(peer: Peer): void {
    const out = peer.out;
    if (!out || peer.synced) return;
    peer.synced = true;
    for (const [prefix, best] of this.locRib.bestPaths()) this.exportTo(peer, prefix, best);
    out.sendEndOfRibAfterInitialSync(peer.negotiated?.families ?? []);
  }

  private onDown(session: Session, reason: string, cause: DownCause): void {
    const peer = this.peersBySession.get(session);
    if (!peer) return;
    peer.out?.close();
    peer.out = undefined;
    peer.synced = false;
    this.refresh.forget(peer);
    // BFD saw the path fail: the peer's routes go now, graceful restart or not.
    if (this.gr.keepsRoutesOnDown(peer, cause, reason, this.started && reason !== BFD_DOWN_REASON)) return;
    this.log.info({ peer: peer.options.address, reason }, 'session down; withdrawing its routes');
    this.dropPeerRoutes(peer);
  }

  private onBfdChange(c: BfdPeerStateChange): void {
    const peer = this.peersByAddress.get(c.peer);
    if (!peer) return;
    const effect = bgpEffect(c);
    if (effect === 'down') {
      this.heldByBfd.add(c.peer);
      peer.session.stop(CEASE_BFD_DOWN, BFD_DOWN_REASON);
      peer.session.lastError = `${BFD_DOWN_REASON} (${c.diagnostic})`;
    } else if (effect === 'release' && this.heldByBfd.delete(c.peer) && this.started) {
      peer.session.start();
    }
    if (this.listenerCount('peerStateChanged')) this.emit('peerStateChanged', this.status(peer));
  }

  private dropPeerRoutes(peer: Peer): void {
    for (const prefix of this.locRib.prefixesFrom(peer.source)) this.setRoute(prefix, peer.source, undefined);
    peer.rejected.clear();
    peer.accepted = 0;
  }

  private onUpdate(session: Session, u: UpdateMessage): void {
    const peer = this.peersBySession.get(session);
    if (!peer) return;
    if (u.errors.length) {
      this.log.warn(
        { peer: peer.options.address, errors: u.errors.map((e) => `${e.action}: ${e.message}`) },
        'malformed UPDATE handled per RFC 7606',
      );
    }
    if (u.endOfRib) {
      this.gr.endOfRib(peer, u.endOfRib);
      return;
    }
    for (const p of u.withdrawn) this.receive(peer, p, undefined, null);
    if (u.mpUnreach) for (const p of u.mpUnreach.withdrawn) this.receive(peer, p, undefined, null);
    if (!u.attributes) return;
    if (u.treatAsWithdraw) {
      for (const p of u.nlri) this.receive(peer, p, undefined, null);
      if (u.mpReach) for (const p of u.mpReach.nlri) this.receive(peer, p, undefined, null);
      return;
    }
    if (u.nlri.length) {
      const attrs = this.importAttributes(peer, u.attributes);
      const path = attrs && peer.source.path(attrs);
      for (const p of u.nlri) this.receive(peer, p, attrs, path);
    }
    if (u.mpReach?.nlri.length) {
      const mp = u.mpReach;
      const withNh: PathAttributes = stripUndefined({
        ...u.attributes,
        nextHop: mp.nextHop,
        linkLocalNextHop: mp.linkLocalNextHop,
      });
      const attrs = this.importAttributes(peer, withNh);
      const path = attrs && peer.source.path(attrs);
      for (const p of mp.nlri) this.receive(peer, p, attrs, path);
    }
  }

  /** Loop checks and per-session normalization; null when the route must be ignored. */
  private importAttributes(peer: Peer, a: PathAttributes): PathAttributes | null {
    if (peer.ibgp) {
      if (a.originatorId === this.routerId) return null;
      if (a.clusterList?.includes(this.clusterId)) return null;
      return this.interner.intern(a);
    }
    for (const s of a.asPath) if (s.asns.includes(this.asn)) return null;
    // LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST do not cross AS borders.
    if (a.localPref !== undefined || a.originatorId !== undefined || a.clusterList !== undefined) {
      a = stripUndefined({ ...a, localPref: undefined, originatorId: undefined, clusterList: undefined });
    }
    return this.interner.intern(a);
  }

  /**
   * One received prefix: `attrs` undefined = withdrawn, null = ignored (loop); `path` is
   * (source, attrs) computed once per UPDATE.
   */
  private receive(
    peer: Peer,
    prefix: PrefixKey,
    attrs: PathAttributes | null | undefined,
    path: Path | null,
  ): void {
    this.gr.received(peer, prefix);
    this.refresh.received(peer, prefix);
    if (attrs === undefined) {
      if (peer.rejected.size && peer.rejected.delete(prefix)) return;
      if (this.setRoute(prefix, peer.source, undefined)) peer.accepted--;
      return;
    }
    let accepted: Path | null = null;
    if (attrs) {
      if (peer.importFn === acceptAll) {
        accepted = path;
      } else {
        const a = peer.importFn(prefix, attrs);
        accepted = a ? (a === attrs ? path : peer.source.path(this.internDerived(a))) : null;
      }
    }
    if (accepted) {
      if (peer.rejected.size) peer.rejected.delete(prefix);
      if (!this.setRoute(prefix, peer.source, accepted)) peer.accepted++;
    } else {
      if (this.setRoute(prefix, peer.source, undefined)) peer.accepted--;
      peer.rejected.set(prefix, true);
    }
  }

  /** Interns attribute sets made by policy, which returns one object per input set. */
  private readonly derived = new WeakMap<PathAttributes, PathAttributes>();
  private internDerived(a: PathAttributes): PathAttributes {
    let i = this.derived.get(a);
    if (!i) {
      i = this.interner.intern(a);
      this.derived.set(a, i);
    }
    return i;
  }

  /** Updates `source`'s candidate; returns whether `source` had a path for `prefix` before. */
  private setRoute(prefix: PrefixKey, source: RouteSource, path: Path | undefined): boolean {
    const oldBest = this.locRib.set(prefix, source, path);
    const hadPath = this.locRib.replaced !== undefined;
    if (oldBest === false) return hadPath;
    const best = this.locRib.best(prefix);
    if (this.notifyBest) {
      this.emit('bestPathChanged', {
        prefix: formatPrefix(prefix),
        ...(best ? { best: this.bestView(best) } : {}),
      });
    }
    for (const peer of this.peersByAddress.values()) if (peer.synced) this.exportTo(peer, prefix, best);
    return hadPath;
  }

  private bestView(best: Path): NonNullable<BestPathChange['best']> {
    const view = toRouteView(best, true);
    const dev = best.attrs.linkLocalNextHop
      ? this.peersByAddress.get(best.source.address)?.nextHops.interface
      : undefined;
    return dev ? { ...view, nextHopInterface: dev } : view;
  }

  // ------------------------------------------------------------ RIB → peers

  private refreshExports(peer: Peer): void {
    if (!peer.synced) return;
    for (const [prefix, best] of this.locRib.bestPaths()) this.exportTo(peer, prefix, best);
    for (const prefix of peer.out?.advertisedPrefixes() ?? []) {
      if (!this.locRib.best(prefix)) peer.out?.set(prefix, null);
    }
  }

  private exportTo(peer: Peer, prefix: PrefixKey, best: Path | undefined, force = false): void {
    const out = peer.out!;
    let attrs: PathAttributes | null = null;
    if (best) {
      const family = familyOf(prefix);
      const cache = peer.exportCache[family === 6 ? 1 : 0];
      let base = cache.get(best);
      if (base === undefined) {
        base = this.exportAttributes(peer, best, family);
        cache.set(best, base);
      }
      if (base) {
        const policed = peer.exportFn(prefix, base);
        attrs = policed ? (policed === base ? base : this.internDerived(policed)) : null;
      }
      if (attrs && familyOf(prefix) !== out.nextHopFamily(attrs)) attrs = null;
    }
    out.set(prefix, attrs, force);
  }

  /** The attributes `best` is sent to `peer` with, or null when it must not be sent. */
  private exportAttributes(peer: Peer, best: Path, family: 4 | 6): PathAttributes | null {
    const src = best.source;
    if (src === peer.source) return null;
    const a = best.attrs;
    const self = peer.nextHops;
    const selfNextHop = family === 4 ? self.ipv4 : self.ipv6;
    const selfLinkLocal = family === 6 ? self.linkLocal : undefined;
    if (!peer.ibgp) {
      if (a.asPath.some((s) => s.asns.includes(peer.options.asn))) return null;
      return this.interner.intern(
        stripUndefined({
          ...a,
          asPath: prependAs(
            a.asPath.filter((s) => s.type <= AsPathSegmentType.AS_SEQUENCE),
            this.asn,
          ),
          nextHop: selfNextHop,
          linkLocalNextHop: selfLinkLocal,
          localPref: undefined,
          med: src.kind === 'local' ? a.med : undefined,
          originatorId: undefined,
          clusterList: undefined,
        }),
      );
    }
    // iBGP: learned from iBGP is only reflected (RFC 4456 §6).
    let reflect = false;
    if (src.kind === 'ibgp') {
      if (!src.rrClient && !peer.source.rrClient) return null;
      reflect = true;
    }
    // A link-local next hop is only meaningful on the link it was learned on: only ours is sent.
    const useSelf =
      (src.kind === 'local' && !a.nextHop) || (src.kind !== 'local' && peer.options.nextHopSelf && !reflect);
    return this.interner.intern(
      stripUndefined({
        ...a,
        nextHop: useSelf ? selfNextHop : a.nextHop,
        linkLocalNextHop: useSelf ? selfLinkLocal : undefined,
        localPref: a.localPref ?? 100,
        originatorId: reflect ? (a.originatorId ?? src.routerId) : a.originatorId,
        clusterList: reflect ? [this.clusterId, ...(a.clusterList ?? [])] : a.clusterList,
      }),
    );
  }
}

function stripEmpty(a: PathAttributes): PathAttributes {
  const o = { ...a } as Record<string, unknown>;
  for (const k of ['communities', 'largeCommunities'])
    if (Array.isArray(o[k]) && (o[k] as unknown[]).length === 0) delete o[k];
  return o as unknown as PathAttributes;
}

function bfdPeerOptions(o: PeerOptions) {
  return { ...o.bfd, ...(o.localAddress ? { localAddress: o.localAddress } : {}) };
}

function normalize(a: string | undefined): string {
  return a?.startsWith('::ffff:') ? a.slice(7) : (a ?? '');
}

function canonicalAddress(text: string, field: string): string {
  const ip = parseIp(text, field);
  return ip.family === 4 ? text : formatPrefix(parsePrefix(`${text}/128`, field)).replace(/\/128$/, '');
}
