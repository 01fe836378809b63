import { describe, expect, it } from 'vitest';
import { MemoryDatastore } from '../../../datastore/memory.js';
import { DERIVED_ADDRESS_ANNOTATION } from '../../../felix/node-address.js';
import { adoptNode } from '../../../felix/node-registration.js';
import { NotFoundError, type Node } from '../../../model/index.js';

const V4 = 'tern.network/bgp-ipv4-address';
const V6 = 'tern.network/bgp-ipv6-address';

function kubeletNode(addresses: string[], annotations: Record<string, string> = {}): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', labels: { 'kubernetes.io/hostname': 'n1' }, annotations },
    status: {
      addresses: [
        { type: 'Hostname', address: 'n1' },
        ...addresses.map((address) => ({ type: 'InternalIP', address })),
      ],
    },
  };
}

async function storeWith(node: Node) {
  const ds = new MemoryDatastore();
  await ds.create(node);
  return ds;
}

describe('adoptNode (kubernetes mode: the kubelet owns the Node)', () => {
  it('never creates the Node: without one it fails naming the node, and writes nothing', async () => {
    const ds = new MemoryDatastore();
    await expect(adoptNode(ds, { name: 'n1' })).rejects.toThrow(NotFoundError);
    await expect(adoptNode(ds, { name: 'n1' })).rejects.toThrow(/Node n1 does not exist/);
    expect((await ds.list('Node')).items).toEqual([]);
  });

  it('takes the InternalIP when no address annotation is set, and writes it as a derived annotation', async () => {
    const ds = await storeWith(kubeletNode(['10.1.0.5'], { 'tern.network/as-number': '65010', other: 'x' }));
    const adopted = await adoptNode(ds, { name: 'n1' });
    expect(adopted.ipv4).toBe('10.1.0.5');
    expect(adopted.ipv6).toBeUndefined();
    const n = await ds.get('Node', { name: 'n1' });
    expect(n?.metadata.annotations).toEqual({
      'tern.network/as-number': '65010', // the operator's, kept although the agent has no AS configured
      other: 'x',
      [V4]: '10.1.0.5',
      [DERIVED_ADDRESS_ANNOTATION]: '10.1.0.5',
    });
    expect(n?.metadata.labels).toEqual({ 'kubernetes.io/hostname': 'n1' });
  });

  it('an operator’s address annotation wins over the InternalIP', async () => {
    const ds = await storeWith(kubeletNode(['10.1.0.5'], { [V4]: '192.0.2.11' }));
    const adopted = await adoptNode(ds, { name: 'n1' });
    expect(adopted.ipv4).toBe('192.0.2.11');
    const n = await ds.get('Node', { name: 'n1' });
    expect(n?.metadata.annotations?.[V4]).toBe('192.0.2.11');
    expect(n?.metadata.annotations?.[DERIVED_ADDRESS_ANNOTATION]).toBeUndefined();
  });

  it('a derived address follows the InternalIP when it changes; an operator’s later annotation then wins', async () => {
    const ds = await storeWith(kubeletNode(['10.1.0.5']));
    await adoptNode(ds, { name: 'n1' });
    const moved = (await ds.get('Node', { name: 'n1' }))!;
    moved.status = { addresses: [{ type: 'InternalIP', address: '10.1.0.6' }] };
    await ds.update<'Node'>(moved);
    expect((await adoptNode(ds, { name: 'n1' })).ipv4).toBe('10.1.0.6');
    const annotated = (await ds.get('Node', { name: 'n1' }))!;
    annotated.metadata.annotations = { ...annotated.metadata.annotations, [V4]: '192.0.2.20' };
    await ds.update<'Node'>(annotated);
    expect((await adoptNode(ds, { name: 'n1' })).ipv4).toBe('192.0.2.20');
    const n = await ds.get('Node', { name: 'n1' });
    expect(n?.metadata.annotations?.[DERIVED_ADDRESS_ANNOTATION]).toBeUndefined();
  });

  it('takes one InternalIP per family (dual stack)', async () => {
    const ds = await storeWith(kubeletNode(['10.1.0.5', 'fd00:1::5']));
    expect(await adoptNode(ds, { name: 'n1' })).toMatchObject({ ipv4: '10.1.0.5', ipv6: 'fd00:1::5' });
    const n = await ds.get('Node', { name: 'n1' });
    expect(n?.metadata.annotations?.[V6]).toBe('fd00:1::5');
    expect(n?.metadata.annotations?.[DERIVED_ADDRESS_ANNOTATION]).toBe('10.1.0.5,fd00:1::5');
  });

  it('an address in the agent’s configuration wins and writes the AS it is given', async () => {
    const ds = await storeWith(kubeletNode(['10.1.0.5'], { [V4]: '192.0.2.11' }));
    const adopted = await adoptNode(ds, { name: 'n1', ipv4: '198.51.100.7', asn: 65020 });
    expect(adopted.ipv4).toBe('198.51.100.7');
    const n = await ds.get('Node', { name: 'n1' });
    expect(n?.metadata.annotations).toMatchObject({
      [V4]: '198.51.100.7',
      'tern.network/as-number': '65020',
    });
  });

  it('writes nothing when the Node already says it, and retries a write that lost a race', async () => {
    const ds = await storeWith(kubeletNode(['10.1.0.5']));
    const first = await adoptNode(ds, { name: 'n1' });
    const again = await adoptNode(ds, { name: 'n1' });
    expect(again.node.metadata.resourceVersion).toBe(first.node.metadata.resourceVersion);
    const ds2 = await storeWith(kubeletNode(['10.1.0.5']));
    const results = await Promise.all([
      adoptNode(ds2, { name: 'n1' }),
      adoptNode(ds2, { name: 'n1', asn: 65001 }),
    ]);
    expect(results.map((r) => r.ipv4)).toEqual(['10.1.0.5', '10.1.0.5']);
    expect((await ds2.get('Node', { name: 'n1' }))?.metadata.annotations?.['tern.network/as-number']).toBe(
      '65001',
    );
  });
});
