// Route refresh (RFC 2918) and enhanced route refresh (RFC 7313): answering a peer's request,
// and the BoRR … EoRR window in which a peer's routes not re-sent are marked for purging.
import { PrefixMap } from './prefix-map.js';
import type { Peer, SpeakerCore } from './peer.js';
import { Afi, RouteRefreshSubtype, Safi } from './wire/constants.js';
import type { RouteRefreshMessage } from './wire/messages.js';
import { familyOf, type PrefixKey } from './wire/prefix.js';

export class RouteRefreshState {
  constructor(
    private readonly core: SpeakerCore,
    /** Seconds after a BoRR before an EoRR that never came is assumed. */
    private readonly purgeTime: number,
  ) {}

  onMessage(peer: Peer, m: RouteRefreshMessage): void {
    const family = m.afi === Afi.IPV6 ? 6 : m.afi === Afi.IPV4 ? 4 : undefined;
    if (!family || m.safi !== Safi.UNICAST) return;
    if (m.subtype === RouteRefreshSubtype.BORR) return this.begin(peer, family);
    if (m.subtype === RouteRefreshSubtype.EORR) return this.end(peer, family, 'EoRR');
    // RFC 7313 §5: a request with an unknown subtype is ignored.
    if (m.subtype !== RouteRefreshSubtype.REQUEST || !peer.out || !peer.synced) return;
    const enhanced = !!peer.negotiated?.enhancedRouteRefresh;
    const f = { afi: m.afi, safi: m.safi };
    if (enhanced) peer.out.beginRefresh(f);
    for (const [prefix, best] of this.core.locRib.bestPaths()) {
      if (familyOf(prefix) === family) this.core.exportTo(peer, prefix, best, true);
    }
    if (enhanced) peer.out.endRefreshAfterFlush(f);
    this.core.log.debug(
      { peer: peer.options.address, afi: m.afi, enhanced },
      'route refresh request answered',
    );
  }

  /** A prefix the peer announced or withdrew is no longer waiting to be re-sent. */
  received(peer: Peer, prefix: PrefixKey): void {
    if (peer.refreshing.size) peer.refreshing.get(familyOf(prefix))?.stale.delete(prefix);
  }

  /** The session went down: forget the marks (graceful restart or withdrawal takes over). */
  forget(peer: Peer): void {
    for (const fam of [...peer.refreshing.keys()]) this.end(peer, fam, undefined);
  }

  /** The peer's BoRR (RFC 7313 §4): its routes of `family` are stale until re-sent or EoRR. */
  private begin(peer: Peer, family: 4 | 6): void {
    clearTimeout(peer.refreshing.get(family)?.timer);
    const stale = new PrefixMap<true>();
    for (const p of this.core.locRib.prefixesFrom(peer.source))
      if (familyOf(p) === family) stale.set(p, true);
    for (const p of peer.rejected.keys()) if (familyOf(p) === family) stale.set(p, true);
    const timer = setTimeout(() => this.end(peer, family, 'EoRR timer expired'), this.purgeTime * 1000);
    timer.unref();
    peer.refreshing.set(family, { stale, timer });
    this.core.log.debug({ peer: peer.options.address, family, marked: stale.size }, 'BoRR received');
  }

  /** EoRR (or its timer): purges what was not re-sent; `why` undefined only forgets the state. */
  private end(peer: Peer, family: 4 | 6, why: string | undefined): void {
    const r = peer.refreshing.get(family);
    if (!r) return;
    clearTimeout(r.timer);
    peer.refreshing.delete(family);
    if (why === undefined) return;
    for (const p of r.stale.keys()) {
      if (peer.rejected.delete(p)) continue;
      if (this.core.setRoute(p, peer.source, undefined)) peer.accepted--;
    }
    this.core.log.info(
      { peer: peer.options.address, family, why, purged: r.stale.size },
      'route refresh ended',
    );
  }
}
