import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { ClusterNetworkPolicy, NetworkPolicy } from '../../../model/index.js';
import {
  compile,
  endpointChain,
  explain,
  formatExplanation,
  networkPolicyId,
  policyChain,
  PolicyState,
  type DesiredState,
  type PolicyPod,
  type PolicyRules,
} from '../../../policy/index.js';
import { setRef } from '../../../policy/network-policy.js';
import { NODE, namespaces, np, pod, pods } from './fixtures.js';

const sameState = (a: DesiredState, b: DesiredState) => {
  const plain = (d: DesiredState) => ({
    sets: [...d.sets.entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
    4: [...d.chains[4].entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
    6: [...d.chains[6].entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
  });
  expect(plain(a)).toEqual(plain(b));
};

const labelValues = ['a', 'b', 'c'];
const policyPool: NetworkPolicy[] = [
  np('x', 'from-b', {
    podSelector: { matchLabels: { pod: 'a' } },
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
  }),
  np('x', 'ns-blue', {
    podSelector: {},
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }] }],
  }),
  np('y', 'named', {
    podSelector: { matchLabels: { pod: 'c' } },
    ingress: [{ ports: [{ port: 'serve-80-tcp' }] }],
  }),
  np('x', 'egress', {
    podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'c'] }] },
    policyTypes: ['Egress'],
    egress: [
      {
        to: [
          { namespaceSelector: {}, podSelector: { matchLabels: { pod: 'c' } } },
          { ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.2/32'] } },
        ],
      },
    ],
  }),
];

const cnp = (name: string, spec: ClusterNetworkPolicy['spec']): ClusterNetworkPolicy => ({
  apiVersion: 'policy.networking.k8s.io/v1beta1',
  kind: 'ClusterNetworkPolicy',
  metadata: { name },
  spec,
});
const clusterPool: ClusterNetworkPolicy[] = [
  cnp('admin-pass-blue', {
    tier: 'Admin',
    priority: 1,
    subject: {
      pods: {
        namespaceSelector: { matchLabels: { team: 'red' } },
        podSelector: { matchLabels: { pod: 'a' } },
      },
    },
    ingress: [{ action: 'Pass', from: [{ namespaces: { matchLabels: { team: 'blue' } } }] }],
    egress: [
      {
        action: 'Deny',
        to: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { pod: 'c' } } } }],
      },
    ],
  }),
  cnp('baseline-metrics', {
    tier: 'Baseline',
    priority: 5,
    subject: { namespaces: {} },
    ingress: [
      { action: 'Deny', from: [{ namespaces: {} }], protocols: [{ destinationNamedPort: 'serve-80-tcp' }] },
    ],
    egress: [{ action: 'Accept', to: [{ networks: ['10.0.1.0/24', 'fd00::/64'] }] }],
  }),
];

type Op =
  | { kind: 'label'; pod: number; value: string }
  | { kind: 'remove-pod'; pod: number }
  | { kind: 'ns'; ns: number; team: string }
  | { kind: 'policy'; index: number; on: boolean }
  | { kind: 'cluster-policy'; index: number; on: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('label' as const), pod: fc.nat(5), value: fc.constantFrom(...labelValues) }),
  fc.record({ kind: fc.constant('remove-pod' as const), pod: fc.nat(5) }),
  fc.record({ kind: fc.constant('ns' as const), ns: fc.nat(1), team: fc.constantFrom('red', 'blue') }),
  fc.record({ kind: fc.constant('policy' as const), index: fc.nat(policyPool.length - 1), on: fc.boolean() }),
  fc.record({
    kind: fc.constant('cluster-policy' as const),
    index: fc.nat(clusterPool.length - 1),
    on: fc.boolean(),
  }),
);

describe('PolicyState incremental updates', () => {
  const universe: PolicyPod[] = [...pods, pod('x', 'c', 3, true), pod('y', 'c', 3, false)];

  test('any sequence of pod, namespace, NetworkPolicy and ClusterNetworkPolicy changes renders what a full compile of the end state renders', () => {
    fc.assert(
      fc.property(fc.array(fc.array(opArb, { maxLength: 4 }), { minLength: 1, maxLength: 8 }), (batches) => {
        const state = new PolicyState({ nodeName: NODE });
        const current = new Map(universe.map((p) => [`${p.namespace}/${p.name}`, p]));
        const nsLabels = new Map(namespaces.map((n) => [n.name, n.labels]));
        const active = new Set<number>();
        const activeCluster = new Set<number>();
        for (const n of namespaces) state.upsertNamespace(n);
        for (const p of universe) state.upsertPod(p);
        for (const batch of batches) {
          for (const op of batch) {
            const p = universe[op.kind === 'label' || op.kind === 'remove-pod' ? op.pod : 0]!;
            const key = `${p.namespace}/${p.name}`;
            if (op.kind === 'label') {
              const next = { ...p, labels: { pod: op.value } };
              current.set(key, next);
              state.upsertPod(next);
            } else if (op.kind === 'remove-pod') {
              current.delete(key);
              state.removePod(p.namespace, p.name);
            } else if (op.kind === 'ns') {
              const name = namespaces[op.ns]!.name;
              nsLabels.set(name, { team: op.team });
              state.upsertNamespace({ name, labels: { team: op.team } });
            } else if (op.kind === 'cluster-policy') {
              if (op.on) {
                activeCluster.add(op.index);
                state.upsertClusterNetworkPolicy(clusterPool[op.index]!);
              } else {
                activeCluster.delete(op.index);
                state.removeClusterNetworkPolicy(clusterPool[op.index]!.metadata.name);
              }
            } else if (op.on) {
              active.add(op.index);
              state.upsertNetworkPolicy(policyPool[op.index]!);
            } else {
              active.delete(op.index);
              const m = policyPool[op.index]!.metadata;
              state.removeNetworkPolicy(m.namespace!, m.name);
            }
          }
          const full = compile({
            nodeName: NODE,
            pods: [...current.values()],
            namespaces: [...nsLabels].map(([name, labels]) => ({ name, labels })),
            policies: [...active].sort().map((i) => policyPool[i]!),
            clusterPolicies: [...activeCluster].sort().map((i) => clusterPool[i]!),
          });
          sameState(state.render(), full.desired);
        }
      }),
      { numRuns: 150 },
    );
  });

  test('a label change of a remote pod changes set members and no chain', () => {
    const state = new PolicyState({ nodeName: NODE });
    for (const n of namespaces) state.upsertNamespace(n);
    for (const p of pods) state.upsertPod(p);
    state.upsertNetworkPolicy(policyPool[0]!);
    const before = state.render();
    state.upsertPod({ ...pods[3]!, namespace: 'y', labels: { pod: 'b', extra: '1' } });
    state.upsertPod({ ...pods[1]!, labels: { pod: 'z' } }); // x/b: local, but not selected by the policy
    const after = state.render();
    for (const f of [4, 6] as const) {
      for (const [name, lines] of after.chains[f]) expect(lines, name).toBe(before.chains[f].get(name));
    }
    const changed = [...after.sets].filter(([n, s]) => before.sets.get(n) !== s);
    expect(changed.map(([, s]) => s.members)).toEqual([[], []]);
  });
});

describe('tiers', () => {
  // An Admin-tier policy as a future ClusterNetworkPolicy would produce it.
  const admin: PolicyRules = {
    id: 'clusternetworkpolicy:admin/guard',
    tier: 'admin',
    priority: 10,
    appliesTo: { namespace: null, namespaceSelector: {}, podSelector: { matchLabels: { pod: 'a' } } },
    ingress: [
      {
        action: 'deny',
        peers: [
          setRef({
            kind: 'pods',
            namespace: null,
            namespaceSelector: { matchLabels: { team: 'blue' } },
            podSelector: { matchLabels: { pod: 'b' } },
          }),
        ],
        ports: null,
        origin: 'ingress[0]',
      },
      {
        action: 'pass',
        peers: [
          setRef({
            kind: 'pods',
            namespace: null,
            namespaceSelector: { matchLabels: { team: 'blue' } },
            podSelector: {},
          }),
        ],
        ports: null,
        origin: 'ingress[1]',
      },
      {
        action: 'allow',
        peers: null,
        ports: [{ kind: 'range', protocol: 'TCP', from: 22, to: 22 }],
        origin: 'ingress[2]',
      },
    ],
    egress: null,
    warnings: [],
  };

  test('an Admin tier slots in before NetworkPolicy with deny, pass and allow', () => {
    const state = new PolicyState({ nodeName: NODE });
    for (const n of namespaces) state.upsertNamespace(n);
    for (const p of pods) state.upsertPod(p);
    state.upsertPolicyRules(admin);
    state.upsertNetworkPolicy(
      np('x', 'only-a', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }] }],
      }),
    );
    const d = state.render();
    const ep = endpointChain('x/a', 'ingress');
    const adminChain = policyChain(admin.id, 'ingress');
    const npChain = policyChain(networkPolicyId('x', 'only-a'), 'ingress');
    expect(d.chains[4].get(ep)).toEqual([
      `-A ${ep} -j MARK --set-xmark 0x0/0x30000`,
      `-A ${ep} -m mark --mark 0x0/0x20000 -j ${adminChain}`,
      `-A ${ep} -m mark --mark 0x10000/0x10000 -j RETURN`,
      `-A ${ep} -j MARK --set-xmark 0x0/0x20000`,
      `-A ${ep} -j ${npChain}`,
      `-A ${ep} -m mark --mark 0x10000/0x10000 -j RETURN`,
      `-A ${ep} -j DROP`,
    ]);
    const rules = d.chains[4].get(adminChain)!;
    expect(rules[0]).toMatch(/-m set --match-set tern-4p-\w+ src -j DROP$/);
    expect(rules[1]).toMatch(/-m set --match-set tern-4p-\w+ src -g tern-pass$/);
    expect(rules[2]).toBe(`-A ${adminChain} -p tcp -m tcp --dport 22 -g tern-allow`);

    // explain walks the same tiers: y/b is denied by the admin tier, y/a passes to NetworkPolicy
    // (which isolates x/a), x/b is allowed on 22 by the admin tier despite NetworkPolicy.
    const from = (ns: string, name: string, port: number) =>
      explain(
        state,
        { namespace: 'x', name: 'a' },
        { from: { pod: { namespace: ns, name } }, port },
      ).decisions.at(-1)!;
    expect(from('y', 'b', 22)).toMatchObject({
      verdict: 'deny',
      policy: admin.id,
      rule: 'ingress[0]',
      tier: 'admin',
    });
    expect(from('y', 'a', 22)).toMatchObject({ verdict: 'deny', tier: 'networkpolicy' });
    expect(from('x', 'b', 22)).toMatchObject({ verdict: 'allow', policy: admin.id, rule: 'ingress[2]' });
    expect(from('x', 'b', 80)).toMatchObject({ verdict: 'deny', tier: 'networkpolicy' });
  });
});

describe('explain', () => {
  const state = compile({
    nodeName: NODE,
    pods,
    namespaces,
    policies: [
      np('x', 'web', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          { from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }], ports: [{ port: 'web' }] },
        ],
      }),
      np('y', 'out', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/24', except: ['10.0.0.2/32'] } }] }],
      }),
    ],
  }).state;

  test('names the policies that select a pod', () => {
    expect(explain(state, { namespace: 'x', name: 'a' }).selectedBy).toEqual({
      ingress: [networkPolicyId('x', 'web')],
      egress: [],
    });
    expect(explain(state, { namespace: 'x', name: 'b' }).selectedBy).toEqual({ ingress: [], egress: [] });
  });

  test('gives the verdict of both ends and the rule that decided, resolving named ports on the destination', () => {
    const r = explain(
      state,
      { namespace: 'x', name: 'a' },
      { from: { pod: { namespace: 'y', name: 'a' } }, port: 'web' },
    );
    expect(r.verdict).toBe('allow');
    expect(r.decisions).toMatchObject([
      { direction: 'egress', pod: 'y/a', verdict: 'allow', rule: 'egress[0]' },
      {
        direction: 'ingress',
        pod: 'x/a',
        verdict: 'allow',
        policy: networkPolicyId('x', 'web'),
        rule: 'ingress[0]',
      },
    ]);
    expect(formatExplanation(r)).toContain('verdict: ALLOW');
    const wrongPort = explain(
      state,
      { namespace: 'x', name: 'a' },
      { from: { pod: { namespace: 'y', name: 'a' } }, port: 80 },
    );
    expect(wrongPort.verdict).toBe('deny');
    expect(wrongPort.decisions[1]!.text).toContain('isolated for ingress');
  });

  test('an egress ipBlock except denies the excepted address; unselected pods are not isolated', () => {
    const toB = explain(
      state,
      { namespace: 'y', name: 'a' },
      { to: { pod: { namespace: 'x', name: 'b' } }, port: 80 },
    );
    expect(toB.verdict).toBe('deny');
    expect(toB.decisions[0]).toMatchObject({ direction: 'egress', verdict: 'deny' });
    expect(toB.decisions[1]).toMatchObject({ direction: 'ingress', verdict: 'allow' });
    expect(toB.decisions[1]!.text).toContain('not isolated');
    const toIp = explain(state, { namespace: 'y', name: 'a' }, { to: { ip: '10.0.0.77' }, port: 443 });
    expect(toIp.verdict).toBe('allow');
    expect(() => explain(state, { namespace: 'x', name: 'zz' })).toThrow(/not known/);
  });
});
