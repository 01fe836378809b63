import { describe, expect, it } from 'vitest';
import { defaultTopology, parseTopology } from '../../../deploy/lab/topology.js';

const base = {
  nodes: [{ name: 'n1' }],
  namespaces: [{ name: 'x' }],
  pods: [{ namespace: 'x', name: 'a', node: 'n1' }],
};

describe('lab topology', () => {
  it('the default has 3 nodes, a tern ToR and 9 pods spread over every node', () => {
    const t = defaultTopology();
    expect(t.nodes.map((n) => n.name)).toEqual(['node1', 'node2', 'node3']);
    expect(t.tor).toMatchObject({ kind: 'tern', asn: 64512 });
    expect(t.pods).toHaveLength(9);
    expect(new Set(t.pods.map((p) => p.node)).size).toBe(3);
  });

  it.each([
    [{ ...base, pods: [{ namespace: 'x', name: 'a', node: 'nope' }] }, 'pods[0].node: unknown node "nope"'],
    [
      { ...base, pods: [{ namespace: 'q', name: 'a', node: 'n1' }] },
      'pods[0].namespace: unknown namespace "q"',
    ],
    [
      { ...base, pods: [{ namespace: 'x', name: 'a', node: 'n1', ip: '10.1.1' }] },
      'pods[0].ip: "10.1.1" is not an IP address',
    ],
    [{ ...base, nodes: [{ name: 'n1' }, { name: 'n1' }] }, 'nodes[1].name: duplicate node n1'],
    [{ ...base, nodes: [{ name: 'Node_1' }] }, 'nodes[0].name: must be lowercase letters, digits and -'],
    [{ ...base, tor: { kind: 'cisco' } }, 'tor.kind'],
    [
      { ...base, pools: [{ name: 'p', cidr: '10.0.0.1/16' }] },
      'pools[0].cidr: "10.0.0.1/16" has host bits set',
    ],
    [{ nodes: [] }, 'nodes: at least one node is needed'],
  ])('rejects a bad topology naming the problem (%#)', (input, message) => {
    expect(() => parseTopology(input, 'lab.yaml')).toThrow(`lab.yaml: ${message}`);
  });
});
