// Interleavings a node agent meets: a DEL while its ADD still runs, GC during an ADD, an ADD
// retried after a crash, a pool whose block size changed under existing blocks.
import { afterEach, describe, expect, it } from 'vitest';
import type { Datastore } from '../../../datastore/types.js';
import { ANNOTATIONS, Ipam } from '../../../ipam/index.js';
import { ConflictError } from '../../../model/index.js';
import {
  addressesOf,
  allAllocated,
  allBlocks,
  closeAll,
  ipamOn,
  pool,
  request,
  storeWith,
} from './fixture.js';

afterEach(closeAll);

/** Applies writes at once but holds their answers until `open()`: the writer is still "in flight". */
function gatedWrites(inner: Datastore) {
  let gate: Promise<void> | undefined;
  let open = () => {};
  const ds = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'update' && prop !== 'create') return Reflect.get(target, prop, receiver) as unknown;
      const write = Reflect.get(target, prop, receiver) as (o: unknown) => Promise<unknown>;
      return async (obj: unknown) => {
        const stored = await write.call(target, obj);
        if (gate) await gate;
        return stored;
      };
    },
  });
  return {
    ds,
    close: () => {
      gate = new Promise((r) => (open = r));
    },
    open: () => {
      gate = undefined;
      open();
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('interleavings', () => {
  it('a release arriving while the same attachment’s assign runs waits for it and frees its address', async () => {
    const ds = await storeWith([pool('p', '10.130.0.0/24')]);
    const ipam = ipamOn(ds);
    await ipam.assign(request('warm', 'n1'));
    const adding = ipam.assign(request('a', 'n1'));
    const releasing = ipam.release({ containerID: 'ctr-a', ifname: 'eth0' });
    const [added, released] = await Promise.all([adding, releasing]);
    expect(released.map((r) => r.address)).toEqual(addressesOf(added));
    expect((await allAllocated(ds)).map((a) => a.handle)).toEqual(['default/warm/ctr-warm/eth0']);
  });

  it('GC never frees an address whose assign is still in flight in this process', async () => {
    const store = await storeWith([pool('p', '10.131.0.0/24')]);
    const gated = gatedWrites(store);
    const ipam = new Ipam({ datastore: gated.ds });
    try {
      await ipam.assign(request('warm', 'n1'));
      gated.close();
      const adding = ipam.assign(request('new', 'n1'));
      // Wait until the allocation is stored while the assign has not returned yet.
      while ((await allAllocated(store)).length < 2) await tick();
      const gc = await ipam.gc((a) => a.pod === 'warm', { node: 'n1' });
      gated.open();
      const added = await adding;
      expect(gc.released).toEqual([]);
      expect((await ipam.allocationsOf('n1')).map((a) => a.address)).toContain(added.addresses[0]!.address);
    } finally {
      gated.open();
      await ipam.close();
    }
  });

  it('an ADD retried after a crash keeps the address it got and completes the missing family', async () => {
    const ds = await storeWith([pool('v4', '10.132.0.0/24'), pool('v6', 'fd00:132::/120')]);
    // The crashed process got as far as IPv4.
    const before = await ipamOn(ds).assign(request('a', 'n1', { families: [4] }));
    const restarted = ipamOn(ds);
    const after = await restarted.assign(request('a', 'n1'));
    expect(after.addresses.map((a) => a.family)).toEqual([4, 6]);
    expect(after.addresses[0]).toEqual(before.addresses[0]);
    expect(await allAllocated(ds)).toHaveLength(2);
  });

  it('a fixed address goes into the existing block that covers it even after the pool’s blockSize changed', async () => {
    const ds = await storeWith([pool('p', '10.133.0.0/24', { blockSize: 28 })]);
    await ipamOn(ds).assign(
      request('a', 'n1', { podAnnotations: { [ANNOTATIONS.ipAddrs]: '["10.133.0.5"]' } }),
    );
    const stored = (await ds.get('IPPool', { name: 'p' }))!;
    await ds.update({ ...stored, spec: { ...stored.spec, blockSize: 26 } });
    const fresh = ipamOn(ds);
    await fresh.assign(request('b', 'n1', { podAnnotations: { [ANNOTATIONS.ipAddrs]: '["10.133.0.6"]' } }));
    expect((await allBlocks(ds)).map((b) => b.spec.cidr)).toEqual(['10.133.0.0/28']);
    const err = await ipamOn(ds)
      .assign(request('c', 'n1', { podAnnotations: { [ANNOTATIONS.ipAddrs]: '["10.133.0.5"]' } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    // New blocks are not carved over the old /28 either.
    const r = await fresh.assign(request('d', 'n1'));
    expect(r.addresses[0]!.block).not.toBe('10.133.0.0/26');
  });
});
