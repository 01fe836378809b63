import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElector, type LeaderElectorOptions } from '../../../datastore/leader-election.js';
import { MemoryDatastore } from '../../../datastore/memory.js';
import type { Datastore } from '../../../datastore/types.js';
import { UnavailableError, ValidationError } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { FakeClock } from './fake-clock.js';

const LEASE = { namespace: 'tern-system', name: 'tern-ipam-gc' };
const TIMING = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** A datastore whose writes fail while `broken` is set (an API server the leader cannot reach). */
function breakable(inner: Datastore): Datastore & { broken: boolean } {
  const ds = Object.create(inner) as Datastore & { broken: boolean };
  ds.broken = false;
  ds.update = (obj) => (ds.broken ? Promise.reject(new UnavailableError('unreachable')) : inner.update(obj));
  ds.get = (kind, key) =>
    ds.broken ? Promise.reject(new UnavailableError('unreachable')) : inner.get(kind, key);
  return ds;
}

describe('LeaderElector on the memory datastore (fake clock)', () => {
  const electors: LeaderElector[] = [];
  afterEach(async () => {
    for (const e of electors.splice(0)) await e.stop();
  });

  function elector(
    identity: string,
    ds: Datastore,
    clock: FakeClock,
    extra: Partial<LeaderElectorOptions> = {},
  ) {
    const events: string[] = [];
    const e = new LeaderElector({
      datastore: ds,
      ...LEASE,
      ...TIMING,
      identity,
      clock,
      logger: createLogger('test', { level: 'silent' }),
      onStartedLeading: () => events.push('started'),
      onStoppedLeading: () => events.push('stopped'),
      ...extra,
    });
    electors.push(e);
    return { e, events };
  }

  it('creates the Lease when it is absent and leads at once, recording holder and MicroTime renewTime', async () => {
    const ds = new MemoryDatastore();
    const clock = new FakeClock();
    const a = elector('node-a', ds, clock);
    a.e.start();
    await clock.advance(0);
    expect(a.e.isLeader()).toBe(true);
    expect(a.events).toEqual(['started']);
    const lease = await ds.get('Lease', LEASE);
    expect(lease?.spec?.holderIdentity).toBe('node-a');
    expect(lease?.spec?.leaseDurationSeconds).toBe(15);
    expect(lease?.spec?.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease?.spec?.leaseTransitions).toBe(0);
  });

  it('of two electors exactly one leads, and the leader keeps the Lease by renewing it', async () => {
    const ds = new MemoryDatastore();
    const clock = new FakeClock();
    const a = elector('node-a', ds, clock);
    const b = elector('node-b', ds, clock);
    a.e.start();
    b.e.start();
    for (let i = 0; i < 30; i++) {
      await clock.advance(1_000);
      expect([a.e.isLeader(), b.e.isLeader()].filter(Boolean)).toHaveLength(1);
    }
    expect(a.events).toEqual(['started']);
    expect(b.events).toEqual([]);
    const lease = await ds.get('Lease', LEASE);
    expect(Date.parse(lease!.spec!.renewTime!)).toBeGreaterThan(clock.now() - TIMING.retryPeriodMs - 1);
  });

  it('after a leader dies without handing back, the other takes over only once the lease duration has passed', async () => {
    const ds = new MemoryDatastore();
    const clock = new FakeClock();
    const a = elector('node-a', ds, clock, { releaseOnStop: false });
    const b = elector('node-b', ds, clock);
    a.e.start();
    await clock.advance(0);
    b.e.start();
    await clock.advance(1_000);
    await a.e.stop(); // no release: as a crash looks to the others
    const lastRenew = Date.parse((await ds.get('Lease', LEASE))!.spec!.renewTime!);
    // b first saw the record at most one retry period after the last renewal; until a whole
    // lease duration has passed since then, it must not lead.
    while (clock.now() < lastRenew + TIMING.leaseDurationMs) {
      expect(b.e.isLeader()).toBe(false);
      await clock.advance(500);
    }
    // A follower looks once per lease duration (±10 %): at most one more look.
    await clock.advance(TIMING.leaseDurationMs * 1.1 + TIMING.retryPeriodMs);
    expect(b.e.isLeader()).toBe(true);
    expect(b.events).toEqual(['started']);
    const lease = await ds.get('Lease', LEASE);
    expect(lease?.spec?.holderIdentity).toBe('node-b');
    expect(lease?.spec?.leaseTransitions).toBe(1);
  });

  it('a leader that stops hands the Lease back, and the other takes over at its next look, not a lease later', async () => {
    const ds = new MemoryDatastore();
    const clock = new FakeClock();
    const a = elector('node-a', ds, clock);
    const b = elector('node-b', ds, clock, { followerPollMs: 5_000, random: () => 0.5 });
    a.e.start();
    await clock.advance(0);
    b.e.start();
    await clock.advance(1_000);
    await a.e.stop();
    expect(a.events).toEqual(['started', 'stopped']);
    expect((await ds.get('Lease', LEASE))?.spec?.holderIdentity).toBe('');
    const stoppedAt = clock.now();
    await clock.advance(5_000);
    expect(b.e.isLeader()).toBe(true);
    expect(clock.now() - stoppedAt).toBeLessThan(TIMING.leaseDurationMs);
  });

  it('a follower reads the Lease once per lease duration, not once per retry period (every node campaigns)', async () => {
    const store = new MemoryDatastore();
    const clock = new FakeClock();
    const counted = (inner: Datastore) => {
      const reads = { n: 0 };
      const ds = Object.create(inner) as Datastore;
      ds.get = (kind, key) => {
        reads.n++;
        return inner.get(kind, key);
      };
      return { ds, reads };
    };
    const ra = counted(store);
    const rb = counted(store);
    const a = elector('node-a', ra.ds, clock);
    a.e.start();
    await clock.advance(0);
    const b = elector('node-b', rb.ds, clock);
    b.e.start();
    await clock.advance(150_000);
    expect(a.e.isLeader()).toBe(true);
    expect(b.e.isLeader()).toBe(false);
    // 150 s: the leader renews every 2 s (~75 reads); the follower looks every 15 s ± 10 %.
    expect(rb.reads.n).toBeLessThanOrEqual(Math.ceil(150_000 / (TIMING.leaseDurationMs * 0.9)) + 1);
    expect(ra.reads.n).toBeGreaterThan(rb.reads.n * 5);
  });

  it('a leader that cannot renew steps down when the renew deadline passes, not before', async () => {
    const ds = breakable(new MemoryDatastore());
    const clock = new FakeClock();
    const a = elector('node-a', ds, clock);
    a.e.start();
    await clock.advance(0);
    expect(a.e.isLeader()).toBe(true);
    const renewedAt = clock.now();
    ds.broken = true;
    await clock.advance(TIMING.renewDeadlineMs - TIMING.retryPeriodMs);
    expect(a.events).toEqual(['started']);
    await clock.advance(TIMING.retryPeriodMs * 2);
    expect(clock.now() - renewedAt).toBeGreaterThanOrEqual(TIMING.renewDeadlineMs);
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(['started', 'stopped']);
  });

  it('isLeader() is false once the renew deadline has passed even before the loop notices', async () => {
    const ds = new MemoryDatastore();
    const clock = new FakeClock();
    const a = elector('node-a', ds, clock);
    a.e.start();
    await clock.advance(0);
    // Time moves without the elector running (a stalled event loop).
    const stalled = clock.now() + TIMING.renewDeadlineMs;
    (clock as unknown as { t: number }).t = stalled;
    expect(a.e.isLeader()).toBe(false);
  });

  it('a leader whose Lease another holder took steps down at its next renewal', async () => {
    const ds = new MemoryDatastore();
    const clock = new FakeClock();
    const a = elector('node-a', ds, clock);
    a.e.start();
    await clock.advance(0);
    const lease = (await ds.get('Lease', LEASE))!;
    await ds.update<'Lease'>({ ...lease, spec: { ...lease.spec, holderIdentity: 'intruder' } });
    await clock.advance(TIMING.retryPeriodMs);
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(['started', 'stopped']);
  });

  it('rejects timings under which two leaders could overlap', () => {
    const ds = new MemoryDatastore();
    const make = (t: Partial<LeaderElectorOptions>) =>
      new LeaderElector({ datastore: ds, ...LEASE, identity: 'x', ...TIMING, ...t });
    expect(() => make({ renewDeadlineMs: 15_000 })).toThrow(ValidationError);
    expect(() => make({ retryPeriodMs: 10_000 })).toThrow(ValidationError);
    expect(() => make({ leaseDurationMs: 15_500 })).toThrow(ValidationError);
  });
});
