// Stable addresses (issue 11): ordinal lists, sticky addresses with a hold, IPReservations,
// their precedence, moves between nodes, and the bad-input matrix.
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError, ExhaustedError, ValidationError } from '../../../model/index.js';
import { ANNOTATIONS, Ipam, POD_INDEX_LABEL, type AllocationRecord } from '../../../ipam/index.js';
import { addressesOf, allAllocated, counting, pool, storeWith } from './fixture.js';
import {
  Clock,
  byOrdinal,
  closeStable,
  fixedAddrs,
  key,
  pod,
  reservation,
  stableIpam,
  sticky,
} from './stable.fixture.js';

afterEach(closeStable);

const tick = () => new Promise((r) => setTimeout(r, 0));
const LIST = ['10.9.0.10', '10.9.0.11', '10.9.0.12'];

async function bindingOf(ipam: Ipam, address: string) {
  return (await ipam.bindings()).find((b) => b.address === address);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof Error)) throw new Error('expected the request to fail');
  return e;
}

describe('ordinal lists (tern.network/ip-addrs-by-ordinal)', () => {
  it('gives each replica the entry of its ordinal and reserves the other entries for their replicas', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const ipam = stableIpam(ds, new Clock());
    const r1 = await ipam.assign(pod('web-1', 'n1', { annotations: byOrdinal(LIST) }));
    expect(addressesOf(r1)).toEqual(['10.9.0.11']);
    const bindings = await ipam.bindings();
    expect(bindings.map((b) => [b.address, b.identity, b.state, b.owner, b.source])).toEqual([
      ['10.9.0.10', 'db/web-0', 'reserved', 'db/web', 'ordinal'],
      ['10.9.0.11', 'db/web-1', 'in use', 'db/web', 'ordinal'],
      ['10.9.0.12', 'db/web-2', 'reserved', 'db/web', 'ordinal'],
    ]);
    const r0 = await ipam.assign(pod('web-0', 'n2', { annotations: byOrdinal(LIST) }));
    const r2 = await ipam.assign(pod('web-2', 'n3', { annotations: byOrdinal(LIST) }));
    expect([addressesOf(r0), addressesOf(r2)]).toEqual([['10.9.0.10'], ['10.9.0.12']]);
    expect((await ipam.bindings()).map((b) => [b.address, b.state, b.node])).toEqual([
      ['10.9.0.10', 'in use', 'n2'],
      ['10.9.0.11', 'in use', 'n1'],
      ['10.9.0.12', 'in use', 'n3'],
    ]);
  });

  it('takes the ordinal from the apps.kubernetes.io/pod-index label before the name suffix', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const ipam = stableIpam(ds, new Clock());
    const r = await ipam.assign(
      pod('web-2', 'n1', {
        annotations: byOrdinal(LIST),
        labels: { [POD_INDEX_LABEL]: '0' },
      }),
    );
    expect(addressesOf(r)).toEqual(['10.9.0.10']);
  });

  it('accepts an IPv4 + IPv6 pair per entry', async () => {
    const ds = await storeWith([pool('v4', '10.9.0.0/24'), pool('v6', 'fd00:9::/120')]);
    const ipam = stableIpam(ds, new Clock());
    const r = await ipam.assign(
      pod('web-1', 'n1', { annotations: byOrdinal(['10.9.0.10', ['10.9.0.11', 'fd00:9::11']]) }),
    );
    expect(addressesOf(r)).toEqual(['10.9.0.11', 'fd00:9::11']);
  });

  it('never gives a listed address to another pod: the pool allocator skips reserved entries', async () => {
    // A /30 pool: four addresses, three of them listed for the set.
    const ds = await storeWith([pool('tiny', '10.9.1.0/30')]);
    const ipam = stableIpam(ds, new Clock());
    await ipam.assign(pod('web-0', 'n1', { annotations: byOrdinal(['10.9.1.0', '10.9.1.1', '10.9.1.2']) }));
    const other = await ipam.assign(pod('other', 'n1'));
    expect(addressesOf(other)).toEqual(['10.9.1.3']);
    await expect(ipam.assign(pod('third', 'n2'))).rejects.toBeInstanceOf(ExhaustedError);
  });

  it('a replica deleted on one node and created on another gets the same address, announced by the new node only', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const ipam = stableIpam(ds, new Clock());
    const first = pod('web-1', 'n1', { annotations: byOrdinal(LIST) });
    await ipam.assign(first);
    // web-1's address sits in an unclaimed block: n1 announces it as /32 while it runs there.
    expect(await ipam.borrowedBy('n1')).toEqual(['10.9.0.11']);
    await ipam.release(key(first));
    expect(await bindingOf(ipam, '10.9.0.11')).toMatchObject({ state: 'reserved', identity: 'db/web-1' });
    expect(await ipam.borrowedBy('n1')).toEqual([]);
    expect(await ipam.allocationsOf('n1')).toEqual([]);
    const moved = await ipam.assign(pod('web-1', 'n2', { annotations: byOrdinal(LIST) }));
    expect(addressesOf(moved)).toEqual(['10.9.0.11']);
    expect(await ipam.borrowedBy('n2')).toEqual(['10.9.0.11']);
    expect(await ipam.borrowedBy('n1')).toEqual([]);
  });

  it('a replica recreated before its old pod was deleted (dead node) takes the address over; the late DEL frees nothing', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const ipam = stableIpam(ds, new Clock());
    const old = pod('web-1', 'n1', { annotations: byOrdinal(LIST) });
    await ipam.assign(old);
    const fresh = pod('web-1', 'n2', { annotations: byOrdinal(LIST) });
    expect(addressesOf(await ipam.assign(fresh))).toEqual(['10.9.0.11']);
    expect(await ipam.release(key(old))).toEqual([]);
    expect(await bindingOf(ipam, '10.9.0.11')).toMatchObject({
      state: 'in use',
      node: 'n2',
      containerID: 'web-1@n2',
    });
  });

  it('a release of the owner frees the reserved entries and nothing that is in use', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const ipam = stableIpam(ds, new Clock());
    await ipam.assign(pod('web-1', 'n1', { annotations: byOrdinal(LIST) }));
    const freed = await ipam.releaseReserved('db/web');
    expect(freed.map((r) => r.address).sort()).toEqual(['10.9.0.10', '10.9.0.12']);
    expect((await ipam.bindings()).map((b) => b.address)).toEqual(['10.9.0.11']);
  });
});

describe('sticky addresses (tern.network/sticky-ip)', () => {
  it('holds the address after DEL for the pool hold time; the same name on another node gets it back', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24', { stickyHoldSeconds: 30 })]);
    const clock = new Clock();
    const ipam = stableIpam(ds, clock);
    const a = pod('cache', 'n1', { annotations: sticky });
    const [address] = addressesOf(await ipam.assign(a));
    await ipam.release(key(a));
    expect(await bindingOf(ipam, address!)).toMatchObject({
      state: 'held',
      identity: 'db/cache',
      heldUntil: new Date(clock.ms + 30_000).toISOString(),
    });
    clock.advance(29);
    const again = await ipam.assign(pod('cache', 'n2', { annotations: sticky }));
    expect(addressesOf(again)).toEqual([address]);
    expect(await ipam.borrowedBy('n2')).toEqual([address]);
  });

  it('a pod created during the hold never gets the held address; after the hold the address is allocatable', async () => {
    const ds = await storeWith([pool('tiny', '10.9.1.0/31')]);
    const clock = new Clock();
    const ipam = stableIpam(ds, clock, 60);
    const a = pod('cache', 'n1', { annotations: sticky });
    const [held] = addressesOf(await ipam.assign(a));
    await ipam.release(key(a));
    const b = addressesOf(await ipam.assign(pod('b', 'n1')));
    expect(b).not.toContain(held);
    await expect(ipam.assign(pod('c', 'n1'))).rejects.toBeInstanceOf(ExhaustedError);
    clock.advance(61);
    // Lazy expiry: the allocation meets the expired hold before any sweep.
    expect(addressesOf(await ipam.assign(pod('c', 'n1')))).toEqual([held]);
  });

  it("an expired hold in another node's full block is borrowable before any sweep", async () => {
    const ds = await storeWith([pool('tiny', '10.9.1.0/31')]);
    const clock = new Clock();
    const ipam = stableIpam(ds, clock, 60);
    const a = pod('cache', 'n1', { annotations: sticky });
    const [held] = addressesOf(await ipam.assign(a));
    await ipam.release(key(a));
    await ipam.assign(pod('b', 'n1'));
    await expect(ipam.assign(pod('c', 'n2'))).rejects.toBeInstanceOf(ExhaustedError);
    clock.advance(61);
    expect(addressesOf(await ipam.assign(pod('c', 'n2')))).toEqual([held]);
  });

  it('after the hold the same name gets a fresh address; the sweep frees expired holds', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const clock = new Clock();
    const ipam = stableIpam(ds, clock, 10);
    const a = pod('cache', 'n1', { annotations: sticky });
    await ipam.assign(a);
    await ipam.release(key(a));
    clock.advance(11);
    const freed = await ipam.sweep();
    expect(freed).toHaveLength(1);
    expect(await allAllocated(ds)).toEqual([]);
  });

  it('uses the IPAM default hold for pools that set none, and frees at once with a hold of 0', async () => {
    const ds = await storeWith([
      pool('p', '10.9.0.0/24'),
      pool('q', '10.8.0.0/24', { stickyHoldSeconds: 0 }),
    ]);
    const clock = new Clock();
    const ipam = stableIpam(ds, clock);
    const a = pod('a', 'n1', { annotations: { ...sticky, [ANNOTATIONS.ipv4Pools]: '["p"]' } });
    const b = pod('b', 'n1', { annotations: { ...sticky, [ANNOTATIONS.ipv4Pools]: '["q"]' } });
    const [addrA] = addressesOf(await ipam.assign(a));
    await ipam.assign(b);
    await ipam.release(key(a));
    await ipam.release(key(b));
    expect(await ipam.bindings()).toEqual([
      expect.objectContaining({ address: addrA, heldUntil: new Date(clock.ms + 600_000).toISOString() }),
    ]);
  });

  it('follows the namespace annotation, and a pod annotation "false" overrides it', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const ipam = stableIpam(ds, new Clock());
    const ns = { [ANNOTATIONS.stickyIp]: 'true' };
    const a = pod('a', 'n1', { namespaceAnnotations: ns });
    const b = pod('b', 'n1', { namespaceAnnotations: ns, annotations: { [ANNOTATIONS.stickyIp]: 'false' } });
    await ipam.assign(a);
    await ipam.assign(b);
    await ipam.release(key(a));
    await ipam.release(key(b));
    expect((await ipam.bindings()).map((x) => [x.identity, x.state])).toEqual([['db/a', 'held']]);
  });

  it('a pod with two interfaces gets back each interface its own address', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const ipam = stableIpam(ds, new Clock());
    const eth0 = pod('m', 'n1', { annotations: sticky });
    const net1 = pod('m', 'n1', { annotations: sticky, ifname: 'net1' });
    const [a0] = addressesOf(await ipam.assign(eth0));
    const [a1] = addressesOf(await ipam.assign(net1));
    await ipam.release(key(eth0));
    await ipam.release(key(net1));
    expect(addressesOf(await ipam.assign(pod('m', 'n2', { annotations: sticky, ifname: 'net1' })))).toEqual([
      a1,
    ]);
    expect(addressesOf(await ipam.assign(pod('m', 'n2', { annotations: sticky })))).toEqual([a0]);
  });
});

describe('IPReservation', () => {
  it('gives a pod named exactly its addresses, and StatefulSet replicas the entry of their ordinal', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    await ds.create(
      reservation('db', 'pins', {
        pods: [{ name: 'gateway', addresses: ['10.9.0.5'] }],
        statefulSets: [{ name: 'pg', addresses: ['10.9.0.20', '10.9.0.21'] }],
      }),
    );
    const ipam = stableIpam(ds, new Clock());
    expect(addressesOf(await ipam.assign(pod('gateway', 'n1')))).toEqual(['10.9.0.5']);
    expect(addressesOf(await ipam.assign(pod('pg-1', 'n2')))).toEqual(['10.9.0.21']);
    expect(await bindingOf(ipam, '10.9.0.21')).toMatchObject({ source: 'reservation', owner: 'db/pins' });
  });

  it('addresses it names are never handed out from a pool before their pod exists', async () => {
    const ds = await storeWith([pool('tiny', '10.9.1.0/31')]);
    await ds.create(reservation('db', 'r', { pods: [{ name: 'later', addresses: ['10.9.1.0'] }] }));
    const ipam = stableIpam(ds, new Clock());
    expect(addressesOf(await ipam.assign(pod('x', 'n1')))).toEqual(['10.9.1.1']);
    await expect(ipam.assign(pod('y', 'n1'))).rejects.toBeInstanceOf(ExhaustedError);
  });

  it('a reserved address whose reservation was deleted is freed by the sweep', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const r = await ds.create(reservation('db', 'r', { pods: [{ name: 'g', addresses: ['10.9.0.5'] }] }));
    const ipam = stableIpam(ds, new Clock());
    const g = pod('g', 'n1');
    await ipam.assign(g);
    await ipam.release(key(g));
    expect(await bindingOf(ipam, '10.9.0.5')).toMatchObject({ state: 'reserved' });
    expect(await ipam.sweep()).toEqual([]);
    await ds.delete(
      'IPReservation',
      { namespace: 'db', name: 'r' },
      { resourceVersion: r.metadata.resourceVersion },
    );
    expect((await ipam.sweep()).map((x) => x.address)).toEqual(['10.9.0.5']);
    expect(await allAllocated(ds)).toEqual([]);
  });
});

describe('precedence: ip-addrs > reservation > ordinal list > sticky > pool', () => {
  const all = {
    ...fixedAddrs(['10.9.0.1']),
    ...byOrdinal(['10.9.0.30', '10.9.0.31']),
    ...sticky,
  };
  async function setup() {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    await ds.create(reservation('db', 'r', { pods: [{ name: 'web-1', addresses: ['10.9.0.40'] }] }));
    return stableIpam(ds, new Clock());
  }
  const without = (drop: string[]) =>
    Object.fromEntries(Object.entries(all).filter(([k]) => !drop.includes(k)));

  it.each<[string, string[], string | undefined, string | undefined]>([
    ['every source', [], '10.9.0.1', undefined],
    ['no ip-addrs', [ANNOTATIONS.ipAddrs], '10.9.0.40', 'reservation'],
    ['no ip-addrs, not reserved', [ANNOTATIONS.ipAddrs, 'reservation'], '10.9.0.31', 'ordinal'],
    ['only sticky', [ANNOTATIONS.ipAddrs, 'reservation', ANNOTATIONS.ipAddrsByOrdinal], undefined, 'sticky'],
  ])('with %s the pod gets the source of highest precedence', async (_what, drop, address, source) => {
    const ipam = await setup();
    const name = drop.includes('reservation') ? 'web-1x-1' : 'web-1';
    const r = await ipam.assign(pod(name, 'n1', { annotations: without(drop) }));
    if (address) expect(addressesOf(r)).toEqual([address]);
    const b = await bindingOf(ipam, addressesOf(r)[0]!);
    expect(b?.source).toBe(source);
  });
});

describe('conflicts and bad input: clear errors, nothing allocated', () => {
  async function setup() {
    const ds = await storeWith([pool('p', '10.9.0.0/24'), pool('off', '10.7.0.0/24', { disabled: true })]);
    return { ds, ipam: stableIpam(ds, new Clock()) };
  }

  it.each<[string, Record<string, string>, string, typeof ValidationError | typeof ConflictError, string[]]>([
    ['an ordinal with no entry', byOrdinal(LIST), 'web-3', ValidationError, ['ordinal 3', 'has 3 entries']],
    ['not JSON', { [ANNOTATIONS.ipAddrsByOrdinal]: '10.9.0.1' }, 'web-0', ValidationError, ['JSON list']],
    ['an empty list', byOrdinal([]), 'web-0', ValidationError, ['non-empty']],
    ['a malformed address', byOrdinal(['10.9.0.10', '10.9.0.300']), 'web-0', ValidationError, ['10.9.0.300']],
    [
      'two IPv4 in one entry',
      byOrdinal([['10.9.0.10', '10.9.0.11']]),
      'web-0',
      ValidationError,
      ['two IPv4'],
    ],
    [
      'an entry outside every pool',
      byOrdinal(['10.9.0.10', '192.0.2.1']),
      'web-0',
      ValidationError,
      ['192.0.2.1 is outside every IPPool'],
    ],
    ['an entry in a disabled pool', byOrdinal(['10.7.0.1']), 'web-0', ValidationError, ['disabled']],
    [
      'one address for two ordinals',
      byOrdinal(['10.9.0.10', '10.9.0.11', '10.9.0.10']),
      'web-1',
      ConflictError,
      ['10.9.0.10', 'db/web-0', 'db/web-2'],
    ],
    ['a pod name without ordinal', byOrdinal(LIST), 'standalone', ValidationError, ['no numeric suffix']],
    [
      'a bad sticky value',
      { [ANNOTATIONS.stickyIp]: 'yes' },
      'web-0',
      ValidationError,
      ['"true" or "false"'],
    ],
  ])('%s', async (_what, annotations, name, type, words) => {
    const { ds, ipam } = await setup();
    const e = await failure(ipam.assign(pod(name, 'n1', { annotations })));
    expect(e).toBeInstanceOf(type);
    for (const w of words) expect(e.message).toContain(w);
    expect(await allAllocated(ds)).toEqual([]);
  });

  it('a listed address in use by a running pod of another identity: names the address and both, rolls back the rest', async () => {
    const { ds, ipam } = await setup();
    await ipam.assign(pod('squatter', 'n2', { annotations: fixedAddrs(['10.9.0.12']) }));
    const before = await allAllocated(ds);
    const e = await failure(ipam.assign(pod('web-0', 'n1', { annotations: byOrdinal(LIST) })));
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.message).toContain('10.9.0.12');
    expect(e.message).toContain('db/web-2');
    expect(e.message).toContain('pod db/squatter');
    // web-0's own address and web-1's reservation were written, then undone.
    expect(await allAllocated(ds)).toEqual(before);
  });

  it('two sets listing one address: the second set is refused, naming the address and both identities', async () => {
    const { ds, ipam } = await setup();
    await ipam.assign(pod('a-0', 'n1', { annotations: byOrdinal(['10.9.0.50', '10.9.0.51']) }));
    const before = await allAllocated(ds);
    const e = await failure(ipam.assign(pod('b-0', 'n1', { annotations: byOrdinal(['10.9.0.51']) })));
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.message).toMatch(/10\.9\.0\.51 is named for pod db\/b-0 .* held by pod db\/a-1/);
    expect(await allAllocated(ds)).toEqual(before);
  });

  it('two reservations naming one address for two pods: either pod is refused, naming both', async () => {
    const { ds, ipam } = await setup();
    await ds.create(reservation('db', 'r1', { pods: [{ name: 'x', addresses: ['10.9.0.60'] }] }));
    await ds.create(reservation('db', 'r2', { pods: [{ name: 'y', addresses: ['10.9.0.60'] }] }));
    for (const name of ['x', 'y']) {
      const e = await failure(ipam.assign(pod(name, 'n1')));
      expect(e).toBeInstanceOf(ConflictError);
      expect(e.message).toContain('10.9.0.60');
      expect(e.message).toContain('db/x');
      expect(e.message).toContain('db/y');
    }
    expect(await allAllocated(ds)).toEqual([]);
  });

  it('an ordinal list naming an address an IPReservation holds for another pod is refused', async () => {
    const { ds, ipam } = await setup();
    await ds.create(reservation('db', 'r', { pods: [{ name: 'gw', addresses: ['10.9.0.11'] }] }));
    const e = await failure(ipam.assign(pod('web-0', 'n1', { annotations: byOrdinal(LIST) })));
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.message).toContain('10.9.0.11 is reserved for pod db/gw by IPReservation db/r');
    expect(e.message).toContain('db/web-1');
    expect(await allAllocated(ds)).toEqual([]);
  });

  it('an explicit address held for a sticky identity is refused, naming the hold', async () => {
    const { ds, ipam } = await setup();
    const s = pod('s', 'n1', { annotations: sticky });
    const [held] = addressesOf(await ipam.assign(s));
    await ipam.release(key(s));
    const e = await failure(ipam.assign(pod('t', 'n1', { annotations: fixedAddrs([held!]) })));
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.message).toContain(`${held} is in use by pod db/s (held until`);
    expect(e.message).toContain('pod db/t');
    expect((await allAllocated(ds)).length).toBe(1);
  });

  it('a failed second family restores the identity binding the first family took over', async () => {
    const { ds } = await setup();
    await ds.create(pool('v6', 'fd00:9::/120'));
    const ipam = stableIpam(ds, new Clock());
    const list = [['10.9.0.70', 'fd00:9::70']];
    const old = pod('w-0', 'n1', { annotations: byOrdinal(list) });
    await ipam.assign(old);
    await ipam.release(key(old));
    // Someone takes the IPv6 address while w-0 is away (the operator freed it by hand).
    await ipam.releaseAddress('fd00:9::70');
    await ipam.assign(pod('intruder', 'n2', { annotations: fixedAddrs(['fd00:9::70']) }));
    const before = await allAllocated(ds);
    const e = await failure(ipam.assign(pod('w-0', 'n2', { annotations: byOrdinal(list) })));
    expect(e).toBeInstanceOf(ConflictError);
    expect(await allAllocated(ds)).toEqual(before);
    expect(await bindingOf(ipam, '10.9.0.70')).toMatchObject({ state: 'reserved' });
  });
});

describe('GC and retries', () => {
  it('GC of a node turns an identity-bound address of a vanished pod into a hold, and frees expired holds', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const clock = new Clock();
    const ipam = stableIpam(ds, clock, 5);
    const [addr] = addressesOf(await ipam.assign(pod('s', 'n1', { annotations: sticky })));
    const plain = addressesOf(await ipam.assign(pod('plain', 'n1')));
    const r1 = await ipam.gc(() => false, { node: 'n1' });
    expect(r1.released.map((r: AllocationRecord) => r.address).sort()).toEqual([addr, ...plain].sort());
    expect(await bindingOf(ipam, addr!)).toMatchObject({ state: 'held' });
    clock.advance(6);
    const r2 = await ipam.gc(() => true, { node: 'n1' });
    expect(r2.released.map((r) => r.address)).toEqual([addr]);
    expect(await allAllocated(ds)).toEqual([]);
  });

  it('a retried ADD of a bound pod returns what it holds and writes nothing', async () => {
    const ds = await storeWith([pool('p', '10.9.0.0/24')]);
    const ipam = stableIpam(ds, new Clock());
    const req = pod('web-0', 'n1', { annotations: byOrdinal(LIST) });
    const first = await ipam.assign(req);
    const before = await allAllocated(ds);
    await tick();
    expect(addressesOf(await ipam.assign(req))).toEqual(addressesOf(first));
    expect(await allAllocated(ds)).toEqual(before);
  });
});

describe('cost of a binding', () => {
  it('a warm replica ADD binds its address with one CAS write; the reserved entries cost nothing more', async () => {
    const { ds, calls } = counting(await storeWith([pool('p', '10.9.0.0/24')]));
    const ipam = new Ipam({ datastore: ds, now: new Clock().now, sweepIntervalMs: 0 });
    try {
      await ipam.assign(pod('web-0', 'n1', { annotations: byOrdinal(LIST) }));
      calls.length = 0;
      await ipam.assign(pod('web-1', 'n1', { annotations: byOrdinal(LIST) }));
      expect(calls).toEqual(['update']);
      calls.length = 0;
      // DEL of a bound pod: one write turns it into a reservation.
      await ipam.release({ containerID: 'web-1@n1', ifname: 'eth0' });
      expect(calls).toEqual(['update']);
    } finally {
      await ipam.close();
    }
  });
});
