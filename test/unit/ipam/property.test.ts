// Random concurrent workloads over two processes and two nodes on a pool small enough to
// exhaust: after every batch the store holds exactly what the successful calls say, and no
// address twice.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ExhaustedError } from '../../../model/index.js';
import { allBlocks, closeAll, ipamOn, pool, request, storeWith } from './fixture.js';

afterEach(closeAll);

type Op =
  | { kind: 'assign'; pod: number; node: 0 | 1; via: 0 | 1 }
  | { kind: 'release'; pod: number; via: 0 | 1 }
  | { kind: 'gc'; node: 0 | 1; via: 0 | 1; keepEven: boolean };

const PODS = 24;
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('assign' as const),
      pod: fc.nat(PODS - 1),
      node: fc.constantFrom(0 as const, 1 as const),
      via: fc.constantFrom(0 as const, 1 as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      pod: fc.nat(PODS - 1),
      via: fc.constantFrom(0 as const, 1 as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('gc' as const),
      node: fc.constantFrom(0 as const, 1 as const),
      via: fc.constantFrom(0 as const, 1 as const),
      keepEven: fc.boolean(),
    }),
  },
);

/** A batch touches each pod at most once and runs at most one GC, so its outcome is order-free. */
const batch = fc.array(op, { minLength: 1, maxLength: 12 }).map((ops) => {
  const seen = new Set<number>();
  let gc = false;
  return ops.filter((o) => {
    if (o.kind === 'gc') return gc ? false : (gc = true);
    if (seen.has(o.pod)) return false;
    seen.add(o.pod);
    return true;
  });
});

describe('IPAM under random concurrent workloads', () => {
  it('the store always equals the model and never holds one address twice', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(batch, { minLength: 1, maxLength: 6 }), async (batches) => {
        // 16 addresses in /30 blocks: claims, borrowing and exhaustion all happen.
        const ds = await storeWith([pool('p', '10.140.0.0/28', { blockSize: 30 })]);
        const ipams = [ipamOn(ds), ipamOn(ds)] as const;
        const model = new Map<number, { address: string; node: string }>();
        for (const ops of batches) {
          // A GC must not judge pods that this batch assigns on another process.
          const assigning = new Set(ops.filter((o) => o.kind === 'assign').map((o) => o.pod));
          const outcomes = await Promise.allSettled(
            ops.map(async (o) => {
              const ipam = ipams[o.via];
              if (o.kind === 'assign') {
                if (model.has(o.pod)) return;
                const r = await ipam.assign(request(`p${o.pod}`, `n${o.node}`));
                model.set(o.pod, { address: r.addresses[0]!.address, node: `n${o.node}` });
              } else if (o.kind === 'release') {
                await ipam.release({ containerID: `ctr-p${o.pod}`, ifname: 'eth0' });
                model.delete(o.pod);
              } else {
                const keep = (pod: number) => assigning.has(pod) || (o.keepEven && pod % 2 === 0);
                const r = await ipam.gc((a) => keep(Number(a.pod!.slice(1))), { node: `n${o.node}` });
                for (const freed of r.released) model.delete(Number(freed.pod!.slice(1)));
              }
            }),
          );
          for (const [i, s] of outcomes.entries()) {
            if (s.status === 'rejected') {
              expect(ops[i]!.kind).toBe('assign');
              expect(s.reason).toBeInstanceOf(ExhaustedError);
            }
          }
          const stored = (await allBlocks(ds)).flatMap((b) =>
            Object.entries(b.spec.allocations).map(([offset, a]) => ({ b, offset, a })),
          );
          const byPod = new Map<number, { address: string; node: string }>();
          for (const { b, offset, a } of stored) {
            const pod = Number(a.pod!.slice(1));
            expect(byPod.has(pod)).toBe(false);
            const base = b.spec.cidr.split('/')[0]!.split('.').map(Number);
            byPod.set(pod, { address: `10.140.0.${base[3]! + Number(offset)}`, node: a.node! });
          }
          expect(byPod).toEqual(model);
          expect(new Set([...model.values()].map((v) => v.address)).size).toBe(model.size);
        }
        await closeAll();
      }),
      { numRuns: 40 },
    );
  });
});
