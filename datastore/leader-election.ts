// Leader election on a Lease, over any Datastore, as client-go's leaderelection does it:
// acquire and renew by compare-and-swap on the Lease's resourceVersion; a contender takes an
// abandoned Lease only once the record it observed has not changed for a whole lease
// duration measured on its OWN clock (no trust in other nodes' clocks); the leader gives up
// at once when it could not renew within the renew deadline, which is shorter than the lease
// duration, so the old leader has stopped before anyone else may start.
import { hostname } from 'node:os';
import {
  AlreadyExistsError,
  ConflictError,
  LEASE_API_VERSION,
  NotFoundError,
  ValidationError,
  formatMicroTime,
  type Lease,
  type LeaseSpec,
} from '../model/index.js';
import { createLogger, type Logger } from '../model/log.js';
import type { Datastore } from './types.js';

/** Time and waiting, injectable so tests drive them. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export interface LeaderElectorOptions {
  datastore: Datastore;
  /** The Lease: namespace and name. */
  namespace: string;
  name: string;
  /** Who this elector is (the node name); unique among contenders. */
  identity?: string;
  /** How long a holder's claim lasts without renewal; default 15 000 ms. */
  leaseDurationMs?: number;
  /** The leader gives up when it could not renew for this long; default 10 000 ms. */
  renewDeadlineMs?: number;
  /** Between attempts to acquire or renew; default 2 000 ms. */
  retryPeriodMs?: number;
  /**
   * While another holder's claim is live, how often to look at the Lease again; default the lease
   * duration, jittered by ±10 %. Every node of a DaemonSet is a contender: polling at the lease
   * duration rather than the retry period keeps the reads at (nodes / lease duration) per
   * second. It only delays a takeover (a change seen late makes the wait measured from it
   * longer, never shorter).
   */
  followerPollMs?: number;
  /** Jitter source in [0, 1); default Math.random. */
  random?: () => number;
  /** On stop, hand the Lease back (holder cleared) so another takes over at once; default true. */
  releaseOnStop?: boolean;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  clock?: Clock;
  logger?: Logger;
}

export const LEADER_ELECTION_DEFAULTS = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
} as const;

type Attempt = 'leading' | 'held-by-other' | 'failed';

/** A deadline passed while a datastore call was still running. */
class DeadlineExceeded extends Error {}

export class LeaderElector {
  readonly identity: string;
  private readonly ds: Datastore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly followerPollMs: number;
  private readonly releaseOnStop: boolean;
  private leading = false;
  /** Local time of the last successful acquire or renew. */
  private lastRenewAt = 0;
  /** The record last seen (by resourceVersion) and the local time it was first seen. */
  private observed: { rv: string; at: number; lease: Lease } | undefined;
  private loop: Promise<void> | undefined;
  private abort = new AbortController();

  constructor(private readonly options: LeaderElectorOptions) {
    this.ds = options.datastore;
    this.identity = options.identity ?? hostname();
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? createLogger('leader-election');
    this.leaseDurationMs = options.leaseDurationMs ?? LEADER_ELECTION_DEFAULTS.leaseDurationMs;
    this.renewDeadlineMs = options.renewDeadlineMs ?? LEADER_ELECTION_DEFAULTS.renewDeadlineMs;
    this.retryPeriodMs = options.retryPeriodMs ?? LEADER_ELECTION_DEFAULTS.retryPeriodMs;
    this.followerPollMs = options.followerPollMs ?? this.leaseDurationMs;
    this.releaseOnStop = options.releaseOnStop ?? true;
    if (!this.identity) throw new ValidationError('identity', 'must not be empty');
    if (this.leaseDurationMs < 1000 || this.leaseDurationMs % 1000 !== 0)
      throw new ValidationError(
        'leaseDurationMs',
        'must be a whole number of seconds (the Lease stores seconds)',
      );
    if (!(this.renewDeadlineMs < this.leaseDurationMs))
      throw new ValidationError('renewDeadlineMs', 'must be shorter than the lease duration');
    if (!(this.retryPeriodMs > 0 && this.retryPeriodMs < this.renewDeadlineMs))
      throw new ValidationError('retryPeriodMs', 'must be positive and shorter than the renew deadline');
    if (!(this.followerPollMs > 0)) throw new ValidationError('followerPollMs', 'must be positive');
  }

  /**
   * True while this elector holds the Lease and renewed it within the renew deadline. Checked
   * against the clock on every call, so a stalled event loop never acts on a lapsed claim.
   */
  isLeader(): boolean {
    return this.leading && this.clock.now() - this.lastRenewAt < this.renewDeadlineMs;
  }

  /** Starts campaigning; returns at once. */
  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  /** Stops campaigning; a leader steps down (callback) and, by default, hands the Lease back. */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.abort.abort();
    await this.loop;
    this.loop = undefined;
    if (!this.leading) return;
    if (this.releaseOnStop) await this.release();
    this.stepDown('stopped');
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const result = await this.attempt();
      if (signal.aborted) return;
      const now = this.clock.now();
      if (result === 'leading') {
        this.lastRenewAt = now;
        if (!this.leading) {
          this.leading = true;
          this.log.info(
            { lease: this.leaseKey(), identity: this.identity },
            'leader election: became leader',
          );
          this.callback(this.options.onStartedLeading);
        }
      } else if (
        this.leading &&
        (result === 'held-by-other' || now - this.lastRenewAt >= this.renewDeadlineMs)
      ) {
        this.stepDown(result === 'held-by-other' ? 'another holder took the Lease' : 'renew deadline passed');
      }
      const follower = result === 'held-by-other' && !this.leading;
      const jitter = 0.9 + 0.2 * (this.options.random ?? Math.random)();
      await this.clock.sleep(follower ? this.followerPollMs * jitter : this.retryPeriodMs, signal);
    }
  }

  private stepDown(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.log.warn(
      { lease: this.leaseKey(), identity: this.identity, reason },
      'leader election: stopped leading',
    );
    this.callback(this.options.onStoppedLeading);
  }

  private callback(fn: (() => void) | undefined): void {
    try {
      fn?.();
    } catch (e) {
      this.log.error({ err: e }, 'leader election: callback threw');
    }
  }

  /** One acquire-or-renew; a leader's attempt may not outlast its renew deadline. */
  private async attempt(): Promise<Attempt> {
    const budget = this.leading
      ? this.renewDeadlineMs - (this.clock.now() - this.lastRenewAt)
      : this.retryPeriodMs;
    try {
      return await this.withDeadline(this.tryAcquireOrRenew(), Math.max(budget, 0));
    } catch (e) {
      if (e instanceof ConflictError || e instanceof AlreadyExistsError || e instanceof NotFoundError) {
        // Another writer got in first: the next attempt reads what it wrote.
        this.log.debug({ err: e }, 'leader election: lost a write race');
      } else {
        this.log.warn({ err: e, lease: this.leaseKey() }, 'leader election: attempt failed');
      }
      return 'failed';
    }
  }

  private async withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
    const cancel = new AbortController();
    const timeout = this.clock.sleep(ms, cancel.signal).then(() => {
      if (!cancel.signal.aborted) throw new DeadlineExceeded(`no answer from the datastore within ${ms} ms`);
      return undefined as never;
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      cancel.abort();
      work.catch(() => undefined); // a late failure of an abandoned call is not unhandled
    }
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const now = this.clock.now();
    const current = await this.ds.get('Lease', {
      namespace: this.options.namespace,
      name: this.options.name,
    });
    if (!current) {
      const created = await this.ds.create<'Lease'>({
        apiVersion: LEASE_API_VERSION,
        kind: 'Lease',
        metadata: { namespace: this.options.namespace, name: this.options.name },
        spec: this.claim(undefined, now),
      });
      this.observe(created);
      return 'leading';
    }
    this.observe(current);
    const holder = current.spec?.holderIdentity;
    if (holder && holder !== this.identity && !this.expired(current)) return 'held-by-other';
    const updated = await this.ds.update<'Lease'>({ ...current, spec: this.claim(current.spec, now) });
    this.observe(updated);
    return 'leading';
  }

  /** The spec this elector writes: a renewal of its own claim, or a takeover. */
  private claim(previous: LeaseSpec | undefined, now: number): LeaseSpec {
    const time = formatMicroTime(now);
    const renewal = previous?.holderIdentity === this.identity;
    return {
      ...previous,
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationMs / 1000,
      acquireTime: renewal && previous?.acquireTime ? previous.acquireTime : time,
      renewTime: time,
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (renewal || !previous?.holderIdentity ? 0 : 1),
    };
  }

  /** Records when (on our clock) the Lease record last changed. */
  private observe(lease: Lease): void {
    const rv = lease.metadata.resourceVersion ?? '';
    if (this.observed?.rv !== rv) this.observed = { rv, at: this.clock.now(), lease };
  }

  /** The holder's claim has lapsed: the record we see has not changed for its lease duration. */
  private expired(lease: Lease): boolean {
    const seconds = lease.spec?.leaseDurationSeconds ?? this.leaseDurationMs / 1000;
    const seen = this.observed;
    const since = seen && seen.rv === lease.metadata.resourceVersion ? seen.at : this.clock.now();
    return this.clock.now() - since >= seconds * 1000;
  }

  /** Hands the Lease back: holder cleared, so a contender takes it without waiting. */
  private async release(): Promise<void> {
    try {
      const current = await this.ds.get('Lease', {
        namespace: this.options.namespace,
        name: this.options.name,
      });
      if (current?.spec?.holderIdentity !== this.identity) return;
      await this.ds.update<'Lease'>({
        ...current,
        spec: {
          ...current.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: formatMicroTime(this.clock.now()),
        },
      });
    } catch (e) {
      this.log.warn({ err: e, lease: this.leaseKey() }, 'leader election: could not hand the Lease back');
    }
  }

  private leaseKey(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }
}
