// The CRD test set: objects that tern's model (zod) and its CRDs (deploy/kubernetes/crds.yaml,
// structural schema + CEL) must both accept (GOOD) or both refuse (BAD), and the deliberate gaps
// where the API server is laxer and the agents' parse at the edge rejects. The unit test runs them
// through zod and a subset validator of the schemas (test/unit/deploy/crds.test.ts); the real
// kube-apiserver test runs them through the server itself (test/integration/deploy/crds-real-server.test.ts).
// Namespaced objects are in namespace `ns`.
const meta = { name: 'x' };
export const obj = (kind: string, spec: unknown) => ({
  apiVersion: 'tern.network/v1',
  kind,
  metadata: meta,
  spec,
});
const sel = {
  matchLabels: { rack: 'r1' },
  matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }],
};
const alloc = {
  handle: 'ns/p/c1/eth0',
  namespace: 'ns',
  pod: 'p',
  containerID: 'c1',
  interface: 'eth0',
  node: 'n1',
};

export const GOOD: Array<[string, unknown]> = [
  ['IPPool v4', obj('IPPool', { cidr: '10.244.0.0/16' })],
  [
    'IPPool v4 all fields',
    obj('IPPool', {
      cidr: '10.244.0.0/16',
      blockSize: 24,
      nodeSelector: sel,
      disabled: false,
      stickyHoldSeconds: 600,
    }),
  ],
  ['IPPool v6 /122', obj('IPPool', { cidr: 'fd00:244::/56', blockSize: 122 })],
  ['IPPool smaller than a block', obj('IPPool', { cidr: '10.0.0.0/28', blockSize: 28 })],
  ['IPPool blockSize 32', obj('IPPool', { cidr: '10.0.0.0/24', blockSize: 32 })],
  [
    'IPPool Exists selector',
    obj('IPPool', {
      cidr: '10.0.0.0/24',
      nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }] },
    }),
  ],
  ['IPAMBlock empty', obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'default', allocations: {} })],
  [
    'IPAMBlock with allocations',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'default',
      affinity: 'n1',
      allocations: { '0': alloc, '63': { handle: 'h' } },
    }),
  ],
  [
    'IPAMBlock sticky hold',
    obj('IPAMBlock', {
      cidr: 'fd00::/122',
      pool: 'p6',
      allocations: {
        '5': {
          handle: 'id:ns/db-0',
          binding: 'identity',
          identity: 'ns/db-0',
          source: 'sticky',
          heldUntil: '2026-01-01T00:00:00.000Z',
        },
      },
    }),
  ],
  ['BGPPeer minimal', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 65001 })],
  [
    'BGPPeer IPv6 all fields',
    obj('BGPPeer', {
      peerIP: 'fd00::1',
      asNumber: 4294967295,
      nodeSelector: sel,
      password: 'x'.repeat(80),
      holdTime: 90,
      keepaliveTime: 30,
      passive: true,
    }),
  ],
  [
    'BGPPeer password of 40 two-byte characters (80 bytes, the TCP MD5 limit)',
    obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, password: 'é'.repeat(40) }),
  ],
  ['BGPPeer holdTime 0', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 0 })],
  ['BGPPeer holdTime 3', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 3, node: 'n1' })],
  ['BGPConfiguration empty', obj('BGPConfiguration', {})],
  [
    'BGPConfiguration all',
    obj('BGPConfiguration', {
      asNumber: 64512,
      nodeToNodeMesh: false,
      routeReflectorSelector: sel,
      routeReflectorClusterID: '10.0.0.1',
      listenPort: 179,
      holdTime: 90,
      gracefulRestartTime: 120,
    }),
  ],
  [
    'IPReservation',
    {
      ...obj('IPReservation', {
        pods: [{ name: 'db', addresses: ['10.0.0.5', 'fd00::5'] }],
        statefulSets: [{ name: 'web', addresses: [['10.0.0.6']] }],
      }),
      metadata: { name: 'r', namespace: 'ns' },
    },
  ],
];

export const BAD: Array<[string, unknown]> = [
  ['IPPool without cidr', obj('IPPool', {})],
  ['IPPool cidr with host bits', obj('IPPool', { cidr: '10.244.0.1/16' })],
  ['IPPool cidr without prefix', obj('IPPool', { cidr: '10.244.0.0' })],
  ['IPPool cidr not an address', obj('IPPool', { cidr: 'pods/16' })],
  ['IPPool blockSize shorter than the pool', obj('IPPool', { cidr: '10.0.0.0/24', blockSize: 23 })],
  ['IPPool v4 block larger than 4096 addresses', obj('IPPool', { cidr: '10.0.0.0/8', blockSize: 19 })],
  ['IPPool v4 blockSize 33', obj('IPPool', { cidr: '10.0.0.0/8', blockSize: 33 })],
  ['IPPool v6 block larger than 4096 addresses', obj('IPPool', { cidr: 'fd00::/48', blockSize: 115 })],
  ['IPPool blockSize not an integer', obj('IPPool', { cidr: '10.0.0.0/8', blockSize: 26.5 })],
  ['IPPool blockSize a string', obj('IPPool', { cidr: '10.0.0.0/8', blockSize: '26' })],
  ['IPPool disabled a string', obj('IPPool', { cidr: '10.0.0.0/8', disabled: 'yes' })],
  ['IPPool stickyHoldSeconds negative', obj('IPPool', { cidr: '10.0.0.0/8', stickyHoldSeconds: -1 })],
  [
    'IPPool selector In without values',
    obj('IPPool', { cidr: '10.0.0.0/8', nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }),
  ],
  [
    'IPPool selector Exists with values',
    obj('IPPool', {
      cidr: '10.0.0.0/8',
      nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
    }),
  ],
  [
    'IPPool selector bad operator',
    obj('IPPool', {
      cidr: '10.0.0.0/8',
      nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
    }),
  ],
  [
    'IPPool selector empty key',
    obj('IPPool', {
      cidr: '10.0.0.0/8',
      nodeSelector: { matchExpressions: [{ key: '', operator: 'Exists' }] },
    }),
  ],
  [
    'IPPool selector label value not a string',
    obj('IPPool', { cidr: '10.0.0.0/8', nodeSelector: { matchLabels: { a: 1 } } }),
  ],
  ['IPAMBlock without allocations', obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'default' })],
  ['IPAMBlock empty pool', obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: '', allocations: {} })],
  [
    'IPAMBlock allocation without handle',
    obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'p', allocations: { '1': { pod: 'x' } } }),
  ],
  [
    'IPAMBlock allocation empty handle',
    obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'p', allocations: { '1': { handle: '' } } }),
  ],
  [
    'IPAMBlock binding not identity',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'p',
      allocations: { '1': { handle: 'h', binding: 'pod' } },
    }),
  ],
  [
    'IPAMBlock unknown source',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'p',
      allocations: { '1': { handle: 'h', source: 'magic' } },
    }),
  ],
  [
    'IPAMBlock heldUntil not a time',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'p',
      allocations: { '1': { handle: 'h', heldUntil: 'tomorrow' } },
    }),
  ],
  [
    'IPAMBlock heldUntil with an offset',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'p',
      allocations: { '1': { handle: 'h', heldUntil: '2026-01-01T00:00:00+01:00' } },
    }),
  ],
  ['BGPPeer AS 0', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 0 })],
  ['BGPPeer AS 2^32', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 4294967296 })],
  ['BGPPeer AS as a string', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: '65001' })],
  ['BGPPeer without AS', obj('BGPPeer', { peerIP: '192.0.2.1' })],
  ['BGPPeer without peerIP', obj('BGPPeer', { asNumber: 65001 })],
  ['BGPPeer peerIP a CIDR', obj('BGPPeer', { peerIP: '192.0.2.1/32', asNumber: 65001 })],
  ['BGPPeer peerIP a name', obj('BGPPeer', { peerIP: 'tor1.example', asNumber: 65001 })],
  ['BGPPeer holdTime 1', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 1 })],
  ['BGPPeer holdTime 2', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 2 })],
  ['BGPPeer holdTime 65536', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 65536 })],
  ['BGPPeer holdTime negative', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: -3 })],
  ['BGPPeer keepaliveTime 21846', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, keepaliveTime: 21846 })],
  [
    'BGPPeer password of 41 two-byte characters (82 bytes: over the TCP MD5 limit)',
    obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, password: 'é'.repeat(41) }),
  ],
  ['BGPPeer empty password', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, password: '' })],
  [
    'BGPPeer password of 81 characters',
    obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, password: 'x'.repeat(81) }),
  ],
  ['BGPConfiguration AS 0', obj('BGPConfiguration', { asNumber: 0 })],
  ['BGPConfiguration listenPort 0', obj('BGPConfiguration', { listenPort: 0 })],
  ['BGPConfiguration listenPort 65536', obj('BGPConfiguration', { listenPort: 65536 })],
  ['BGPConfiguration clusterID not an address', obj('BGPConfiguration', { routeReflectorClusterID: '1' })],
  ['BGPConfiguration gracefulRestartTime 4096', obj('BGPConfiguration', { gracefulRestartTime: 4096 })],
  ['BGPConfiguration holdTime fractional', obj('BGPConfiguration', { holdTime: 1.5 })],
  ['BGPConfiguration mesh a string', obj('BGPConfiguration', { nodeToNodeMesh: 'true' })],
  [
    'IPReservation pod without addresses',
    {
      ...obj('IPReservation', { pods: [{ name: 'db', addresses: [] }] }),
      metadata: { name: 'r', namespace: 'ns' },
    },
  ],
  [
    'IPReservation three addresses',
    {
      ...obj('IPReservation', { pods: [{ name: 'db', addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] }] }),
      metadata: { name: 'r', namespace: 'ns' },
    },
  ],
  [
    'IPReservation bad address',
    {
      ...obj('IPReservation', { pods: [{ name: 'db', addresses: ['10.0.0.300'] }] }),
      metadata: { name: 'r', namespace: 'ns' },
    },
  ],
];

export const statefulSetReservation = (addresses: unknown[]) => ({
  ...obj('IPReservation', { statefulSets: [{ name: 'web', addresses }] }),
  metadata: { name: 'r', namespace: 'ns' },
});

/** Accepted by the API server, refused by the model (each is explained where it is tested). */
export const LAX_AT_SERVER = {
  /** CEL over 4096 allocation keys would exceed the cost budget. */
  ipamBlockNonNumericKey: obj('IPAMBlock', {
    cidr: '10.244.1.0/26',
    pool: 'p',
    allocations: { first: { handle: 'h' } },
  }),
  /** statefulSets address entries are free-form at the API server (string or list). */
  statefulSetBadAddress: statefulSetReservation(['10.0.0.300']),
};

/** An unknown spec field: pruned by the API server, stripped by zod, refused by neither. */
export const PRUNED_FIELD = {
  object: obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 65001, color: 'blue' }),
  field: 'color',
};
