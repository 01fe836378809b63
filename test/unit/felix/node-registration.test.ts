import { describe, expect, it } from 'vitest';
import { MemoryDatastore } from '../../../datastore/memory.js';
import { registerNode } from '../../../felix/node-registration.js';

describe('registerNode', () => {
  it('creates the Node with its BGP annotations and labels', async () => {
    const ds = new MemoryDatastore();
    await registerNode(ds, { name: 'n1', ipv4: '10.0.0.1', asn: 65001, labels: { rack: 'r1' } });
    const n = await ds.get('Node', { name: 'n1' });
    expect(n?.metadata.annotations).toEqual({
      'tern.network/bgp-ipv4-address': '10.0.0.1',
      'tern.network/as-number': '65001',
    });
    expect(n?.metadata.labels).toEqual({ rack: 'r1' });
  });

  it('updates an existing Node, keeping foreign annotations and dropping stale tern ones', async () => {
    const ds = new MemoryDatastore();
    await ds.create({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: 'n1',
        annotations: { other: 'x', 'tern.network/as-number': '1' },
        labels: { a: 'b' },
      },
    });
    await registerNode(ds, { name: 'n1', ipv4: '10.0.0.2' });
    const n = await ds.get('Node', { name: 'n1' });
    expect(n?.metadata.annotations).toEqual({ other: 'x', 'tern.network/bgp-ipv4-address': '10.0.0.2' });
    expect(n?.metadata.labels).toEqual({ a: 'b' });
  });

  it('writes nothing when the Node already says the same', async () => {
    const ds = new MemoryDatastore();
    const first = await registerNode(ds, { name: 'n1', ipv4: '10.0.0.1' });
    const second = await registerNode(ds, { name: 'n1', ipv4: '10.0.0.1' });
    expect(second.metadata.resourceVersion).toBe(first.metadata.resourceVersion);
  });

  it('survives concurrent registrations of different nodes and retries conflicts on one node', async () => {
    const ds = new MemoryDatastore();
    await Promise.all([
      registerNode(ds, { name: 'n1', ipv4: '10.0.0.1' }),
      registerNode(ds, { name: 'n1', ipv4: '10.0.0.1', labels: { x: 'y' } }),
      registerNode(ds, { name: 'n2', ipv4: '10.0.0.2' }),
    ]);
    expect((await ds.list('Node')).items.map((n) => n.metadata.name).sort()).toEqual(['n1', 'n2']);
  });
});
