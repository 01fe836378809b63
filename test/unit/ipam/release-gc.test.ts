import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError, ValidationError } from '../../../model/index.js';
import { ANNOTATIONS, type AllocationRecord } from '../../../ipam/index.js';
import {
  addressesOf,
  allAllocated,
  allBlocks,
  attachment,
  closeAll,
  ipamOn,
  pool,
  request,
  storeWith,
} from './fixture.js';

afterEach(closeAll);

describe('release by (containerID, ifname)', () => {
  it('frees exactly that attachment: not the pod’s other interface, not another container of the pod', async () => {
    const ds = await storeWith([pool('v4', '10.70.0.0/24'), pool('v6', 'fd00:70::/120')]);
    const ipam = ipamOn(ds);
    const eth0 = attachment('web', { containerID: 'c1', ifname: 'eth0' });
    const net1 = attachment('web', { containerID: 'c1', ifname: 'net1' });
    const other = attachment('web', { containerID: 'c2', ifname: 'eth0' });
    const taken = await Promise.all(
      [eth0, net1, other].map((a) => ipam.assign({ attachment: a, node: 'n1', nodeLabels: {} })),
    );
    const released = await ipam.release({ containerID: 'c1', ifname: 'eth0' });
    expect(released.map((r) => r.address).sort()).toEqual(addressesOf(taken[0]!).sort());
    expect(released.every((r) => r.containerID === 'c1' && r.ifname === 'eth0')).toBe(true);
    const left = (await ipam.allocationsOf('n1')).map((r) => r.address).sort();
    expect(left).toEqual([...addressesOf(taken[1]!), ...addressesOf(taken[2]!)].sort());
  });

  it('releasing twice is fine: the second release frees nothing', async () => {
    const ds = await storeWith([pool('v4', '10.70.0.0/24')]);
    const ipam = ipamOn(ds);
    await ipam.assign(request('a', 'n1'));
    expect(await ipam.release({ containerID: 'ctr-a', ifname: 'eth0' })).toHaveLength(1);
    expect(await ipam.release({ containerID: 'ctr-a', ifname: 'eth0' })).toEqual([]);
    expect(await allAllocated(ds)).toEqual([]);
  });

  it('another process (the agent after a restart) releases what this one assigned', async () => {
    const ds = await storeWith([pool('v4', '10.70.0.0/24')]);
    await ipamOn(ds).assign(request('a', 'n1'));
    await ipamOn(ds).assign(request('b', 'n2'));
    const released = await ipamOn(ds).release({ containerID: 'ctr-a', ifname: 'eth0' });
    expect(released.map((r) => r.pod)).toEqual(['a']);
    expect((await allAllocated(ds)).map((a) => a.handle)).toEqual(['default/b/ctr-b/eth0']);
  });

  it('a released address is not handed out again at once (next fit)', async () => {
    const ds = await storeWith([pool('v4', '10.70.0.0/24')]);
    const ipam = ipamOn(ds);
    const a = await ipam.assign(request('a', 'n1'));
    await ipam.release({ containerID: 'ctr-a', ifname: 'eth0' });
    const b = await ipam.assign(request('b', 'n1'));
    expect(b.addresses[0]!.address).not.toBe(a.addresses[0]!.address);
  });

  it('releasing the last fixed address of an unclaimed block deletes the block; a node’s own block stays', async () => {
    const ds = await storeWith([pool('v4', '10.70.0.0/24')]);
    const ipam = ipamOn(ds);
    const own = await ipam.assign(request('own', 'n1'));
    // An address in another /26 than the node's own block.
    const ownBlockStart = Number(own.addresses[0]!.block.split('.')[3]!.split('/')[0]);
    const fixed = `10.70.0.${(ownBlockStart + 64 + 5) % 256}`;
    await ipam.assign(
      request('db', 'n1', { podAnnotations: { [ANNOTATIONS.ipAddrs]: JSON.stringify([fixed]) } }),
    );
    expect(await allBlocks(ds)).toHaveLength(2);
    await ipam.release({ containerID: 'ctr-db', ifname: 'eth0' });
    await ipam.release({ containerID: 'ctr-own', ifname: 'eth0' });
    const blocks = await allBlocks(ds);
    expect(blocks.map((b) => b.spec.affinity)).toEqual(['n1']);
  });

  it('releaseAddress frees one address whoever holds it; a free or malformed address is an error', async () => {
    const ds = await storeWith([pool('v4', '10.70.0.0/24')]);
    const ipam = ipamOn(ds);
    const r = await ipam.assign(request('a', 'n1'));
    const ip = r.addresses[0]!.address;
    expect(await ipam.releaseAddress(ip)).toMatchObject({ address: ip, pod: 'a', node: 'n1' });
    await expect(ipam.releaseAddress(ip)).rejects.toThrow(NotFoundError);
    await expect(ipam.releaseAddress('10.99.0.1')).rejects.toThrow(NotFoundError);
    await expect(ipam.releaseAddress('nonsense')).rejects.toThrow(ValidationError);
    // The attachment index forgot it too: releasing the attachment now frees nothing.
    expect(await ipam.release({ containerID: 'ctr-a', ifname: 'eth0' })).toEqual([]);
  });
});

describe('garbage collection', () => {
  it('frees the allocations of attachments that no longer exist on the node, and only those', async () => {
    const ds = await storeWith([pool('v4', '10.80.0.0/24')]);
    const ipam = ipamOn(ds);
    for (const p of ['live', 'dead1', 'dead2']) await ipam.assign(request(p, 'n1'));
    await ipam.assign(request('elsewhere', 'n2'));
    const valid = new Set(['ctr-live/eth0']);
    const seen: AllocationRecord[] = [];
    const result = await ipam.gc(
      (a) => {
        seen.push(a);
        return valid.has(`${a.containerID}/${a.ifname}`);
      },
      { node: 'n1' },
    );
    expect(result.released.map((r) => r.pod).sort()).toEqual(['dead1', 'dead2']);
    expect(seen.every((a) => a.node === 'n1')).toBe(true);
    expect((await allAllocated(ds)).map((a) => a.handle).sort()).toEqual([
      'default/elsewhere/ctr-elsewhere/eth0',
      'default/live/ctr-live/eth0',
    ]);
    // What GC freed is no longer held for the attachment.
    expect(await ipam.release({ containerID: 'ctr-dead1', ifname: 'eth0' })).toEqual([]);
  });

  it('frees a borrowed address of the node inside another node’s block', async () => {
    const ds = await storeWith([pool('tiny', '10.81.0.0/29', { blockSize: 30 })]);
    const ipam = ipamOn(ds);
    await ipam.assign(request('b', 'n2'));
    for (let i = 0; i < 5; i++) await ipam.assign(request(`a${i}`, 'n1'));
    expect(await ipam.borrowedBy('n1')).toHaveLength(1);
    await ipam.gc(() => false, { node: 'n1' });
    expect(await ipam.borrowedBy('n1')).toEqual([]);
    expect(await ipam.allocationsOf('n2')).toHaveLength(1);
  });

  it('keeps one empty block per node and pool, deletes further empty ones and empty unclaimed ones', async () => {
    const ds = await storeWith([pool('p', '10.82.0.0/24', { blockSize: 30 })]);
    const ipam = ipamOn(ds);
    for (let i = 0; i < 9; i++) await ipam.assign(request(`a${i}`, 'n1'));
    await ipam.assign(request('b', 'n2'));
    expect(await ipam.blocksOf('n1')).toHaveLength(3);
    const result = await ipam.gc(() => false, { node: 'n1' });
    expect(result.released).toHaveLength(9);
    expect(result.deletedBlocks).toHaveLength(2);
    expect(await ipam.blocksOf('n1')).toHaveLength(1);
    expect(await ipam.blocksOf('n2')).toHaveLength(1);
    // The node allocates again from its remaining block without claiming.
    await ipam.assign(request('again', 'n1'));
    expect(await ipam.blocksOf('n1')).toHaveLength(1);
  });

  it('without a node scope it judges every allocation of the cluster', async () => {
    const ds = await storeWith([pool('p', '10.83.0.0/24')]);
    const ipam = ipamOn(ds);
    await ipam.assign(request('a', 'n1'));
    await ipam.assign(request('b', 'n2'));
    const result = await ipam.gc((a) => a.pod === 'a');
    expect(result.released.map((r) => r.pod)).toEqual(['b']);
  });
});

describe('queries for the agent and ternctl', () => {
  it('allocationsOf lists the node’s pods’ addresses with their handles', async () => {
    const ds = await storeWith([pool('p', '10.90.0.0/24')]);
    const ipam = ipamOn(ds);
    const r = await ipam.assign(request('a', 'n1'));
    expect(await ipam.allocationsOf('n1')).toEqual([
      expect.objectContaining({
        address: r.addresses[0]!.address,
        handle: 'default/a/ctr-a/eth0',
        namespace: 'default',
        pod: 'a',
        containerID: 'ctr-a',
        ifname: 'eth0',
        node: 'n1',
        blockAffinity: 'n1',
        pool: 'p',
      }),
    ]);
    expect(await ipam.allocationsOf('n2')).toEqual([]);
  });

  it('usage counts blocks and addresses per pool', async () => {
    const ds = await storeWith([
      pool('p', '10.91.0.0/29', { blockSize: 30 }),
      pool('v6', 'fd00:91::/64'),
      pool('off', '10.92.0.0/24', { disabled: true }),
    ]);
    const ipam = ipamOn(ds);
    for (let i = 0; i < 5; i++) await ipam.assign(request(`a${i}`, 'n1', { families: [4] }));
    await ipam.assign(request('f', 'n2', { podAnnotations: { [ANNOTATIONS.ipAddrs]: '["fd00:91::1:0"]' } }));
    const usage = await ipam.usage();
    expect(usage.map((u) => u.pool)).toEqual(['off', 'p', 'v6']);
    expect(usage[1]).toEqual({
      pool: 'p',
      cidr: '10.91.0.0/29',
      family: 4,
      disabled: false,
      blockSize: 30,
      blocks: { total: 2, claimed: 2, unclaimed: 0 },
      addresses: { total: 8, used: 5, free: 3, borrowed: 0 },
    });
    expect(usage[2]).toMatchObject({
      blockSize: 122,
      blocks: { total: 2 ** 58, claimed: 0, unclaimed: 1 },
      addresses: { used: 1, borrowed: 1 },
    });
    expect(usage[0]).toMatchObject({ disabled: true, addresses: { used: 0, total: 256 } });
  });
});

describe('allocationsFor (CNI CHECK)', () => {
  it('returns exactly the attachment’s addresses, from this process or another', async () => {
    const ds = await storeWith([pool('v4', '10.95.0.0/24'), pool('v6', 'fd00:95::/120')]);
    const ipam = ipamOn(ds);
    const a = await ipam.assign(request('a', 'n1'));
    await ipam.assign(request('b', 'n1'));
    const key = { containerID: 'ctr-a', ifname: 'eth0' };
    expect((await ipam.allocationsFor(key)).map((r) => r.address)).toEqual(addressesOf(a));
    expect((await ipamOn(ds).allocationsFor(key)).map((r) => r.address)).toEqual(addressesOf(a));
    await ipam.release(key);
    expect(await ipam.allocationsFor(key)).toEqual([]);
  });
});
