// What the speaker holds per configured peer, and the view of the speaker the graceful-restart
// and route-refresh state machines work through.
import type { Logger } from 'pino';
import type { AdjRibOut } from './adj-rib-out.js';
import type { LocalNextHops } from './next-hop.js';
import { PrefixMap } from './prefix-map.js';
import { compilePolicy, type PolicyFn } from './policy.js';
import { type LocRib, type Path, RouteSource } from './rib.js';
import type { Negotiated, Session } from './session.js';
import type { PeerOptions } from './speaker.js';
import type { PathAttributes } from './wire/attributes.js';
import { Afi, Safi } from './wire/constants.js';
import type { AfiSafi } from './wire/messages.js';
import type { PrefixKey } from './wire/prefix.js';

/** The families every session offers. */
export const FAMILIES: readonly AfiSafi[] = [
  { afi: Afi.IPV4, safi: Safi.UNICAST },
  { afi: Afi.IPV6, safi: Safi.UNICAST },
];

export const familyKey = (f: AfiSafi) => `${f.afi}/${f.safi}`;

type ExportCaches = [WeakMap<Path, PathAttributes | null>, WeakMap<Path, PathAttributes | null>];
export const exportCaches = (): ExportCaches => [new WeakMap(), new WeakMap()];

export class Peer {
  readonly source: RouteSource;
  /**
   * Accepted routes live only in the Loc-RIB (as this source's candidates); prefixes received
   * but rejected by loop checks or import policy are remembered here, for counts and withdrawals.
   */
  readonly rejected = new PrefixMap<true>();
  accepted = 0;
  importFn: PolicyFn;
  exportFn: PolicyFn;
  out: AdjRibOut | undefined;
  /**
   * Export results per best-path attribute set, per family ([IPv4, IPv6]: one locally
   * originated attribute set serves both families with different next hops). Cleared when the
   * peer changes.
   */
  exportCache = exportCaches();
  /** Our next hops towards this peer (set when the session comes up). */
  nextHops: LocalNextHops = {};
  /** Enhanced route refresh in progress from this peer, per family: prefixes not re-sent yet. */
  readonly refreshing = new Map<4 | 6, { stale: PrefixMap<true>; timer: NodeJS.Timeout }>();
  /** Graceful restart: prefixes kept from the previous session, until refreshed or swept. */
  stale: PrefixMap<true> | undefined;
  /** Restart timer (peer down) or stale-path timer (peer back, End-of-RIB awaited). */
  staleTimer: NodeJS.Timeout | undefined;
  /** Families whose End-of-RIB the peer sent on this session. */
  endOfRib = new Set<string>();
  /** What the last Established session negotiated (still known after it went down). */
  negotiated: Negotiated | undefined;
  /** Our initial table went out on this session (held back while deferring selection). */
  synced = false;

  constructor(
    public options: PeerOptions,
    readonly session: Session,
    readonly ibgp: boolean,
  ) {
    this.source = new RouteSource(
      ibgp ? 'ibgp' : 'ebgp',
      options.address,
      options.asn,
      !!options.routeReflectorClient,
    );
    this.importFn = compilePolicy(options.importPolicy, 'importPolicy');
    this.exportFn = compilePolicy(options.exportPolicy, 'exportPolicy');
  }
}

/** What graceful restart and route refresh need of the speaker. */
export interface SpeakerCore {
  readonly log: Logger;
  readonly locRib: LocRib;
  peerList(): Iterable<Peer>;
  /** Updates `source`'s candidate for `prefix`; returns whether it had one before. */
  setRoute(prefix: PrefixKey, source: RouteSource, path: Path | undefined): boolean;
  /** Queues `best` (or its withdrawal) for `peer`; `force` re-sends what was already sent. */
  exportTo(peer: Peer, prefix: PrefixKey, best: Path | undefined, force?: boolean): void;
  /** Sends the whole table to a peer whose session is up and not yet synced. */
  sendInitialTable(peer: Peer): void;
}
