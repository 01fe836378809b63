// Graceful restart (RFC 4724 + RFC 8538) as the speaker runs it: a receiving speaker keeps a
// restarting peer's routes as stale and sweeps them; a restarting speaker defers its table
// until its peers' End-of-RIB. The rules themselves are in graceful-restart.ts.
import { PrefixMap } from './prefix-map.js';
import { FAMILIES, familyKey, type Peer, type SpeakerCore } from './peer.js';
import { capabilityFor, keepsRoutes, type ResolvedGracefulRestart } from './graceful-restart.js';
import type { DownCause, Negotiated } from './session.js';
import { Afi } from './wire/constants.js';
import type { AfiSafi, GracefulRestartCapability } from './wire/messages.js';
import { familyOf, type PrefixKey } from './wire/prefix.js';

export class GracefulRestartState {
  /** Restarting speaker: our table is held back until peers sent End-of-RIB (RFC 4724 §4.1). */
  private deferring = false;
  private deferralTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly core: SpeakerCore,
    private readonly gr: ResolvedGracefulRestart | undefined,
    private readonly onDeferralEnded: () => void,
  ) {}

  get deferringSelection(): boolean {
    return this.deferring;
  }

  /** The speaker starts: as a restarting speaker, hold the table back (at most the deferral time). */
  start(): void {
    if (!this.gr?.restarting) return;
    this.deferring = true;
    this.deferralTimer = setTimeout(() => this.endDeferral('timer'), this.gr.selectionDeferralTime * 1000);
    this.deferralTimer.unref();
    for (const p of this.core.peerList()) this.setCapability(p);
  }

  stop(): void {
    clearTimeout(this.deferralTimer);
    for (const p of this.core.peerList()) this.clearStale(p);
  }

  /** The GR capability this peer's next OPEN carries (R bit while we defer selection). */
  setCapability(peer: Peer): void {
    const gr: GracefulRestartCapability | undefined =
      this.gr && peer.options.gracefulRestart !== false
        ? capabilityFor(this.gr, FAMILIES, this.deferring)
        : undefined;
    const { gracefulRestart: _old, ...rest } = peer.session.config;
    peer.session.config = gr ? { ...rest, gracefulRestart: gr } : rest;
  }

  /** The peer's session is up: stale routes of families it no longer preserves go; then the table. */
  established(peer: Peer, n: Negotiated): void {
    peer.endOfRib.clear();
    this.resumeStale(peer, n);
    if (this.deferring) this.maybeEndDeferral();
    else this.core.sendInitialTable(peer);
  }

  /**
   * The peer's session went down: whether its routes are kept as stale (RFC 4724 §4.2, RFC 8538);
   * when not, the caller withdraws them.
   */
  keepsRoutesOnDown(peer: Peer, cause: DownCause, reason: string, mayKeep: boolean): boolean {
    peer.endOfRib.clear();
    const theirs = peer.negotiated?.gracefulRestart;
    if (mayKeep && theirs && keepsRoutes(cause, peer.session.config.gracefulRestart, theirs)) {
      this.markStale(peer, theirs, reason);
      return true;
    }
    this.clearStale(peer);
    return false;
  }

  /** A prefix the peer announced or withdrew is no longer stale. */
  received(peer: Peer, prefix: PrefixKey): void {
    if (peer.stale?.delete(prefix) && peer.stale.size === 0) this.clearStale(peer);
  }

  endOfRib(peer: Peer, f: AfiSafi): void {
    peer.endOfRib.add(familyKey(f));
    this.sweepStale(peer, f, 'End-of-RIB');
    this.maybeEndDeferral();
  }

  /** Restarting speaker: selection ends once every peer is up and sent End-of-RIB for its families. */
  maybeEndDeferral(): void {
    if (!this.deferring) return;
    let peers = 0;
    for (const p of this.core.peerList()) {
      peers++;
      const n = p.session.state === 'Established' ? p.negotiated : undefined;
      if (!n) return;
      if (n.gracefulRestart && !n.families.every((f) => p.endOfRib.has(familyKey(f)))) return;
    }
    if (peers) this.endDeferral('End-of-RIB from every peer');
  }

  clearStale(peer: Peer): void {
    clearTimeout(peer.staleTimer);
    peer.staleTimer = undefined;
    peer.stale = undefined;
  }

  private endDeferral(why: string): void {
    if (!this.deferring) return;
    this.deferring = false;
    clearTimeout(this.deferralTimer);
    this.core.log.info({ why }, 'route selection deferral ended; sending our table');
    for (const p of this.core.peerList()) {
      this.setCapability(p);
      this.core.sendInitialTable(p);
    }
    this.onDeferralEnded();
  }

  /** Receiving speaker, peer down: keep its routes as stale for its restart time (RFC 4724 §4.2). */
  private markStale(peer: Peer, theirs: GracefulRestartCapability, reason: string): void {
    const stale = peer.stale ?? new PrefixMap<true>();
    for (const prefix of this.core.locRib.prefixesFrom(peer.source)) stale.set(prefix, true);
    peer.stale = stale;
    peer.rejected.clear();
    this.core.log.info(
      { peer: peer.options.address, reason, stale: stale.size, restartTime: theirs.restartTime },
      'session down; keeping its routes as stale (graceful restart)',
    );
    for (const f of FAMILIES) {
      if (!theirs.families.some((g) => g.afi === f.afi && g.safi === f.safi)) {
        this.sweepStale(peer, f, 'family not covered by graceful restart');
      }
    }
    this.armStaleTimer(peer, theirs.restartTime, 'restart timer expired');
  }

  /** The peer is back: families it no longer preserves go now, the rest wait for End-of-RIB. */
  private resumeStale(peer: Peer, n: Negotiated): void {
    if (!peer.stale) return;
    const theirs = n.gracefulRestart;
    for (const f of FAMILIES) {
      const kept =
        n.families.some((g) => g.afi === f.afi && g.safi === f.safi) &&
        theirs?.families.some((g) => g.afi === f.afi && g.safi === f.safi && g.forwardingState);
      if (!kept) this.sweepStale(peer, f, 'forwarding state not preserved');
    }
    if (peer.stale) this.armStaleTimer(peer, this.gr?.stalePathTime ?? 360, 'stale-path timer expired');
  }

  private armStaleTimer(peer: Peer, seconds: number, why: string): void {
    clearTimeout(peer.staleTimer);
    if (!peer.stale) return;
    peer.staleTimer = setTimeout(() => this.sweepStale(peer, undefined, why), seconds * 1000);
    peer.staleTimer.unref();
  }

  /** Withdraws the routes of `peer` still stale (of one family, or all). */
  private sweepStale(peer: Peer, family: AfiSafi | undefined, why: string): void {
    const stale = peer.stale;
    if (!stale) return;
    const fam = family ? (family.afi === Afi.IPV6 ? 6 : 4) : undefined;
    const keys = [...stale.keys()].filter((k) => fam === undefined || familyOf(k) === fam);
    for (const k of keys) {
      stale.delete(k);
      if (this.core.setRoute(k, peer.source, undefined)) peer.accepted--;
    }
    if (keys.length)
      this.core.log.info({ peer: peer.options.address, why, swept: keys.length }, 'stale routes swept');
    if (stale.size === 0) this.clearStale(peer);
  }
}
