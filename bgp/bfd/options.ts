// Per-peer BFD settings as the speaker, the daemon config and the BGPPeer kind give them.
import { ValidationError } from '../../model/errors.js';

export interface BfdOptions {
  /** Milliseconds between our packets once Up (default 300). */
  readonly desiredMinTxMs?: number;
  /** Fastest rate we accept packets at, in ms (default 300). */
  readonly requiredMinRxMs?: number;
  /** Missed packets before the session is declared down (default 3). */
  readonly multiplier?: number;
}

export type ResolvedBfdOptions = Required<BfdOptions>;

export const BFD_DEFAULTS: ResolvedBfdOptions = { desiredMinTxMs: 300, requiredMinRxMs: 300, multiplier: 3 };
/** Bounds shared with the config schemas: 10 ms .. 1 min, multiplier 1..255. */
export const BFD_INTERVAL_MS = { min: 10, max: 60_000 } as const;
export const BFD_MULTIPLIER = { min: 1, max: 255 } as const;

export function resolveBfdOptions(o: BfdOptions = {}, field = 'bfd'): ResolvedBfdOptions {
  const r = { ...BFD_DEFAULTS, ...stripUndefinedValues(o) };
  for (const k of ['desiredMinTxMs', 'requiredMinRxMs'] as const) {
    const v = r[k];
    if (!Number.isInteger(v) || v < BFD_INTERVAL_MS.min || v > BFD_INTERVAL_MS.max) {
      throw new ValidationError(`${field}.${k}`, `${v} is not an integer in ${BFD_INTERVAL_MS.min}..60000`);
    }
  }
  if (!Number.isInteger(r.multiplier) || r.multiplier < BFD_MULTIPLIER.min || r.multiplier > 255) {
    throw new ValidationError(`${field}.multiplier`, `${r.multiplier} is not an integer in 1..255`);
  }
  return r;
}

function stripUndefinedValues(o: BfdOptions): BfdOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as BfdOptions;
}
