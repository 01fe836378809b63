// Two electors racing for one Lease, as every datastore backend's leader-election test starts.
import { expect } from 'vitest';
import type { LeaderElector } from '../../datastore/leader-election.js';
import { waitFor } from './netns.js';

/**
 * Starts `a` and `b`, waits for one of them to lead, then checks `checks` times, 50 ms apart, that
 * exactly one leads and that it is still the same one. Returns the leader and the other.
 */
export async function raceForLease(
  a: LeaderElector,
  b: LeaderElector,
  checks: number,
): Promise<{ leader: LeaderElector; other: LeaderElector }> {
  a.start();
  b.start();
  const leader = await waitFor(
    'a leader',
    () => (a.isLeader() ? a : b.isLeader() ? b : undefined),
    10_000,
    20,
  );
  for (let i = 0; i < checks; i++) {
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(leader.isLeader()).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { leader, other: leader === a ? b : a };
}
