import { describe, expect, test } from 'vitest';
import { hostVethName, type Pod } from '../../../model/index.js';
import { policyNamespaceFromResource, policyPodFromResource } from '../../../policy/index.js';

const pod = (spec: Partial<NonNullable<Pod['spec']>>, status: Pod['status'] = {}): Pod =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: 'x', name: 'a', labels: { app: 'db' } },
    spec: { containers: [], ...spec },
    status,
  }) as Pod;

describe('policyPodFromResource', () => {
  test('takes labels, every pod IP, the node, named container ports (TCP by default) and host veth names', () => {
    const p = policyPodFromResource(
      pod(
        {
          nodeName: 'n1',
          containers: [
            { name: 'c', ports: [{ name: 'http', containerPort: 80 }, { containerPort: 9000 }] },
            { name: 'd', ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }] },
          ],
        },
        { podIP: '10.0.0.1', podIPs: [{ ip: '10.0.0.1' }, { ip: 'fd00::1' }] },
      ),
      ['eth0', 'net1'],
    );
    expect(p).toEqual({
      namespace: 'x',
      name: 'a',
      labels: { app: 'db' },
      ips: ['10.0.0.1', 'fd00::1'],
      node: 'n1',
      ports: [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
      hostInterfaces: [hostVethName('x', 'a', 'eth0'), hostVethName('x', 'a', 'net1')],
    });
  });

  test('hostNetwork and finished pods are not policy endpoints', () => {
    expect(policyPodFromResource(pod({ hostNetwork: true }))).toBeNull();
    expect(policyPodFromResource(pod({}, { phase: 'Succeeded' }))).toBeNull();
    expect(policyPodFromResource(pod({}, { phase: 'Failed' }))).toBeNull();
    expect(policyPodFromResource(pod({}, { phase: 'Running' }))?.ips).toEqual([]);
  });

  test('namespaces keep their labels', () => {
    expect(
      policyNamespaceFromResource({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'x', labels: { t: '1' } },
      }),
    ).toEqual({ name: 'x', labels: { t: '1' } });
  });
});
