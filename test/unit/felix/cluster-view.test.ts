// ClusterView's derived data, from IPAM blocks as the datastore holds them: the node's own
// blocks, the addresses it borrowed from others' blocks, its pods' allocations, and every pod's
// addresses; change notifications per kind.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryDatastore } from '../../../datastore/memory.js';
import { ClusterView, type ClusterChange, type FollowedKind } from '../../../felix/cluster-view.js';
import type { IPAMBlock } from '../../../model/index.js';

const alloc = (ns: string, pod: string, node: string, ifname = 'eth0') => ({
  handle: `${ns}/${pod}/c-${pod}/${ifname}`,
  namespace: ns,
  pod,
  containerID: `c-${pod}`,
  interface: ifname,
  node,
});
const block = (
  cidr: string,
  affinity: string | undefined,
  allocations: IPAMBlock['spec']['allocations'],
): IPAMBlock => ({
  apiVersion: 'tern.network/v1',
  kind: 'IPAMBlock',
  metadata: { name: cidr.replace(/[./]/g, '-') },
  spec: { cidr, pool: 'p', ...(affinity ? { affinity } : {}), allocations },
});

const views: ClusterView[] = [];
afterEach(async () => {
  for (const v of views.splice(0)) await v.stop();
});

async function viewWith(...blocks: IPAMBlock[]) {
  const ds = new MemoryDatastore();
  for (const b of blocks) await ds.create(b);
  const view = new ClusterView(ds);
  views.push(view);
  await view.start();
  return { ds, view };
}

describe('ClusterView', () => {
  it('blocksOf: blocks affine to the node only (not unclaimed ones, not other nodes’)', async () => {
    const { view } = await viewWith(
      block('10.244.0.0/26', 'a', {}),
      block('10.244.0.64/26', 'b', {}),
      block('10.244.1.0/26', undefined, { '5': alloc('x', 'fixed', 'a') }),
      block('10.244.0.128/26', 'a', {}),
    );
    expect(view.blocksOf('a').sort()).toEqual(['10.244.0.0/26', '10.244.0.128/26']);
    expect(view.blocksOf('c')).toEqual([]);
  });

  it('borrowedBy: addresses held for the node’s pods in blocks not affine to it (borrowed and fixed)', async () => {
    const { view } = await viewWith(
      block('10.244.0.0/26', 'a', { '1': alloc('x', 'p1', 'a'), '2': alloc('x', 'p2', 'b') }),
      block('10.244.1.0/26', undefined, { '5': alloc('x', 'fixed', 'a') }),
    );
    expect(view.borrowedBy('b')).toEqual(['10.244.0.2']);
    expect(view.borrowedBy('a')).toEqual(['10.244.1.5']);
  });

  it('allocationsOn and podAddresses: every attachment with its interface and node', async () => {
    const { view } = await viewWith(
      block('10.244.0.0/26', 'a', {
        '1': alloc('x', 'p1', 'a'),
        '2': alloc('x', 'p1', 'a', 'net1'),
        '3': alloc('y', 'p3', 'b'),
      }),
    );
    expect(view.allocationsOn('a').map((r) => [r.address, r.pod, r.ifname])).toEqual([
      ['10.244.0.1', 'p1', 'eth0'],
      ['10.244.0.2', 'p1', 'net1'],
    ]);
    expect(Object.fromEntries(view.podAddresses())).toEqual({
      'x/p1': { ips: ['10.244.0.1', '10.244.0.2'], ifnames: ['eth0', 'net1'], node: 'a' },
      'y/p3': { ips: ['10.244.0.3'], ifnames: ['eth0'], node: 'b' },
    });
  });

  it('onChange names the kind of each change after start, and derived data follows at once', async () => {
    const { ds, view } = await viewWith();
    const seen: FollowedKind[] = [];
    view.onChange((c) => seen.push(c.kind));
    await ds.create(block('10.244.0.0/26', 'a', {}));
    await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual(['IPAMBlock']);
    expect(view.blocksOf('a')).toEqual(['10.244.0.0/26']);
  });

  it('onChange carries the object: added, modified with the old one, deleted', async () => {
    const { ds, view } = await viewWith();
    const seen: ClusterChange[] = [];
    view.onChange((c) => seen.push(c));
    const created = await ds.create(block('10.244.1.0/26', 'a', {}));
    await ds.update({ ...created, spec: { ...created.spec, affinity: 'b' } });
    await ds.delete('IPAMBlock', { name: created.metadata.name });
    await new Promise((r) => setTimeout(r, 5));
    expect(seen.map((c) => [c.kind, c.type])).toEqual([
      ['IPAMBlock', 'added'],
      ['IPAMBlock', 'modified'],
      ['IPAMBlock', 'deleted'],
    ]);
    const modified = seen[1]!;
    if (modified.kind !== 'IPAMBlock' || modified.type !== 'modified') throw new Error('not a modification');
    expect(modified.old.spec.affinity).toBe('a');
    expect(modified.object.spec.affinity).toBe('b');
    expect(seen[2]!.object.metadata.name).toBe(created.metadata.name);
  });

  it('whenPresent: at once when the object is there, at the change that brings it, undefined at timeout', async () => {
    const { ds, view } = await viewWith(block('10.244.0.0/26', 'a', {}));
    const there = await view.whenPresent('IPAMBlock', { name: '10-244-0-0-26' }, 1000);
    expect(there?.spec.cidr).toBe('10.244.0.0/26');
    const later = view.whenPresent('IPAMBlock', { name: '10-244-0-64-26' }, 10_000);
    await ds.create(block('10.244.0.64/26', 'b', {}));
    expect((await later)?.spec.affinity).toBe('b');
    expect(await view.whenPresent('IPAMBlock', { name: 'never' }, 20)).toBeUndefined();
  });
});
