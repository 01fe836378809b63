// ClusterNetworkPolicy truth tables on the conformance model (namespaces x, y, z as tenants red,
// blue and green; pods a, b, c), enforced by tern's real chains and sets in a node namespace next
// to NetworkPolicy. Every test probes every ordered pair and compares the whole matrix with a
// table written from the network-policy-api specification (v0.3.1).
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { ClusterNetworkPolicy, NetworkPolicy } from '../../../model/index.js';
import type { PolicyEngine } from '../../../policy/index.js';
import { PolicyLab, Reachability } from '../../support/policy-lab.js';

const TEAM: Record<string, string> = { x: 'red', y: 'blue', z: 'green' };

let lab: PolicyLab;
let engine: PolicyEngine;
let keys: string[];
const namespaced: [string, string][] = [];
const cluster: string[] = [];

beforeAll(async () => {
  lab = await PolicyLab.create();
  keys = lab.pods.map((p) => p.key);
  engine = lab.newEngine();
  for (const name of lab.namespaceNames) engine.upsertNamespace({ name, labels: { team: TEAM[name]! } });
  await engine.installSourceValidation();
  await engine.sync();
}, 120_000);

afterAll(async () => {
  await engine?.uninstall();
  await lab?.cleanup();
});

beforeEach(async () => {
  for (const [ns, name] of namespaced.splice(0)) engine.removePolicy(ns, name);
  for (const name of cluster.splice(0)) engine.removeClusterPolicy(name);
  for (const p of lab.pods) engine.upsertPod(lab.policyPod(p));
  await engine.sync();
});

type Spec = ClusterNetworkPolicy['spec'];
const cnp = (name: string, spec: Spec): ClusterNetworkPolicy => ({
  apiVersion: 'policy.networking.k8s.io/v1beta1',
  kind: 'ClusterNetworkPolicy',
  metadata: { name },
  spec,
});
const np = (namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { namespace, name },
  spec,
});
const team = (ns: string) => ({ matchLabels: { team: TEAM[ns]! } });
const tcp = (port: number) => ({ tcp: { destinationPort: { number: port } } });

async function apply(...objects: (ClusterNetworkPolicy | NetworkPolicy)[]): Promise<readonly string[]> {
  const warnings: string[] = [];
  for (const o of objects) {
    if (o.kind === 'ClusterNetworkPolicy') {
      warnings.push(...engine.upsertClusterPolicy(o));
      cluster.push(o.metadata.name);
    } else {
      expect(engine.upsertPolicy(o)).toEqual([]);
      namespaced.push([o.metadata.namespace!, o.metadata.name]);
    }
  }
  await engine.sync();
  return warnings;
}

/** Probes the whole TCP matrix; a pair expected open but found blocked is probed once more (load). */
async function check(reach: Reachability, port: number): Promise<void> {
  const actual = await lab.matrix(port, 'TCP');
  await Promise.all(
    [...actual].map(async ([pair, result]) => {
      if (result !== 'blocked' || !reach.get(pair)) return;
      const [from, to] = pair.split('>');
      actual.set(pair, (await lab.probe(lab.pod(from!), lab.pod(to!), port, 'TCP', 4, 2000)).result);
    }),
  );
  const { wrong, grid } = reach.compare(actual);
  expect(wrong, `TCP/${port}\n${grid}`).toEqual([]);
}

const all = (allowed: boolean) => new Reachability(keys, allowed);

describe('ClusterNetworkPolicy truth tables (conformance model)', () => {
  test('an Admin Deny between tenants overrides a NetworkPolicy that allows everything', async () => {
    await apply(
      cnp('tenant-wall', {
        tier: 'Admin',
        priority: 10,
        subject: { namespaces: team('y') },
        ingress: [{ action: 'Deny', from: [{ namespaces: team('x') }] }],
      }),
      np('y', 'allow-all', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] }),
    );
    await check(all(true).expect({ namespace: 'x' }, { namespace: 'y' }, false), 80);
  });

  test('an Admin Accept lets monitoring through a tenant default deny', async () => {
    await apply(
      cnp('monitoring', {
        tier: 'Admin',
        priority: 5,
        subject: { namespaces: team('z') },
        ingress: [{ action: 'Accept', from: [{ namespaces: team('y') }], protocols: [tcp(80)] }],
      }),
      np('z', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] }),
    );
    const reach = all(true).expect({}, { namespace: 'z' }, false);
    await check(reach.expect({ namespace: 'y' }, { namespace: 'z' }, true), 80);
    // The Accept names port 80 only: on 81 the tenant's default deny decides.
    await check(all(true).expect({}, { namespace: 'z' }, false), 81);
  });

  test('Pass skips the rest of the Admin tier and hands the decision to NetworkPolicy', async () => {
    await apply(
      cnp('defer-x', {
        tier: 'Admin',
        priority: 10,
        subject: { namespaces: team('z') },
        ingress: [{ action: 'Pass', from: [{ namespaces: team('x') }] }],
      }),
      cnp('lock-z', {
        tier: 'Admin',
        priority: 20,
        subject: { namespaces: team('z') },
        ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
      }),
      np('z', 'from-x-a', {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: team('x'), podSelector: { matchLabels: { pod: 'a' } } }] }],
      }),
    );
    // x reaches z only where z's NetworkPolicy admits it (x/a); everyone else meets lock-z.
    await check(
      all(true)
        .expect({}, { namespace: 'z' }, false)
        .expect({ namespace: 'x', pod: 'a' }, { namespace: 'z' }, true),
      80,
    );
  });

  test('lower priority decides first, within a policy the first matching rule decides', async () => {
    await apply(
      cnp('b-deny', {
        tier: 'Admin',
        priority: 6,
        subject: { namespaces: team('x') },
        ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
      }),
      cnp('a-accept', {
        tier: 'Admin',
        priority: 5,
        subject: { namespaces: team('x') },
        ingress: [
          {
            action: 'Deny',
            from: [{ pods: { namespaceSelector: team('y'), podSelector: { matchLabels: { pod: 'c' } } } }],
          },
          { action: 'Accept', from: [{ namespaces: team('y') }], protocols: [tcp(80)] },
        ],
      }),
    );
    await check(
      all(true)
        .expect({}, { namespace: 'x' }, false)
        .expect({ namespace: 'y' }, { namespace: 'x' }, true)
        .expect({ namespace: 'y', pod: 'c' }, { namespace: 'x' }, false),
      80,
    );
    await check(all(true).expect({}, { namespace: 'x' }, false), 81);
  });

  test('Baseline applies only to pods no NetworkPolicy selects', async () => {
    await apply(
      cnp('baseline-deny', {
        tier: 'Baseline',
        priority: 0,
        subject: {
          namespaces: { matchExpressions: [{ key: 'team', operator: 'In', values: ['red', 'blue'] }] },
        },
        ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
      }),
      np('y', 'from-z', {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: team('z') }] }],
      }),
    );
    // x has no NetworkPolicy: the baseline denies it. y has one: it decides, the baseline is never reached.
    await check(
      all(true)
        .expect({}, { namespace: 'x' }, false)
        .expect({}, { namespace: 'y' }, false)
        .expect({ namespace: 'z' }, { namespace: 'y' }, true),
      80,
    );
  });

  test('egress to networks denies the listed addresses only; Deny drops, it does not reject', async () => {
    const za = lab.pod('z/a');
    await apply(
      cnp('no-z-a', {
        tier: 'Admin',
        priority: 1,
        subject: { pods: { namespaceSelector: team('x'), podSelector: { matchLabels: { pod: 'b' } } } },
        egress: [{ action: 'Deny', to: [{ networks: [`${za.ip4}/32`] }] }],
      }),
    );
    await check(all(true).expect({ namespace: 'x', pod: 'b' }, { namespace: 'z', pod: 'a' }, false), 80);
    // Deny is a drop: nothing in the rendered filter table rejects.
    expect((await lab.nodeExec('iptables-save', ['-t', 'filter'])).stdout).not.toMatch(/-j REJECT/);
  });

  test('a nodes peer, not implemented by tern, fails closed: its Accept matches nothing, its Deny denies all', async () => {
    const warnings = await apply(
      cnp('to-nodes', {
        tier: 'Admin',
        priority: 1,
        subject: { namespaces: team('x') },
        egress: [{ action: 'Deny', to: [{ nodes: { matchLabels: { role: 'infra' } } }] }],
      }),
      cnp('from-nodes', {
        tier: 'Admin',
        priority: 2,
        subject: { namespaces: team('z') },
        egress: [{ action: 'Accept', to: [{ nodes: {} }] }],
      }),
      np('z', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] }),
    );
    expect(warnings.join('\n')).toMatch(/egress\[0\].*nodes.*denies all traffic \(fail closed\)/);
    expect(warnings.join('\n')).toMatch(/egress\[0\].*nodes.*matches nothing \(fail closed\)/);
    // x sends nothing (the Deny became "deny all"); z's Accept opened nothing past its NetworkPolicy.
    await check(all(true).expect({ namespace: 'x' }, {}, false).expect({ namespace: 'z' }, {}, false), 80);
  });

  test('a label change moves a pod in and out of a ClusterNetworkPolicy subject', async () => {
    await apply(
      cnp('quarantine', {
        tier: 'Admin',
        priority: 1,
        subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { quarantine: 'true' } } } },
        ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
      }),
    );
    await check(all(true), 80);
    const yb = lab.pod('y/b');
    engine.upsertPod(lab.policyPod(yb, { ...yb.labels, quarantine: 'true' }));
    expect((await engine.sync()).mode).not.toBe('full');
    await check(all(true).expect({}, { namespace: 'y', pod: 'b' }, false), 80);
    engine.upsertPod(lab.policyPod(yb));
    await engine.sync();
    await check(all(true), 80);
  });

  test('the kernel holds what the engine rendered, and explain names the tier, policy and rule', async () => {
    await apply(
      cnp('tenant-wall', {
        tier: 'Admin',
        priority: 10,
        subject: { namespaces: team('y') },
        ingress: [{ name: 'no-red', action: 'Deny', from: [{ namespaces: team('x') }] }],
      }),
    );
    expect(await engine.checkDrift()).toEqual([]);
    const verdict = engine.explain('y', 'a', { from: { pod: { namespace: 'x', name: 'a' } }, port: 80 });
    expect(verdict.verdict).toBe('deny');
    expect(verdict.decisions.find((d) => d.direction === 'ingress')).toMatchObject({
      verdict: 'deny',
      tier: 'admin',
      policy: 'clusternetworkpolicy:tenant-wall',
      rule: expect.stringContaining('no-red'),
    });
    expect((await lab.probe(lab.pod('x/a'), lab.pod('y/a'), 80, 'TCP', 4, 500)).result).toBe('blocked');
  });
});
