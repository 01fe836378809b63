// The ClusterNetworkPolicy test set: objects that tern's model (model/cluster-network-policy.ts)
// and the network-policy-api CRD (deploy/kubernetes/network-policy-api/) must both accept (GOOD)
// or both refuse (BAD). The upstream project's own CRD cases (pkg/crdtest/testdata, copied from
// the module) come first, then the limits of the API types. The unit test runs them through zod
// (test/unit/model/cluster-network-policy.test.ts); the real kube-apiserver test through the
// server (test/integration/deploy/crds-real-server.test.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const UPSTREAM = fileURLToPath(new URL('../fixtures/network-policy-api/crdtest/', import.meta.url));
const upstream = (group: 'valid' | 'invalid'): Array<[string, unknown]> =>
  readdirSync(UPSTREAM + group)
    .sort()
    .map((f) => [
      `upstream ${group}/${f}`,
      parse(readFileSync(`${UPSTREAM}${group}/${f}`, 'utf8')) as unknown,
    ]);

export const cnp = (spec: Record<string, unknown>, name = 'case'): unknown => ({
  apiVersion: 'policy.networking.k8s.io/v1beta1',
  kind: 'ClusterNetworkPolicy',
  metadata: { name },
  spec: { tier: 'Admin', priority: 0, subject: { namespaces: {} }, ...spec },
});
const deny = { action: 'Deny', from: [{ namespaces: {} }] };
const egress = (to: unknown[], extra: Record<string, unknown> = {}) => ({
  egress: [{ action: 'Deny', to, ...extra }],
});
const ingressProtocol = (p: unknown) => ({ ingress: [{ ...deny, protocols: [p] }] });

export const CNP_GOOD: Array<[string, unknown]> = [
  ...upstream('valid'),
  ['priority 0', cnp({ priority: 0 })],
  ['priority 1000, Baseline', cnp({ priority: 1000, tier: 'Baseline' })],
  ['25 ingress rules', cnp({ ingress: Array(25).fill(deny) })],
  ['25 peers', cnp({ ingress: [{ ...deny, from: Array(25).fill({ namespaces: {} }) }] })],
  [
    'networks of both families',
    cnp(egress([{ networks: ['0.0.0.0/0', '::/0', 'fd00:1::/64', '10.1.0.0/16'] }])),
  ],
  ['25 networks', cnp(egress([{ networks: Array.from({ length: 25 }, (_, i) => `10.${i}.0.0/16`) }]))],
  ['nodes peer', cnp(egress([{ nodes: { matchLabels: { role: 'db' } } }]))],
  [
    'domainNames peer',
    cnp({ egress: [{ action: 'Accept', to: [{ domainNames: ['*.example.org', 'example.com'] }] }] }),
  ],
  [
    'sctp port range',
    cnp(ingressProtocol({ sctp: { destinationPort: { range: { start: 1, end: 65535 } } } })),
  ],
  [
    'named port to pods',
    cnp(egress([{ pods: { podSelector: {} } }], { protocols: [{ destinationNamedPort: 'dns' }] })),
  ],
  [
    'subject pods without namespaceSelector',
    cnp({ subject: { pods: { podSelector: { matchLabels: { a: 'b' } } } } }),
  ],
  ['rule name of 100 characters', cnp({ ingress: [{ ...deny, name: 'x'.repeat(100) }] })],
  ['v1alpha2', { ...(cnp({}) as object), apiVersion: 'policy.networking.k8s.io/v1alpha2' }],
];

export const CNP_BAD: Array<[string, unknown]> = [
  ...upstream('invalid'),
  ['priority 1001', cnp({ priority: 1001 })],
  ['priority -1', cnp({ priority: -1 })],
  ['unknown tier', cnp({ tier: 'Developer' })],
  ['26 ingress rules', cnp({ ingress: Array(26).fill(deny) })],
  ['26 egress rules', cnp({ egress: Array(26).fill({ action: 'Accept', to: [{ namespaces: {} }] }) })],
  ['26 peers', cnp({ ingress: [{ ...deny, from: Array(26).fill({ namespaces: {} }) }] })],
  ['unknown action', cnp({ ingress: [{ ...deny, action: 'Allow' }] })],
  ['no peers', cnp({ ingress: [{ ...deny, from: [] }] })],
  ['empty peer', cnp({ ingress: [{ ...deny, from: [{}] }] })],
  [
    'peer with two types',
    cnp({ ingress: [{ ...deny, from: [{ namespaces: {}, pods: { podSelector: {} } }] }] }),
  ],
  ['networks as an ingress peer', cnp({ ingress: [{ ...deny, from: [{ networks: ['10.0.0.0/8'] }] }] })],
  ['network with host bits', cnp(egress([{ networks: ['10.1.2.3/8'] }]))],
  ['network that is an address', cnp(egress([{ networks: ['10.0.0.1'] }]))],
  ['IPv6 network with host bits', cnp(egress([{ networks: ['fd00::1/64'] }]))],
  ['duplicate network', cnp(egress([{ networks: ['10.0.0.0/8', '10.0.0.0/8'] }]))],
  ['no networks', cnp(egress([{ networks: [] }]))],
  ['26 networks', cnp(egress([{ networks: Array.from({ length: 26 }, (_, i) => `10.${i}.0.0/16`) }]))],
  ['bad domain name', cnp({ egress: [{ action: 'Accept', to: [{ domainNames: ['exa mple.org'] }] }] })],
  ['port 0', cnp(ingressProtocol({ tcp: { destinationPort: { number: 0 } } }))],
  ['port 65536', cnp(ingressProtocol({ tcp: { destinationPort: { number: 65536 } } }))],
  [
    'port number and range',
    cnp(ingressProtocol({ tcp: { destinationPort: { number: 80, range: { start: 1, end: 2 } } } })),
  ],
  ['range start = end', cnp(ingressProtocol({ udp: { destinationPort: { range: { start: 5, end: 5 } } } }))],
  ['protocol with two kinds', cnp(ingressProtocol({ tcp: {}, udp: {} }))],
  ['empty protocol', cnp(ingressProtocol({}))],
  ['empty tcp', cnp(ingressProtocol({ tcp: {} }))],
  [
    'named port with networks',
    cnp(egress([{ networks: ['10.0.0.0/8'] }], { protocols: [{ destinationNamedPort: 'dns' }] })),
  ],
  ['subject with both', cnp({ subject: { namespaces: {}, pods: { podSelector: {} } } })],
  ['empty subject', cnp({ subject: {} })],
  ['subject pods without podSelector', cnp({ subject: { pods: { namespaceSelector: {} } } })],
  ['rule name of 101 characters', cnp({ ingress: [{ ...deny, name: 'x'.repeat(101) }] })],
  ['no tier', cnp({ tier: undefined })],
];
