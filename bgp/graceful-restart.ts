// Graceful restart (RFC 4724) with notification support (RFC 8538): the options, the capability we
// advertise, and the rule deciding whether a dropped session keeps the peer's routes as stale.
import { ValidationError } from '../model/errors.js';
import type { DownCause } from './session.js';
import { CeaseSubcode, ErrorCode } from './wire/constants.js';
import type { AfiSafi, GracefulRestartCapability } from './wire/messages.js';

export interface GracefulRestartOptions {
  /** Seconds our peers keep our routes after our session drops (advertised; 1..4095, default 120). */
  readonly restartTime?: number;
  /** Advertise the F bit: our forwarding state (kernel routes) survives a restart. Default true. */
  readonly forwardingState?: boolean;
  /** RFC 8538 N bit: a NOTIFICATION other than Cease/Hard Reset also restarts gracefully. Default true. */
  readonly notification?: boolean;
  /**
   * This process start is a restart: set the R bit and defer sending our table until every peer
   * has sent End-of-RIB (or `selectionDeferralTime` passed). Default true (a cold start that
   * claims to be a restart costs nothing: peers send their routes at once either way).
   */
  readonly restarting?: boolean;
  /** Seconds to wait for peers' End-of-RIB after start before sending our table anyway. Default 30. */
  readonly selectionDeferralTime?: number;
  /** Seconds a re-established peer has to send End-of-RIB before its stale routes go. Default 360. */
  readonly stalePathTime?: number;
}

export type ResolvedGracefulRestart = Required<GracefulRestartOptions>;

export function resolveGracefulRestart(
  o: GracefulRestartOptions | false | undefined,
): ResolvedGracefulRestart | undefined {
  if (!o) return undefined;
  const r: ResolvedGracefulRestart = {
    restartTime: o.restartTime ?? 120,
    forwardingState: o.forwardingState ?? true,
    notification: o.notification ?? true,
    restarting: o.restarting ?? true,
    selectionDeferralTime: o.selectionDeferralTime ?? 30,
    stalePathTime: o.stalePathTime ?? 360,
  };
  if (!Number.isInteger(r.restartTime) || r.restartTime < 1 || r.restartTime > 4095)
    throw new ValidationError('gracefulRestart.restartTime', 'must be an integer 1..4095 (seconds)');
  for (const k of ['selectionDeferralTime', 'stalePathTime'] as const) {
    if (!(r[k] > 0))
      throw new ValidationError(`gracefulRestart.${k}`, 'must be a positive number of seconds');
  }
  return r;
}

export function capabilityFor(
  gr: ResolvedGracefulRestart,
  families: readonly AfiSafi[],
  restarting: boolean,
): GracefulRestartCapability {
  return {
    restartState: restarting,
    notification: gr.notification,
    restartTime: gr.restartTime,
    families: families.map((f) => ({ ...f, forwardingState: gr.forwardingState })),
  };
}

/**
 * Whether a session that ended this way keeps the peer's routes (RFC 4724 §4.2, RFC 8538 §4):
 * both sides must have advertised the capability; a transport failure or hold timer expiry always
 * qualifies; any other NOTIFICATION only when both advertised the N bit and it is not a Hard Reset.
 */
export function keepsRoutes(
  cause: DownCause,
  ours: GracefulRestartCapability | undefined,
  theirs: GracefulRestartCapability | undefined,
): boolean {
  if (!ours || !theirs) return false;
  if (cause.kind === 'transport') return true;
  if (cause.code === ErrorCode.HOLD_TIMER_EXPIRED) return true;
  if (!ours.notification || !theirs.notification) return false;
  return !(cause.code === ErrorCode.CEASE && cause.subcode === CeaseSubcode.HARD_RESET);
}
