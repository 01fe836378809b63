// What a BFD state change does to the BGP session with the same peer (RFC 5882 §3.2, §4.3).
import type { BfdStateChange } from './session.js';

/** The NOTIFICATION Cease subcode "BFD Down" (RFC 9384), as FRR sends it. */
export const CEASE_BFD_DOWN = 10;
/** The reason recorded on the BGP session (its lastError) and passed to the speaker's down handler. */
export const BFD_DOWN_REASON = 'BFD down';

/**
 * `down`: Up → Down because the path failed (detection time expired or the peer saw it fail):
 * the BGP session goes down at once and is held down. `release`: BFD is Up again (or the peer
 * turned BFD off with AdminDown): a held BGP session may start. A peer's AdminDown is not a
 * path failure (RFC 5882 §3.2) and never takes BGP down.
 */
export function bgpEffect(change: BfdStateChange): 'down' | 'release' | undefined {
  if (change.to === 'Up' || change.remoteState === 'AdminDown') return 'release';
  if (change.from === 'Up' && change.to === 'Down') return 'down';
  return undefined;
}
