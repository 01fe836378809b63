import { describe, expect, it } from 'vitest';
import { KINDS, ValidationError, parseResource, type Kind } from '../../../model/index.js';

const valid: { [K in Kind]: unknown } = {
  Pod: {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: 'default', name: 'web-0', labels: { app: 'web' } },
    spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }] },
  },
  Namespace: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenant-a' } },
  Node: {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-1' },
    status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
  },
  NetworkPolicy: {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace: 'default', name: 'allow-web' },
    spec: {
      podSelector: { matchLabels: { app: 'web' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [
            { podSelector: { matchExpressions: [{ key: 'role', operator: 'In', values: ['client'] }] } },
            { namespaceSelector: {}, podSelector: {} },
            { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
          ],
          ports: [
            { protocol: 'TCP', port: 'http' },
            { port: 8000, endPort: 8080 },
          ],
        },
      ],
      egress: [{ to: [{ namespaceSelector: { matchLabels: { team: 'a' } } }] }],
    },
  },
  ClusterNetworkPolicy: {
    apiVersion: 'policy.networking.k8s.io/v1beta1',
    kind: 'ClusterNetworkPolicy',
    metadata: { name: 'tenant-isolation' },
    spec: {
      tier: 'Admin',
      priority: 10,
      subject: { namespaces: { matchLabels: { tenant: 'a' } } },
      ingress: [
        {
          name: 'monitoring',
          action: 'Accept',
          from: [{ namespaces: { matchLabels: { role: 'monitoring' } } }],
          protocols: [{ tcp: { destinationPort: { number: 9100 } } }, { destinationNamedPort: 'metrics' }],
        },
        {
          action: 'Deny',
          from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { x: 'y' } } } }],
        },
      ],
      egress: [
        {
          action: 'Pass',
          to: [{ networks: ['10.0.0.0/8', 'fd00::/8'] }],
          protocols: [{ udp: { destinationPort: { range: { start: 5000, end: 6000 } } } }],
        },
        { action: 'Deny', to: [{ nodes: {} }] },
      ],
    },
  },
  IPPool: {
    apiVersion: 'tern.network/v1',
    kind: 'IPPool',
    metadata: { name: 'default-ipv4' },
    spec: { cidr: '10.244.0.0/16', blockSize: 26, nodeSelector: { matchLabels: { rack: 'r1' } } },
  },
  IPAMBlock: {
    apiVersion: 'tern.network/v1',
    kind: 'IPAMBlock',
    metadata: { name: '10-244-0-0-26' },
    spec: {
      cidr: '10.244.0.0/26',
      pool: 'default-ipv4',
      affinity: 'node-1',
      allocations: { '1': { handle: 'h' } },
    },
  },
  IPReservation: {
    apiVersion: 'tern.network/v1',
    kind: 'IPReservation',
    metadata: { namespace: 'db', name: 'db-addresses' },
    spec: {
      pods: [{ name: 'gateway', addresses: ['10.250.0.5'] }],
      statefulSets: [{ name: 'pg', addresses: ['10.250.0.10', ['10.250.0.11', 'fd00:250::11']] }],
    },
  },
  BGPPeer: {
    apiVersion: 'tern.network/v1',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: '10.0.0.254', asNumber: 65000, holdTime: 90 },
  },
  BGPConfiguration: {
    apiVersion: 'tern.network/v1',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { asNumber: 64512, nodeToNodeMesh: false, routeReflectorClusterID: '1.2.3.4' },
  },
  Lease: {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { namespace: 'tern-system', name: 'tern-ipam-gc' },
    spec: { holderIdentity: 'node-1', leaseDurationSeconds: 15, renewTime: '2026-11-22T03:04:05.123456Z' },
  },
};

/** A deep copy of the valid object of `kind` with `path` set to `value` (undefined deletes). */
function mutate(kind: Kind, path: Array<string | number>, value: unknown): unknown {
  const obj = structuredClone(valid[kind]) as Record<string | number, unknown>;
  let at: Record<string | number, unknown> = obj;
  for (const p of path.slice(0, -1)) at = at[p] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete at[last];
  else at[last] = value;
  return obj;
}

function fieldOf(input: unknown, kind?: Kind): string {
  try {
    parseResource(input, kind);
  } catch (e) {
    if (e instanceof ValidationError) return e.field;
    throw e;
  }
  throw new Error('accepted');
}

describe('parseResource accepts a valid object of every kind', () => {
  it.each(Object.keys(KINDS) as Kind[])('%s', (kind) => {
    const parsed = parseResource(valid[kind], kind);
    expect(parsed.kind).toBe(kind);
    expect(parseResource(valid[kind]).kind).toBe(kind); // kind taken from the object
  });

  it('keeps fields it does not model (Kubernetes kinds pass through unknown fields)', () => {
    const pod = mutate('Pod', ['spec', 'restartPolicy'], 'Always');
    expect((parseResource(pod, 'Pod').spec as { restartPolicy?: string }).restartPolicy).toBe('Always');
  });
});

describe('parseResource names the bad field', () => {
  const cases: Array<[string, Kind, Array<string | number>, unknown, string]> = [
    // common
    ['unknown apiVersion', 'Pod', ['apiVersion'], 'v2', 'apiVersion'],
    ['name with capitals', 'Namespace', ['metadata', 'name'], 'Tenant', 'metadata.name'],
    ['empty name', 'IPPool', ['metadata', 'name'], '', 'metadata.name'],
    ['missing metadata', 'Node', ['metadata'], undefined, 'metadata'],
    ['label value not a string', 'Pod', ['metadata', 'labels'], { app: 1 }, 'metadata.labels.app'],
    // scope
    ['namespaced kind without namespace', 'Pod', ['metadata', 'namespace'], undefined, 'metadata.namespace'],
    ['namespace with a slash', 'Pod', ['metadata', 'namespace'], 'a/b', 'metadata.namespace'],
    ['namespace with a dot', 'NetworkPolicy', ['metadata', 'namespace'], 'a.b', 'metadata.namespace'],
    ['empty namespace', 'Pod', ['metadata', 'namespace'], '', 'metadata.namespace'],
    ['cluster-scoped kind with namespace', 'Namespace', ['metadata', 'namespace'], 'x', 'metadata.namespace'],
    [
      'cluster-scoped tern kind with namespace',
      'BGPPeer',
      ['metadata', 'namespace'],
      'x',
      'metadata.namespace',
    ],
    // Pod / Node
    [
      'container port out of range',
      'Pod',
      ['spec', 'containers', 0, 'ports', 0, 'containerPort'],
      70000,
      'spec.containers[0].ports[0].containerPort',
    ],
    [
      'node address without address',
      'Node',
      ['status', 'addresses', 0],
      { type: 'InternalIP' },
      'status.addresses[0].address',
    ],
    // ClusterNetworkPolicy: what the CRD refuses
    ['priority above 1000', 'ClusterNetworkPolicy', ['spec', 'priority'], 1001, 'spec.priority'],
    ['negative priority', 'ClusterNetworkPolicy', ['spec', 'priority'], -1, 'spec.priority'],
    ['unknown tier', 'ClusterNetworkPolicy', ['spec', 'tier'], 'Developer', 'spec.tier'],
    [
      'unknown action',
      'ClusterNetworkPolicy',
      ['spec', 'ingress', 1, 'action'],
      'Allow',
      'spec.ingress[1].action',
    ],
    [
      'host bits in a network',
      'ClusterNetworkPolicy',
      ['spec', 'egress', 0, 'to', 0, 'networks', 1],
      '10.1.2.3/8',
      'spec.egress[0].to[0].networks[1]',
    ],
    [
      'a network that is no CIDR',
      'ClusterNetworkPolicy',
      ['spec', 'egress', 0, 'to', 0, 'networks', 0],
      '10.0.0.300/24',
      'spec.egress[0].to[0].networks[0]',
    ],
    [
      'port range with start = end',
      'ClusterNetworkPolicy',
      ['spec', 'egress', 0, 'protocols', 0, 'udp', 'destinationPort', 'range', 'end'],
      5000,
      'spec.egress[0].protocols[0].udp.destinationPort.range.end',
    ],
    [
      'port 0',
      'ClusterNetworkPolicy',
      ['spec', 'ingress', 0, 'protocols', 0, 'tcp', 'destinationPort', 'number'],
      0,
      'spec.ingress[0].protocols[0].tcp.destinationPort.number',
    ],
    [
      'subject with namespaces and pods',
      'ClusterNetworkPolicy',
      ['spec', 'subject', 'pods'],
      { podSelector: {} },
      'spec.subject.pods',
    ],
    ['empty subject', 'ClusterNetworkPolicy', ['spec', 'subject'], {}, 'spec.subject'],
    [
      'peer with no type',
      'ClusterNetworkPolicy',
      ['spec', 'ingress', 0, 'from', 0],
      {},
      'spec.ingress[0].from[0]',
    ],
    [
      'peer with an unknown type',
      'ClusterNetworkPolicy',
      ['spec', 'ingress', 0, 'from', 0],
      { services: {} },
      'spec.ingress[0].from[0]',
    ],
    ['rule with no peers', 'ClusterNetworkPolicy', ['spec', 'egress', 1, 'to'], [], 'spec.egress[1].to'],
    [
      'named port with a networks peer',
      'ClusterNetworkPolicy',
      ['spec', 'egress', 0, 'protocols', 0],
      { destinationNamedPort: 'dns' },
      'spec.egress[0].protocols',
    ],
    [
      'selector In without values in a subject',
      'ClusterNetworkPolicy',
      ['spec', 'subject', 'namespaces'],
      { matchExpressions: [{ key: 'a', operator: 'In' }] },
      'spec.subject.namespaces.matchExpressions[0].values',
    ],
    [
      'cluster-scoped ClusterNetworkPolicy with namespace',
      'ClusterNetworkPolicy',
      ['metadata', 'namespace'],
      'x',
      'metadata.namespace',
    ],
    // NetworkPolicy
    ['policy without podSelector', 'NetworkPolicy', ['spec', 'podSelector'], undefined, 'spec.podSelector'],
    ['unknown policyType', 'NetworkPolicy', ['spec', 'policyTypes', 1], 'Both', 'spec.policyTypes[1]'],
    [
      'unknown selector operator',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'from', 0, 'podSelector', 'matchExpressions', 0, 'operator'],
      'Like',
      'spec.ingress[0].from[0].podSelector.matchExpressions[0].operator',
    ],
    [
      'In without values',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'from', 0, 'podSelector', 'matchExpressions', 0, 'values'],
      [],
      'spec.ingress[0].from[0].podSelector.matchExpressions[0].values',
    ],
    [
      'Exists with values in an egress namespaceSelector',
      'NetworkPolicy',
      ['spec', 'egress', 0, 'to', 0, 'namespaceSelector'],
      { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      'spec.egress[0].to[0].namespaceSelector.matchExpressions[0].values',
    ],
    [
      'unknown protocol',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'ports', 0, 'protocol'],
      'ICMP',
      'spec.ingress[0].ports[0].protocol',
    ],
    [
      'port 0',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'ports', 1, 'port'],
      0,
      'spec.ingress[0].ports[1].port',
    ],
    [
      'named port with capitals',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'ports', 0, 'port'],
      'HTTP',
      'spec.ingress[0].ports[0].port',
    ],
    [
      'endPort below port',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'ports', 1, 'endPort'],
      7999,
      'spec.ingress[0].ports[1].endPort',
    ],
    [
      'endPort with a named port',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'ports', 0, 'endPort'],
      90,
      'spec.ingress[0].ports[0].endPort',
    ],
    [
      'ipBlock with a malformed cidr',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'from', 2, 'ipBlock', 'cidr'],
      '10.0.0/8',
      'spec.ingress[0].from[2].ipBlock.cidr',
    ],
    [
      'ipBlock except outside cidr',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'from', 2, 'ipBlock', 'except', 0],
      '11.0.0.0/16',
      'spec.ingress[0].from[2].ipBlock.except[0]',
    ],
    [
      'ipBlock except equal to cidr',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'from', 2, 'ipBlock', 'except', 0],
      '10.0.0.0/8',
      'spec.ingress[0].from[2].ipBlock.except[0]',
    ],
    [
      'ipBlock combined with a selector',
      'NetworkPolicy',
      ['spec', 'ingress', 0, 'from', 2, 'podSelector'],
      {},
      'spec.ingress[0].from[2].ipBlock',
    ],
    ['empty peer', 'NetworkPolicy', ['spec', 'ingress', 0, 'from', 1], {}, 'spec.ingress[0].from[1]'],
    // IPPool
    ['pool cidr with host bits', 'IPPool', ['spec', 'cidr'], '10.244.0.1/16', 'spec.cidr'],
    ['pool cidr malformed', 'IPPool', ['spec', 'cidr'], 'ten/8', 'spec.cidr'],
    ['blockSize shorter than the pool', 'IPPool', ['spec', 'blockSize'], 8, 'spec.blockSize'],
    ['blockSize longer than the family', 'IPPool', ['spec', 'blockSize'], 33, 'spec.blockSize'],
    [
      'pool nodeSelector In without values',
      'IPPool',
      ['spec', 'nodeSelector'],
      { matchExpressions: [{ key: 'a', operator: 'NotIn' }] },
      'spec.nodeSelector.matchExpressions[0].values',
    ],
    // IPAMBlock
    [
      'block allocation key not an offset',
      'IPAMBlock',
      ['spec', 'allocations'],
      { x: { handle: 'h' } },
      'spec.allocations.x',
    ],
    [
      'block allocation without handle',
      'IPAMBlock',
      ['spec', 'allocations', '1', 'handle'],
      undefined,
      'spec.allocations.1.handle',
    ],
    ['block without pool', 'IPAMBlock', ['spec', 'pool'], undefined, 'spec.pool'],
    // BGPPeer / BGPConfiguration
    ['peer IP malformed', 'BGPPeer', ['spec', 'peerIP'], '10.0.0.300', 'spec.peerIP'],
    ['AS number 0', 'BGPPeer', ['spec', 'asNumber'], 0, 'spec.asNumber'],
    ['AS number above 32 bits', 'BGPPeer', ['spec', 'asNumber'], 2 ** 32, 'spec.asNumber'],
    ['hold time 1', 'BGPPeer', ['spec', 'holdTime'], 1, 'spec.holdTime'],
    ['password too long for TCP MD5', 'BGPPeer', ['spec', 'password'], 'x'.repeat(81), 'spec.password'],
    [
      'cluster ID not an address',
      'BGPConfiguration',
      ['spec', 'routeReflectorClusterID'],
      'abc',
      'spec.routeReflectorClusterID',
    ],
    ['listen port 0', 'BGPConfiguration', ['spec', 'listenPort'], 0, 'spec.listenPort'],
    [
      'route reflector selector with a bad requirement',
      'BGPConfiguration',
      ['spec', 'routeReflectorSelector'],
      { matchExpressions: [{ key: 'rr', operator: 'DoesNotExist', values: ['x'] }] },
      'spec.routeReflectorSelector.matchExpressions[0].values',
    ],
  ];
  it.each(cases)('%s (%s) → %s / %s', (_name, kind, path, value, field) => {
    expect(fieldOf(mutate(kind, path, value), kind)).toBe(field);
  });

  it.each([
    ['null', null],
    ['a string', 'Pod'],
    ['an unknown kind', { kind: 'Service' }],
    ['no kind', { apiVersion: 'v1' }],
  ])('rejects %s as kind', (_name, input) => {
    expect(fieldOf(input)).toBe('kind');
  });

  it('rejects an object whose kind is not the one asked for', () => {
    expect(fieldOf(valid.Node, 'Pod')).toBe('kind');
    expect(fieldOf(valid.NetworkPolicy, 'Pod')).toBe('apiVersion');
    expect(fieldOf(valid.IPPool, 'BGPPeer')).toBe('kind');
  });
});
