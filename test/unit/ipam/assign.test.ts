import { afterEach, describe, expect, it } from 'vitest';
import {
  ConflictError,
  ExhaustedError,
  ValidationError,
  containsIp,
  parseCidr,
  parseIp,
} from '../../../model/index.js';
import { ANNOTATIONS } from '../../../ipam/index.js';
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

describe('block affinity', () => {
  it('claims a block for the node on its first pod and allocates the next pods from it', async () => {
    const ds = await storeWith([pool('p', '10.1.0.0/24')]);
    const ipam = ipamOn(ds);
    const first = await ipam.assign(request('a', 'n1'));
    const second = await ipam.assign(request('b', 'n1'));
    const blocks = await allBlocks(ds);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]!.spec.affinity).toBe('n1');
    expect(blocks[0]!.spec.pool).toBe('p');
    const block = parseCidr(blocks[0]!.spec.cidr);
    expect(block.prefixLength).toBe(26);
    for (const r of [first, second]) {
      expect(r.addresses).toHaveLength(1);
      expect(containsIp(block, parseIp(r.addresses[0]!.address))).toBe(true);
      expect(r.addresses[0]).toMatchObject({
        family: 4,
        pool: 'p',
        borrowed: false,
        block: blocks[0]!.spec.cidr,
      });
      expect(r.addresses[0]!.cidr).toBe(`${r.addresses[0]!.address}/32`);
    }
    expect(first.addresses[0]!.address).not.toBe(second.addresses[0]!.address);
    expect(await ipam.blocksOf('n1')).toEqual([blocks[0]!.spec.cidr]);
  });

  it('two nodes claim different blocks', async () => {
    const ds = await storeWith([pool('p', '10.1.0.0/24')]);
    const ipam = ipamOn(ds);
    await ipam.assign(request('a', 'n1'));
    await ipam.assign(request('b', 'n2'));
    const [b1, b2] = [await ipam.blocksOf('n1'), await ipam.blocksOf('n2')];
    expect(b1).toHaveLength(1);
    expect(b2).toHaveLength(1);
    expect(b1[0]).not.toBe(b2[0]);
  });

  it('claims a second block when the first is full', async () => {
    const ds = await storeWith([pool('p', '10.1.0.0/24', { blockSize: 30 })]);
    const ipam = ipamOn(ds);
    const got = [];
    for (let i = 0; i < 5; i++) got.push(...addressesOf(await ipam.assign(request(`p${i}`, 'n1'))));
    const blocks = await ipam.blocksOf('n1');
    expect(blocks).toHaveLength(2);
    expect(new Set(got).size).toBe(5);
    const full = (await allBlocks(ds)).find((b) => Object.keys(b.spec.allocations).length === 4);
    expect(full).toBeDefined();
  });

  it('IPv6 pools are cut into /122 blocks', async () => {
    const ds = await storeWith([pool('v6', 'fd00:10::/64')]);
    const r = await ipamOn(ds).assign(request('a', 'n1'));
    expect(r.addresses[0]!.family).toBe(6);
    expect(r.addresses[0]!.cidr).toMatch(/\/128$/);
    expect(parseCidr(r.addresses[0]!.block).prefixLength).toBe(122);
  });
});

describe('exhaustion and borrowing', () => {
  // A /29 pool cut into two /30 blocks: n1 takes one, n2 the other.
  async function twoNodesOneBlockEach() {
    const ds = await storeWith([pool('tiny', '10.2.0.0/29', { blockSize: 30 })]);
    const ipam = ipamOn(ds);
    await ipam.assign(request('a1', 'n1'));
    await ipam.assign(request('b1', 'n2'));
    return { ds, ipam };
  }

  it('borrows from another node only when the pool has no free block, and reports the borrow', async () => {
    const { ipam } = await twoNodesOneBlockEach();
    for (let i = 2; i <= 4; i++) await ipam.assign(request(`a${i}`, 'n1'));
    expect(await ipam.blocksOf('n1')).toHaveLength(1);
    const borrowed = await ipam.assign(request('a5', 'n1'));
    expect(borrowed.addresses[0]!.borrowed).toBe(true);
    const n2Block = parseCidr((await ipam.blocksOf('n2'))[0]!);
    expect(containsIp(n2Block, parseIp(borrowed.addresses[0]!.address))).toBe(true);
    expect(await ipam.borrowedBy('n1')).toEqual([borrowed.addresses[0]!.address]);
    expect(await ipam.borrowedBy('n2')).toEqual([]);
  });

  it('throws ExhaustedError naming the pool when every address is taken, and allocates nothing', async () => {
    const { ds, ipam } = await twoNodesOneBlockEach();
    for (let i = 2; i <= 7; i++) await ipam.assign(request(`x${i}`, 'n1'));
    const before = await allAllocated(ds);
    expect(before).toHaveLength(8);
    const err = await ipam.assign(request('late', 'n1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExhaustedError);
    expect((err as Error).message).toContain('tiny (10.2.0.0/29)');
    expect(await allAllocated(ds)).toEqual(before);
  });

  it('throws ExhaustedError when no enabled pool selects the node', async () => {
    const ds = await storeWith([
      pool('rack1', '10.3.0.0/24', { nodeSelector: { matchLabels: { rack: '1' } } }),
    ]);
    const err = await ipamOn(ds)
      .assign(request('a', 'n9', { nodeLabels: { rack: '2' } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExhaustedError);
    expect((err as Error).message).toContain('no enabled IPPool selects node n9');
  });
});

describe('fixed addresses (tern.network/ip-addrs)', () => {
  const fixed = (pod: string, node: string, addrs: string) =>
    request(pod, node, { podAnnotations: { [ANNOTATIONS.ipAddrs]: addrs } });

  it('gets exactly the addresses asked for, in an unclaimed block, announced by the pod’s node', async () => {
    const ds = await storeWith([pool('v4', '10.4.0.0/24'), pool('v6', 'fd00:4::/120')]);
    const ipam = ipamOn(ds);
    const r = await ipam.assign(fixed('db-0', 'n1', '["fd00:4::17", "10.4.0.77"]'));
    expect(addressesOf(r)).toEqual(['10.4.0.77', 'fd00:4::17']);
    expect(r.addresses.every((a) => a.borrowed)).toBe(true);
    expect((await allBlocks(ds)).every((b) => b.spec.affinity === undefined)).toBe(true);
    expect(await ipam.borrowedBy('n1')).toEqual(['10.4.0.77', 'fd00:4::17']);
  });

  it('a fixed address inside the node’s own block is not borrowed', async () => {
    const ds = await storeWith([pool('v4', '10.4.0.0/24')]);
    const ipam = ipamOn(ds);
    const first = await ipam.assign(request('a', 'n1'));
    const block = parseCidr(first.addresses[0]!.block);
    const wanted = `10.4.0.${Number(block.network & 255n) + 9}`;
    const r = await ipam.assign(fixed('b', 'n1', JSON.stringify([wanted])));
    expect(r.addresses[0]).toMatchObject({ address: wanted, borrowed: false });
  });

  it.each([
    ['malformed JSON', '10.4.0.5', ValidationError, 'must be a JSON list of IP addresses'],
    ['not a list', '"10.4.0.5"', ValidationError, 'must be a JSON list of IP addresses'],
    ['a malformed address', '["10.4.0.300"]', ValidationError, '"10.4.0.300" is not an IP address'],
    ['two IPv4 addresses', '["10.4.0.5","10.4.0.6"]', ValidationError, 'more than one IPv4 address'],
    ['an address outside every pool', '["10.99.0.5"]', ValidationError, '10.99.0.5 is outside every IPPool'],
    ['an address in a disabled pool', '["10.5.0.5"]', ValidationError, 'in IPPool off, which is disabled'],
    ['an empty list', '[]', ValidationError, 'at least one address'],
  ])('rejects %s with a clear error and allocates nothing', async (_what, value, type, message) => {
    const ds = await storeWith([pool('v4', '10.4.0.0/24'), pool('off', '10.5.0.0/24', { disabled: true })]);
    const err = await ipamOn(ds)
      .assign(fixed('a', 'n1', value))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toContain(message);
    expect((err as Error).message).toContain('tern.network/ip-addrs');
    expect(await allAllocated(ds)).toEqual([]);
  });

  it('rejects an address held by another pod with ConflictError naming the address and the holder', async () => {
    const ds = await storeWith([pool('v4', '10.4.0.0/24')]);
    const ipam = ipamOn(ds);
    await ipam.assign(fixed('first', 'n1', '["10.4.0.5"]'));
    const err = await ipamOn(ds)
      .assign(fixed('second', 'n2', '["10.4.0.5"]'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toContain('10.4.0.5 is in use by pod default/first');
    expect((err as Error).message).toContain('on node n1');
  });

  it('rejects a taken address even when this process only has a stale copy of the block', async () => {
    const ds = await storeWith([pool('v4', '10.4.0.0/24')]);
    const stale = ipamOn(ds);
    await stale.assign(fixed('a', 'n1', '["10.4.0.5"]'));
    await ipamOn(ds).assign(fixed('b', 'n2', '["10.4.0.6"]'));
    // `stale` caches the block without 10.4.0.6; it must still see it as taken.
    const err = await stale.assign(fixed('c', 'n1', '["10.4.0.6"]')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
  });

  it('a block created for a fixed address can later be claimed by a node without losing the fixed address', async () => {
    const ds = await storeWith([pool('v4', '10.4.0.0/26')]);
    const ipam = ipamOn(ds);
    await ipam.assign(fixed('db', 'n2', '["10.4.0.5"]'));
    const r = await ipam.assign(request('web', 'n1'));
    expect(r.addresses[0]!.address).not.toBe('10.4.0.5');
    expect(await ipam.blocksOf('n1')).toEqual(['10.4.0.0/26']);
    expect(await ipam.borrowedBy('n2')).toEqual(['10.4.0.5']);
  });
});

describe('pool choice', () => {
  const pools = () => [
    pool('a', '10.10.0.0/24'),
    pool('b', '10.11.0.0/24'),
    pool('c', '10.12.0.0/24'),
    pool('d', '10.13.0.0/24'),
    pool('v6', 'fd00:6::/120'),
  ];
  const poolOf = async (more: Parameters<typeof request>[2]) => {
    const ds = await storeWith(pools());
    const r = await ipamOn(ds).assign(request('x', 'n1', { families: [4], ...more }));
    return r.addresses[0]!.pool;
  };
  const podA = { [ANNOTATIONS.ipv4Pools]: '["a"]' };
  const nsB = { [ANNOTATIONS.ipv4Pools]: '["10.11.0.0/24"]' };
  const cfgC = { ipv4: ['c'] };

  it.each([
    [
      'pod annotation over namespace and config',
      { podAnnotations: podA, namespaceAnnotations: nsB, configPools: cfgC },
      'a',
    ],
    ['namespace annotation (by CIDR) over config', { namespaceAnnotations: nsB, configPools: cfgC }, 'b'],
    ['CNI config when no annotation', { configPools: cfgC }, 'c'],
    [
      'an empty pod list falls through to the namespace',
      { podAnnotations: { [ANNOTATIONS.ipv4Pools]: '[]' }, namespaceAnnotations: nsB },
      'b',
    ],
    [
      'the first pool with room among several named',
      { podAnnotations: { [ANNOTATIONS.ipv4Pools]: '["d","a"]' } },
      'd',
    ],
  ])('%s', async (_what, more, expected) => {
    expect(await poolOf(more)).toBe(expected);
  });

  it('by default uses only enabled pools whose nodeSelector selects the node, read from the Node object', async () => {
    const ds = await storeWith(
      [
        pool('off', '10.20.0.0/24', { disabled: true }),
        pool('rack1', '10.21.0.0/24', { nodeSelector: { matchLabels: { rack: '1' } } }),
        pool('rack2', '10.22.0.0/24', { nodeSelector: { matchLabels: { rack: '2' } } }),
      ],
      { n1: { rack: '2' } },
    );
    const r = await ipamOn(ds).assign({ attachment: request('x', 'n1').attachment, node: 'n1' });
    expect(r.addresses.map((a) => a.pool)).toEqual(['rack2']);
  });

  it('gives dual stack when both an IPv4 and an IPv6 pool are selected, IPv4 first', async () => {
    const ds = await storeWith(pools());
    const r = await ipamOn(ds).assign(request('x', 'n1'));
    expect(r.addresses.map((a) => a.family)).toEqual([4, 6]);
    expect(r.addresses[1]!.pool).toBe('v6');
  });

  it('pool choice is per family: an IPv4 annotation leaves IPv6 to the defaults', async () => {
    const ds = await storeWith(pools());
    const r = await ipamOn(ds).assign(request('x', 'n1', { podAnnotations: podA }));
    expect(r.addresses.map((a) => a.pool)).toEqual(['a', 'v6']);
  });

  it.each([
    ['an unknown pool name', { [ANNOTATIONS.ipv4Pools]: '["nope"]' }, 'unknown IPPool "nope"'],
    [
      'a CIDR that is no pool',
      { [ANNOTATIONS.ipv4Pools]: '["10.99.0.0/24"]' },
      'no IPPool has CIDR 10.99.0.0/24',
    ],
    ['a malformed CIDR', { [ANNOTATIONS.ipv4Pools]: '["10.99.0.0/33"]' }, 'invalid prefix length'],
    ['an IPv6 pool as IPv4', { [ANNOTATIONS.ipv4Pools]: '["v6"]' }, 'IPPool v6 is IPv6, not IPv4'],
    ['a disabled pool', { [ANNOTATIONS.ipv4Pools]: '["off"]' }, 'IPPool off is disabled'],
    [
      'a pool that does not select the node',
      { [ANNOTATIONS.ipv4Pools]: '["rack9"]' },
      'IPPool rack9 does not select node n1',
    ],
    ['not JSON', { [ANNOTATIONS.ipv4Pools]: 'a,b' }, 'must be a JSON list of IPPool names or CIDRs'],
  ])('rejects %s with ValidationError and allocates nothing', async (_what, annotations, message) => {
    const ds = await storeWith([
      ...pools(),
      pool('off', '10.30.0.0/24', { disabled: true }),
      pool('rack9', '10.31.0.0/24', { nodeSelector: { matchLabels: { rack: '9' } } }),
    ]);
    const err = await ipamOn(ds)
      .assign(request('x', 'n1', { podAnnotations: annotations }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toContain(message);
    expect((err as Error).message).toContain('pod annotation tern.network/ipv4-pools');
    expect(await allAllocated(ds)).toEqual([]);
  });

  it('does not use a pool that overlaps another, and says why', async () => {
    const ds = await storeWith([pool('a', '10.40.0.0/16'), pool('b', '10.40.1.0/24')]);
    const err = await ipamOn(ds)
      .assign(request('x', 'n1', { podAnnotations: { [ANNOTATIONS.ipv4Pools]: '["b"]' } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toContain('overlaps IPPool a');
  });

  it('rejects a request whose families have no pool', async () => {
    const ds = await storeWith([pool('a', '10.10.0.0/24')]);
    const err = await ipamOn(ds)
      .assign(request('x', 'n1', { families: [4, 6] }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExhaustedError);
    expect((err as Error).message).toContain('no enabled IPv6 IPPool selects node n1');
    expect(await allAllocated(ds)).toEqual([]);
  });
});

describe('failed requests leave nothing behind', () => {
  it('rolls back the IPv4 address when the IPv6 one cannot be had', async () => {
    const ds = await storeWith([pool('v4', '10.50.0.0/24'), pool('v6', 'fd00:50::/127')]);
    const ipam = ipamOn(ds);
    await ipam.assign(request('a', 'n1'));
    await ipam.assign(request('b', 'n1'));
    const before = await allAllocated(ds);
    const err = await ipam.assign(request('c', 'n1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExhaustedError);
    expect((err as Error).message).toContain('IPv6');
    expect(await allAllocated(ds)).toEqual(before);
    expect(await ipam.allocationsOf('n1')).toHaveLength(4);
  });

  it('rolls back the first fixed address when the second is taken', async () => {
    const ds = await storeWith([pool('v4', '10.50.0.0/24'), pool('v6', 'fd00:50::/120')]);
    const ipam = ipamOn(ds);
    await ipam.assign(
      request('holder', 'n1', { podAnnotations: { [ANNOTATIONS.ipAddrs]: '["fd00:50::9"]' } }),
    );
    const before = await allAllocated(ds);
    const err = await ipam
      .assign(request('c', 'n1', { podAnnotations: { [ANNOTATIONS.ipAddrs]: '["10.50.0.9","fd00:50::9"]' } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(await allAllocated(ds)).toEqual(before);
  });

  it.each([
    ['empty containerID', { containerID: '' }, 'attachment.containerID'],
    ['empty ifname', { ifname: '' }, 'attachment.ifname'],
    ['empty pod', { pod: '' }, 'attachment.pod'],
  ])('rejects an attachment with %s', async (_what, bad, field) => {
    const ds = await storeWith([pool('v4', '10.50.0.0/24')]);
    const req = request('a', 'n1');
    const err = await ipamOn(ds)
      .assign({ ...req, attachment: { ...req.attachment, ...bad } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });
});

describe('a retried ADD', () => {
  it('returns the addresses the attachment already holds instead of taking more', async () => {
    const ds = await storeWith([pool('v4', '10.60.0.0/24')]);
    const ipam = ipamOn(ds);
    const first = await ipam.assign(request('a', 'n1'));
    const again = await ipam.assign(request('a', 'n1'));
    expect(again).toEqual(first);
    expect(await allAllocated(ds)).toHaveLength(1);
  });
});
