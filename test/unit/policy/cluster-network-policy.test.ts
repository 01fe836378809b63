// ClusterNetworkPolicy semantics, one case per point of the API (network-policy-api v0.3.1): every
// verdict is checked twice, by running the rendered chains (chain-sim.ts) and by explain, which
// must agree. Cluster: namespaces x, y, z (team red, blue, green), pods a and b in each, all on
// this node so every pod has endpoint chains.
import { describe, expect, test } from 'vitest';
import type { ClusterNetworkPolicy, NetworkPolicy } from '../../../model/index.js';
import {
  clusterNetworkPolicyId,
  compile,
  endpointChain,
  explain,
  type PolicyNamespace,
  type PolicyPod,
} from '../../../policy/index.js';
import { runChain } from './chain-sim.js';
import { NODE, np } from './fixtures.js';

const NS = ['x', 'y', 'z'] as const;
const TEAM = { x: 'red', y: 'blue', z: 'green' } as const;
const namespaces: PolicyNamespace[] = NS.map((n) => ({
  name: n,
  labels: { team: TEAM[n], 'kubernetes.io/metadata.name': n },
}));
// Each namespace's pods name their metrics port alike but serve it on a port of their own.
const METRICS = { x: 9100, y: 9200, z: 9300 } as const;
const pods: PolicyPod[] = NS.flatMap((n, i) =>
  (['a', 'b'] as const).map((p, j) => ({
    namespace: n,
    name: p,
    labels: { pod: p },
    ips: [`10.0.${i}.${j + 1}`, `fd00::${i}:${j + 1}`],
    node: NODE,
    ports: [{ name: 'metrics', port: METRICS[n], protocol: 'TCP' as const }],
    hostInterfaces: [`tern${n}${p}`],
  })),
);
const ipOf = (key: string, family: 4 | 6 = 4) => {
  const pod = pods.find((p) => `${p.namespace}/${p.name}` === key)!;
  return pod.ips.find((ip) => (family === 6) === ip.includes(':'))!;
};

type Spec = ClusterNetworkPolicy['spec'];
const cnp = (name: string, spec: Spec): ClusterNetworkPolicy => ({
  apiVersion: 'policy.networking.k8s.io/v1beta1',
  kind: 'ClusterNetworkPolicy',
  metadata: { name },
  spec,
});
const team = (t: string) => ({ matchLabels: { team: t } });
const nsPeer = (t?: string) => ({ namespaces: t ? team(t) : {} });
const tcp = (port: number) => ({ tcp: { destinationPort: { number: port } } });

interface Flow {
  from: string;
  to: string;
  port?: number;
  family?: 4 | 6;
}

/** The verdict of a new connection, from the chains and from explain (which must agree). */
function verdictOf(
  input: { clusterPolicies: ClusterNetworkPolicy[]; policies?: NetworkPolicy[] },
  flow: Flow,
): { verdict: 'allow' | 'deny'; by?: string; tier?: string; rule?: string } {
  const family = flow.family ?? 4;
  const c = compile({ nodeName: NODE, pods, namespaces, policies: input.policies ?? [], ...input });
  const packet = {
    src: ipOf(flow.from, family),
    dst: ipOf(flow.to, family),
    protocol: 'tcp' as const,
    dport: flow.port ?? 80,
  };
  const run = (key: string, dir: 'ingress' | 'egress') => {
    const chain = endpointChain(key, dir);
    return c.desired.chains[family].has(chain) ? runChain(c.desired, family, chain, packet) : 'return';
  };
  const chains = run(flow.from, 'egress') !== 'drop' && run(flow.to, 'ingress') !== 'drop' ? 'allow' : 'deny';
  const [ns, name] = flow.to.split('/') as [string, string];
  const [fns, fname] = flow.from.split('/') as [string, string];
  const e = explain(
    c.state,
    { namespace: ns, name },
    {
      from: family === 4 ? { pod: { namespace: fns, name: fname } } : { ip: packet.src },
      port: packet.dport,
    },
  );
  expect(e.verdict, `explain and the chains disagree on ${JSON.stringify(flow)}`).toBe(chains);
  const decided = e.decisions.find((d) => d.verdict === 'deny') ?? e.decisions.find((d) => d.policy);
  return {
    verdict: chains,
    ...(decided?.policy ? { by: decided.policy } : {}),
    ...(decided?.tier ? { tier: decided.tier } : {}),
    ...(decided?.rule ? { rule: decided.rule } : {}),
  };
}
const id = clusterNetworkPolicyId;

describe('ClusterNetworkPolicy: actions', () => {
  // x's pods: Admin passes traffic from y to NetworkPolicy, then a lower-precedence Admin policy
  // denies everything else; x's own NetworkPolicy allows only y/a.
  const passY = (action: 'Pass' | 'Accept') =>
    cnp('from-y', {
      tier: 'Admin',
      priority: 10,
      subject: { namespaces: team('red') },
      ingress: [{ name: 'y to x', action, from: [nsPeer('blue')] }],
    });
  const denyAll = cnp('deny-all', {
    tier: 'Admin',
    priority: 20,
    subject: { namespaces: team('red') },
    ingress: [{ action: 'Deny', from: [nsPeer()] }],
  });
  const onlyYa = np('x', 'only-y-a', {
    podSelector: {},
    ingress: [{ from: [{ namespaceSelector: team('blue'), podSelector: { matchLabels: { pod: 'a' } } }] }],
  });

  test('Pass skips the rest of the Admin tier and NetworkPolicy decides; Accept decides at once', () => {
    const pass = { clusterPolicies: [passY('Pass'), denyAll], policies: [onlyYa] };
    expect(verdictOf(pass, { from: 'y/a', to: 'x/a' })).toMatchObject({ verdict: 'allow' });
    expect(verdictOf(pass, { from: 'y/b', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      tier: 'networkpolicy',
    });
    const c = compile({ nodeName: NODE, pods, namespaces, ...pass });
    const text = explain(
      c.state,
      { namespace: 'x', name: 'a' },
      { from: { pod: { namespace: 'y', name: 'b' } } },
    ).decisions.at(-1)!.text;
    expect(text).toBe(
      'x/a: isolated for ingress by networkpolicy:x/only-y-a; no rule allows this traffic' +
        ' (after pass by clusternetworkpolicy:from-y ingress[0] (y to x), admin tier)',
    );
    expect(verdictOf(pass, { from: 'z/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      tier: 'admin',
      by: id('deny-all'),
      rule: 'ingress[0]',
    });

    const accept = { clusterPolicies: [passY('Accept'), denyAll], policies: [onlyYa] };
    expect(verdictOf(accept, { from: 'y/b', to: 'x/a' })).toMatchObject({
      verdict: 'allow',
      tier: 'admin',
      by: id('from-y'),
      rule: 'ingress[0] (y to x)',
    });
    expect(verdictOf(accept, { from: 'z/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      by: id('deny-all'),
    });
  });

  test('Admin Deny cannot be lifted by a NetworkPolicy that allows', () => {
    const allowAll = np('x', 'allow-all', { podSelector: {}, ingress: [{}] });
    const input = { clusterPolicies: [denyAll], policies: [allowAll] };
    expect(verdictOf(input, { from: 'y/a', to: 'x/b' })).toMatchObject({ verdict: 'deny', tier: 'admin' });
    // The same pods in the other direction: x/b is no subject of deny-all's egress (it has none).
    expect(verdictOf(input, { from: 'x/b', to: 'y/a' })).toMatchObject({ verdict: 'allow' });
  });

  test('rules apply in the order written: the first that matches decides', () => {
    const ordered = (first: 'Accept' | 'Deny') =>
      cnp('ordered', {
        tier: 'Admin',
        priority: 1,
        subject: { namespaces: team('red') },
        ingress: [
          { action: first, from: [nsPeer('blue')], protocols: [tcp(80)] },
          { action: first === 'Accept' ? 'Deny' : 'Accept', from: [nsPeer()] },
        ],
      });
    expect(verdictOf({ clusterPolicies: [ordered('Accept')] }, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'allow',
      rule: 'ingress[0]',
    });
    expect(
      verdictOf({ clusterPolicies: [ordered('Accept')] }, { from: 'y/a', to: 'x/a', port: 81 }),
    ).toMatchObject({
      verdict: 'deny',
      rule: 'ingress[1]',
    });
    expect(verdictOf({ clusterPolicies: [ordered('Deny')] }, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      rule: 'ingress[0]',
    });
  });

  test('egress Accept does not skip the ingress rules at the destination', () => {
    const out = cnp('x-out', {
      tier: 'Admin',
      priority: 1,
      subject: { namespaces: team('red') },
      egress: [{ action: 'Accept', to: [nsPeer()] }],
    });
    const yIn = cnp('y-in', {
      tier: 'Admin',
      priority: 2,
      subject: { namespaces: team('blue') },
      ingress: [{ action: 'Deny', from: [nsPeer('red')] }],
    });
    expect(verdictOf({ clusterPolicies: [out, yIn] }, { from: 'x/a', to: 'y/a' })).toMatchObject({
      verdict: 'deny',
      by: id('y-in'),
    });
  });

  test('a direction without rules is not governed: no implicit isolation', () => {
    const egressOnly = cnp('egress-only', {
      tier: 'Admin',
      priority: 1,
      subject: { namespaces: {} },
      egress: [{ action: 'Deny', to: [nsPeer('green')] }],
    });
    const c = compile({ nodeName: NODE, pods, namespaces, policies: [], clusterPolicies: [egressOnly] });
    expect(c.desired.chains[4].has(endpointChain('x/a', 'ingress'))).toBe(false);
    expect(verdictOf({ clusterPolicies: [egressOnly] }, { from: 'y/a', to: 'x/a' }).verdict).toBe('allow');
    expect(verdictOf({ clusterPolicies: [egressOnly] }, { from: 'y/a', to: 'z/a' })).toMatchObject({
      verdict: 'deny',
      by: id('egress-only'),
    });
  });
});

describe('ClusterNetworkPolicy: priority', () => {
  const policy = (name: string, priority: number, action: 'Accept' | 'Deny') =>
    cnp(name, {
      tier: 'Admin',
      priority,
      subject: { namespaces: team('red') },
      ingress: [{ action, from: [nsPeer('blue')] }],
    });

  test('lower priority value first, whatever the names', () => {
    const low = { clusterPolicies: [policy('a-deny', 5, 'Deny'), policy('b-accept', 1, 'Accept')] };
    expect(verdictOf(low, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'allow',
      by: id('b-accept'),
    });
    const swapped = { clusterPolicies: [policy('a-deny', 1, 'Deny'), policy('b-accept', 5, 'Accept')] };
    expect(verdictOf(swapped, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      by: id('a-deny'),
    });
    expect(
      verdictOf(
        { clusterPolicies: [policy('p', 0, 'Deny'), policy('q', 1000, 'Accept')] },
        { from: 'y/a', to: 'x/a' },
      ),
    ).toMatchObject({ verdict: 'deny', by: id('p') });
  });

  test('equal priorities: the API leaves the choice to the implementation; tern orders by name, whatever the input order', () => {
    const tie = [policy('b-accept', 7, 'Accept'), policy('a-deny', 7, 'Deny')];
    expect(verdictOf({ clusterPolicies: tie }, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      by: id('a-deny'),
    });
    expect(verdictOf({ clusterPolicies: [...tie].reverse() }, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      by: id('a-deny'),
    });
    // Equal priorities with disjoint rules are all applied (the upstream "same priority" case).
    const disjoint = [
      cnp('deny-y', {
        tier: 'Admin',
        priority: 3,
        subject: { namespaces: team('red') },
        ingress: [{ action: 'Deny', from: [nsPeer('blue')] }],
      }),
      cnp('deny-z', {
        tier: 'Admin',
        priority: 3,
        subject: { namespaces: team('red') },
        ingress: [{ action: 'Deny', from: [nsPeer('green')] }],
      }),
    ];
    expect(verdictOf({ clusterPolicies: disjoint }, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      by: id('deny-y'),
    });
    expect(verdictOf({ clusterPolicies: disjoint }, { from: 'z/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      by: id('deny-z'),
    });
  });

  test('every Admin policy precedes NetworkPolicy, which precedes every Baseline policy, whatever the priorities', () => {
    const admin = cnp('admin-1000', {
      tier: 'Admin',
      priority: 1000,
      subject: { namespaces: team('red') },
      ingress: [{ action: 'Deny', from: [nsPeer('blue')] }],
    });
    const baseline = cnp('baseline-0', {
      tier: 'Baseline',
      priority: 0,
      subject: { namespaces: team('red') },
      ingress: [{ action: 'Accept', from: [nsPeer()] }],
    });
    expect(verdictOf({ clusterPolicies: [baseline, admin] }, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      tier: 'admin',
    });
  });
});

describe('ClusterNetworkPolicy: Baseline tier', () => {
  const baselineDeny = cnp('baseline-deny', {
    tier: 'Baseline',
    priority: 50,
    subject: { namespaces: team('red') },
    ingress: [{ action: 'Deny', from: [nsPeer()] }],
  });

  test('Baseline applies where no NetworkPolicy selects the pod, and NetworkPolicy overrides it where one does', () => {
    expect(verdictOf({ clusterPolicies: [baselineDeny] }, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      tier: 'baseline',
      by: id('baseline-deny'),
    });
    const allowYtoA = np('x', 'allow-y', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: team('blue') }] }],
    });
    const input = { clusterPolicies: [baselineDeny], policies: [allowYtoA] };
    expect(verdictOf(input, { from: 'y/a', to: 'x/a' })).toMatchObject({
      verdict: 'allow',
      tier: 'networkpolicy',
    });
    // NetworkPolicy isolates x/a from z: Baseline is never reached for a selected pod.
    expect(verdictOf(input, { from: 'z/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      tier: 'networkpolicy',
    });
    // x/b has no NetworkPolicy: Baseline decides.
    expect(verdictOf(input, { from: 'y/a', to: 'x/b' })).toMatchObject({ verdict: 'deny', tier: 'baseline' });
  });

  test('Baseline Accept does not lift a NetworkPolicy isolation; Baseline Pass skips the rest of Baseline', () => {
    const accept = cnp('baseline-accept', {
      tier: 'Baseline',
      priority: 1,
      subject: { namespaces: team('red') },
      ingress: [{ action: 'Accept', from: [nsPeer()] }],
    });
    const isolate = np('x', 'isolate', { podSelector: {}, ingress: [] });
    expect(
      verdictOf({ clusterPolicies: [accept], policies: [isolate] }, { from: 'y/a', to: 'x/a' }).verdict,
    ).toBe('deny');

    const pass = cnp('baseline-pass', {
      tier: 'Baseline',
      priority: 1,
      subject: { namespaces: team('red') },
      ingress: [{ action: 'Pass', from: [nsPeer('blue')] }],
    });
    const input = { clusterPolicies: [pass, baselineDeny] };
    expect(verdictOf(input, { from: 'y/a', to: 'x/a' }).verdict).toBe('allow');
    expect(verdictOf(input, { from: 'z/a', to: 'x/a' })).toMatchObject({
      verdict: 'deny',
      by: id('baseline-deny'),
    });
  });
});

describe('ClusterNetworkPolicy: subjects, peers and ports', () => {
  test('subject pods: namespace AND pod selector', () => {
    const onlyXa = cnp('x-a', {
      tier: 'Admin',
      priority: 1,
      subject: { pods: { namespaceSelector: team('red'), podSelector: { matchLabels: { pod: 'a' } } } },
      ingress: [
        {
          action: 'Deny',
          from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { pod: 'b' } } } }],
        },
      ],
    });
    const input = { clusterPolicies: [onlyXa] };
    expect(verdictOf(input, { from: 'y/b', to: 'x/a' }).verdict).toBe('deny');
    expect(verdictOf(input, { from: 'x/b', to: 'x/a' }).verdict).toBe('deny');
    expect(verdictOf(input, { from: 'y/a', to: 'x/a' }).verdict).toBe('allow');
    expect(verdictOf(input, { from: 'y/b', to: 'x/b' }).verdict).toBe('allow');
    expect(verdictOf(input, { from: 'y/b', to: 'z/a' }).verdict).toBe('allow');
  });

  test('named ports resolve on each destination pod, across namespaces that serve them on different numbers', () => {
    const denyMetrics = cnp('deny-metrics', {
      tier: 'Admin',
      priority: 1,
      subject: { namespaces: {} },
      egress: [{ action: 'Deny', to: [nsPeer()], protocols: [{ destinationNamedPort: 'metrics' }] }],
    });
    const input = { clusterPolicies: [denyMetrics] };
    expect(verdictOf(input, { from: 'x/a', to: 'y/a', port: 9200 }).verdict).toBe('deny');
    expect(verdictOf(input, { from: 'x/a', to: 'y/a', port: 9100 }).verdict).toBe('allow'); // x's number, not y's
    expect(verdictOf(input, { from: 'y/b', to: 'z/a', port: 9300 }).verdict).toBe('deny');
    expect(verdictOf(input, { from: 'z/a', to: 'x/b', port: 9100, family: 6 }).verdict).toBe('deny');

    // Ingress: z may scrape x's metrics by name, nothing else reaches them.
    const scrape = cnp('scrape', {
      tier: 'Admin',
      priority: 2,
      subject: { namespaces: team('red') },
      ingress: [
        { action: 'Accept', from: [nsPeer('green')], protocols: [{ destinationNamedPort: 'metrics' }] },
        { action: 'Deny', from: [nsPeer()] },
      ],
    });
    expect(verdictOf({ clusterPolicies: [scrape] }, { from: 'z/a', to: 'x/a', port: 9100 }).verdict).toBe(
      'allow',
    );
    expect(verdictOf({ clusterPolicies: [scrape] }, { from: 'z/a', to: 'x/a', port: 9300 }).verdict).toBe(
      'deny',
    );
    expect(verdictOf({ clusterPolicies: [scrape] }, { from: 'y/a', to: 'x/a', port: 9100 }).verdict).toBe(
      'deny',
    );
  });

  test('networks: CIDRs of either family, each matching its own family only; port ranges', () => {
    const denyY4 = cnp('deny-y4', {
      tier: 'Admin',
      priority: 1,
      subject: { namespaces: team('red') },
      egress: [
        {
          action: 'Deny',
          to: [{ networks: ['10.0.1.0/24', 'fd00::2:0/112'] }],
          protocols: [{ tcp: { destinationPort: { range: { start: 80, end: 90 } } } }],
        },
      ],
    });
    const input = { clusterPolicies: [denyY4] };
    expect(verdictOf(input, { from: 'x/a', to: 'y/a', port: 90 }).verdict).toBe('deny');
    expect(verdictOf(input, { from: 'x/a', to: 'y/a', port: 91 }).verdict).toBe('allow');
    expect(verdictOf(input, { from: 'x/a', to: 'y/a', family: 6 }).verdict).toBe('allow');
    expect(verdictOf(input, { from: 'x/a', to: 'z/a', family: 6 }).verdict).toBe('deny');
    expect(verdictOf(input, { from: 'x/a', to: 'z/a' }).verdict).toBe('allow');
  });

  test('peer types tern does not implement fail closed as the API says, with a warning', () => {
    const c = compile({
      nodeName: NODE,
      pods,
      namespaces,
      policies: [],
      clusterPolicies: [
        cnp('dns-allow', {
          tier: 'Admin',
          priority: 1,
          subject: { namespaces: team('red') },
          egress: [{ action: 'Accept', to: [{ domainNames: ['example.org'] }] }],
        }),
        cnp('nodes-pass', {
          tier: 'Admin',
          priority: 2,
          subject: { namespaces: team('red') },
          egress: [{ action: 'Pass', to: [{ nodes: {} }, nsPeer('blue')] }],
        }),
      ],
    });
    expect(c.warnings.get(id('dns-allow'))).toEqual([
      'egress[0]: peer type not implemented by tern: to[0] (domainNames); the rule matches nothing (fail closed)',
    ]);
    expect(c.warnings.get(id('nodes-pass'))).toEqual([
      'egress[0]: peer type not implemented by tern: to[0] (nodes); the rule denies all traffic (fail closed)',
    ]);
    const accept = cnp('dns-allow', {
      tier: 'Admin',
      priority: 1,
      subject: { namespaces: team('red') },
      egress: [{ action: 'Accept', to: [{ domainNames: ['example.org'] }] }],
    });
    const pass = cnp('nodes-pass', {
      tier: 'Admin',
      priority: 2,
      subject: { namespaces: team('red') },
      egress: [{ action: 'Pass', to: [{ nodes: {} }, nsPeer('blue')] }],
    });
    // The Accept matches nothing (traffic goes on); the Pass became Deny all, even to y.
    expect(verdictOf({ clusterPolicies: [accept] }, { from: 'x/a', to: 'y/a' }).verdict).toBe('allow');
    expect(verdictOf({ clusterPolicies: [accept, pass] }, { from: 'x/a', to: 'y/a' })).toMatchObject({
      verdict: 'deny',
      by: id('nodes-pass'),
    });
  });
});
