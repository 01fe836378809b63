// The decision process, one tie-breaker at a time, and the Loc-RIB's best-path bookkeeping.
import { describe, expect, it } from 'vitest';
import { comparePaths, LocRib, RouteSource, type Path } from '../../../bgp/rib.js';
import type { PathAttributes } from '../../../bgp/wire/attributes.js';
import { parsePrefix } from '../../../bgp/wire/prefix.js';

function source(
  kind: 'ibgp' | 'ebgp' | 'local',
  address: string,
  routerId: string,
  asn = 65001,
): RouteSource {
  const s = new RouteSource(kind, address, asn);
  s.setRouterId(routerId);
  return s;
}
const base: PathAttributes = { origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: '10.0.0.1' };
const path = (s: RouteSource, a: Partial<PathAttributes> = {}): Path => s.path({ ...base, ...a });

const A = source('ebgp', '10.0.0.1', '1.1.1.1');
const B = source('ebgp', '10.0.0.2', '2.2.2.2');
const I = source('ibgp', '10.0.0.3', '0.0.0.1', 65000);

/** `better` wins against `worse` in both argument orders. */
function expectBetter(better: Path, worse: Path) {
  expect(comparePaths(better, worse)).toBeLessThan(0);
  expect(comparePaths(worse, better)).toBeGreaterThan(0);
}

describe('decision process (RFC 4271 §9.1.2, RFC 4456 §9)', () => {
  it('prefers the higher LOCAL_PREF first, even over a shorter AS path', () => {
    expectBetter(
      path(B, { localPref: 200, asPath: [{ type: 2, asns: [1, 2, 3] }] }),
      path(A, { localPref: 100 }),
    );
  });
  it('prefers a locally originated route at equal LOCAL_PREF', () => {
    expectBetter(
      source('local', '', '9.9.9.9').path({ origin: 2, asPath: [{ type: 2, asns: [1, 2] }] }),
      path(A),
    );
  });
  it('prefers the shorter AS_PATH, counting an AS_SET as one', () => {
    expectBetter(
      path(B, {
        asPath: [
          { type: 2, asns: [1] },
          { type: 1, asns: [5, 6, 7] },
        ],
      }),
      path(A, { asPath: [{ type: 2, asns: [1, 2, 3] }] }),
    );
  });
  it('prefers the lower ORIGIN', () => {
    expectBetter(path(B, { origin: 0 }), path(A, { origin: 2 }));
  });
  it('prefers the lower MED only between routes from the same neighbour AS', () => {
    expectBetter(path(B, { med: 5 }), path(A, { med: 10 }));
    // Different neighbour AS: MED ignored, falls through to router ID (A lower).
    expectBetter(path(A, { med: 10, asPath: [{ type: 2, asns: [65009] }] }), path(B, { med: 5 }));
  });
  it('prefers eBGP over iBGP', () => {
    expectBetter(path(B), path(I));
  });
  it('prefers the lower router ID, using ORIGINATOR_ID when present', () => {
    expectBetter(path(A), path(B));
    expectBetter(path(B, { originatorId: '0.0.0.9' }), path(A));
  });
  it('prefers the shorter CLUSTER_LIST, then the lower peer address', () => {
    const c1 = source('ibgp', '10.0.0.5', '5.5.5.5', 65000);
    const c2 = source('ibgp', '10.0.0.4', '5.5.5.5', 65000);
    expectBetter(
      c1.path({ ...base, clusterList: ['1.1.1.1'] }),
      c2.path({ ...base, clusterList: ['1.1.1.1', '2.2.2.2'] }),
    );
    expectBetter(c2.path(base), c1.path(base));
  });
});

describe('LocRib', () => {
  it('tracks the best path per prefix as candidates come and go, reporting only real best-path changes', () => {
    const rib = new LocRib();
    const p = parsePrefix('10.1.0.0/24');
    const a = path(A);
    const b = path(B, { localPref: 200 });
    expect(rib.set(p, A, a)).toBeUndefined(); // new best, no previous
    expect(rib.set(p, B, b)).toBe(a); // b better: best changed from a
    expect(rib.best(p)).toBe(b);
    expect(rib.set(p, A, undefined)).toBe(false); // non-best removed: no change
    expect(rib.candidates(p)).toEqual([b]);
    expect(rib.set(p, B, b)).toBe(false); // same path again: no change
    expect(rib.replaced).toBe(b);
    expect(rib.set(p, B, undefined)).toBe(b);
    expect(rib.best(p)).toBeUndefined();
    expect(rib.size).toBe(0);
  });

  it('interns one Path per (source, attribute set)', () => {
    const attrs: PathAttributes = { ...base, med: 1 };
    expect(A.path(attrs)).toBe(A.path(attrs));
    expect(A.path(attrs)).not.toBe(B.path(attrs));
  });
});
