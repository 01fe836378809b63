import { afterEach, describe, expect, it } from 'vitest';
import { ExhaustedError } from '../../../model/index.js';
import type { AssignResult } from '../../../ipam/index.js';
import { allAllocated, closeAll, ipamOn, pool, request, storeWith } from './fixture.js';

afterEach(closeAll);

const addresses = (results: AssignResult[]) => results.flatMap((r) => r.addresses.map((a) => a.address));

describe('concurrent requests', () => {
  it('50 concurrent assigns on one node get 50 distinct addresses, all recorded', async () => {
    const ds = await storeWith([pool('p', '10.100.0.0/24', { blockSize: 28 })]);
    const ipam = ipamOn(ds);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ipam.assign(request(`p${i}`, 'n1'))),
    );
    const got = addresses(results);
    expect(new Set(got).size).toBe(50);
    expect(await allAllocated(ds)).toHaveLength(50);
    expect(await ipam.blocksOf('n1')).toHaveLength(4);
  });

  it('50 concurrent releases free everything they took', async () => {
    const ds = await storeWith([pool('p', '10.100.0.0/24')]);
    const ipam = ipamOn(ds);
    await Promise.all(Array.from({ length: 50 }, (_, i) => ipam.assign(request(`p${i}`, 'n1'))));
    const released = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ipam.release({ containerID: `ctr-p${i}`, ifname: 'eth0' })),
    );
    expect(released.every((r) => r.length === 1)).toBe(true);
    expect(await allAllocated(ds)).toEqual([]);
  });

  it.each([29, 31, 32])(
    'two processes for two nodes racing on one store never hand out one address twice, even after the pool fills (/%i blocks)',
    async (blockSize) => {
      // 64 addresses, 80 requests: the nodes claim blocks (racing for them once their scans meet),
      // borrow from each other, then run out.
      const ds = await storeWith([pool('p', '10.101.0.0/26', { blockSize })]);
      const [a, b] = [ipamOn(ds), ipamOn(ds)];
      const settled = await Promise.allSettled([
        ...Array.from({ length: 40 }, (_, i) => a.assign(request(`a${i}`, 'n1'))),
        ...Array.from({ length: 40 }, (_, i) => b.assign(request(`b${i}`, 'n2'))),
      ]);
      const ok = settled.filter((s): s is PromiseFulfilledResult<AssignResult> => s.status === 'fulfilled');
      const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      expect(ok).toHaveLength(64);
      expect(failed.every((f) => f.reason instanceof ExhaustedError)).toBe(true);
      expect(new Set(addresses(ok.map((o) => o.value))).size).toBe(64);
      const stored = await allAllocated(ds);
      expect(stored).toHaveLength(64);
      expect(new Set(stored.map((s) => s.handle)).size).toBe(64);
    },
  );

  it('two processes serving the same node (no shared lock) never collide', async () => {
    const ds = await storeWith([pool('p', '10.102.0.0/24', { blockSize: 27 })]);
    const [a, b] = [ipamOn(ds), ipamOn(ds)];
    const results = await Promise.all([
      ...Array.from({ length: 30 }, (_, i) => a.assign(request(`a${i}`, 'n1'))),
      ...Array.from({ length: 30 }, (_, i) => b.assign(request(`b${i}`, 'n1'))),
    ]);
    expect(new Set(addresses(results)).size).toBe(60);
    expect(await allAllocated(ds)).toHaveLength(60);
  });

  it('racing fixed-address requests for one address: exactly one wins', async () => {
    const ds = await storeWith([pool('p', '10.103.0.0/24')]);
    const ipams = Array.from({ length: 5 }, () => ipamOn(ds));
    const settled = await Promise.allSettled(
      ipams.map((ipam, i) =>
        ipam.assign(
          request(`p${i}`, `n${i}`, { podAnnotations: { 'tern.network/ip-addrs': '["10.103.0.9"]' } }),
        ),
      ),
    );
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    expect(await allAllocated(ds)).toHaveLength(1);
  });
});
