// Under continuous probing, 500 mixed ClusterNetworkPolicy (Admin and Baseline) and NetworkPolicy
// updates, with pod label changes among them, must never let through a connection that the
// policies in force at that moment deny.
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { ClusterNetworkPolicy, NetworkPolicy } from '../../../model/index.js';
import type { PolicyEngine } from '../../../policy/index.js';
import { PolicyLab, type LabPod } from '../../support/policy-lab.js';
import { expectSound, judge, PolicyTimeline, probeContinuously } from '../../support/policy-prober.js';

const UPDATES = 500;
const TEAM: Record<string, string> = { x: 'red', y: 'blue', z: 'green' };

let lab: PolicyLab;
let engine: PolicyEngine;

beforeAll(async () => {
  lab = await PolicyLab.create({ namespaces: ['x', 'y', 'z'], pods: ['a', 'b'] });
  engine = lab.newEngine();
  for (const name of lab.namespaceNames) engine.upsertNamespace({ name, labels: { team: TEAM[name]! } });
  await engine.sync();
}, 120_000);

afterAll(async () => {
  await engine?.close();
  await lab?.cleanup();
});

// What protects x/a: one Admin policy about y's client pods, one NetworkPolicy of x, one Baseline.
const ADMIN = ['none', 'deny-clients', 'pass-clients', 'accept-clients-80'] as const;
const NETPOL = ['none', 'deny-all', 'from-y-81'] as const;
const BASELINE = ['none', 'deny-all'] as const;

interface World {
  readonly admin: (typeof ADMIN)[number];
  readonly netpol: (typeof NETPOL)[number];
  readonly baseline: (typeof BASELINE)[number];
  /** Whether y/b carries role=client (y/a always does). */
  readonly ybClient: boolean;
}

const clients = {
  namespaceSelector: { matchLabels: { team: 'blue' } },
  podSelector: { matchLabels: { role: 'client' } },
};
const subject = {
  pods: { namespaceSelector: { matchLabels: { team: 'red' } }, podSelector: { matchLabels: { pod: 'a' } } },
};

function adminPolicy(v: Exclude<World['admin'], 'none'>): ClusterNetworkPolicy {
  const rule =
    v === 'deny-clients'
      ? { action: 'Deny' as const, from: [{ pods: clients }] }
      : v === 'pass-clients'
        ? { action: 'Pass' as const, from: [{ pods: clients }] }
        : {
            action: 'Accept' as const,
            from: [{ pods: clients }],
            protocols: [{ tcp: { destinationPort: { number: 80 } } }],
          };
  return {
    apiVersion: 'policy.networking.k8s.io/v1beta1',
    kind: 'ClusterNetworkPolicy',
    metadata: { name: 'guard-admin' },
    // A lower-priority Admin Deny of z makes Pass observable: it skips this too.
    spec: {
      tier: 'Admin',
      priority: 10,
      subject,
      ingress: [rule, { action: 'Deny', from: [{ namespaces: { matchLabels: { team: 'green' } } }] }],
    },
  };
}

const baselinePolicy: ClusterNetworkPolicy = {
  apiVersion: 'policy.networking.k8s.io/v1beta1',
  kind: 'ClusterNetworkPolicy',
  metadata: { name: 'guard-baseline' },
  spec: { tier: 'Baseline', priority: 0, subject, ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }] },
};

function netpol(v: Exclude<World['netpol'], 'none'>): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace: 'x', name: 'guard' },
    spec: {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Ingress'],
      ingress:
        v === 'deny-all'
          ? []
          : [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }], ports: [{ port: 81 }] }],
    },
  };
}

/** Written from the network-policy-api and NetworkPolicy references: may `from` reach x/a on `port`? */
function allowed(w: World, from: LabPod, port: number): boolean {
  const client = from.namespace === 'y' && (from.name === 'a' || w.ybClient);
  // Admin tier: the first rule that matches decides; Pass goes on to NetworkPolicy.
  if (w.admin !== 'none') {
    if (client && w.admin === 'deny-clients') return false;
    if (client && w.admin === 'accept-clients-80' && port === 80) return true;
    const passed = client && w.admin === 'pass-clients';
    if (!passed && from.namespace === 'z') return false;
  }
  // NetworkPolicy: once one selects x/a it decides, and the Baseline is never reached.
  if (w.netpol === 'deny-all') return false;
  if (w.netpol === 'from-y-81') return from.namespace === 'y' && port === 81;
  return w.baseline === 'none';
}

/** A deterministic series of updates: each changes one thing of the world (seeded LCG). */
function* updates(initial: World, n: number): Generator<World> {
  let seed = 0x2545f491;
  const pick = (k: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % k;
  };
  const other = <T>(values: readonly T[], now: T): T => {
    const rest = values.filter((v) => v !== now);
    return rest[pick(rest.length)]!;
  };
  let w = initial;
  for (let i = 0; i < n; i++) {
    const what = pick(4);
    w =
      what === 0
        ? { ...w, admin: other(ADMIN, w.admin) }
        : what === 1
          ? { ...w, netpol: other(NETPOL, w.netpol) }
          : what === 2
            ? { ...w, baseline: other(BASELINE, w.baseline) }
            : { ...w, ybClient: !w.ybClient };
    yield w;
  }
}

function labelsOf(pod: LabPod, w: World): Record<string, string> {
  return pod.key === 'y/a' || (pod.key === 'y/b' && w.ybClient)
    ? { ...pod.labels, role: 'client' }
    : pod.labels;
}

test(`${UPDATES} mixed ClusterNetworkPolicy and NetworkPolicy updates never pass a denied probe`, async () => {
  const target = lab.pod('x/a');
  const sources = ['x/b', 'y/a', 'y/b', 'z/a'].map((k) => lab.pod(k));
  const initial: World = { admin: 'none', netpol: 'none', baseline: 'none', ybClient: false };
  engine.upsertPod(lab.policyPod(lab.pod('y/a'), labelsOf(lab.pod('y/a'), initial)));
  await engine.sync();
  const timeline = new PolicyTimeline<World>(initial);
  const probing = probeContinuously(
    lab,
    sources.flatMap((from) => [80, 81].map((port) => ({ from, to: target, port }))),
  );

  const modes: string[] = [];
  for (const next of updates(initial, UPDATES)) {
    const was = timeline.current;
    await timeline.step(next, async () => {
      if (next.admin !== was.admin) {
        if (next.admin === 'none') engine.removeClusterPolicy('guard-admin');
        else expect(engine.upsertClusterPolicy(adminPolicy(next.admin))).toEqual([]);
      } else if (next.netpol !== was.netpol) {
        if (next.netpol === 'none') engine.removePolicy('x', 'guard');
        else expect(engine.upsertPolicy(netpol(next.netpol))).toEqual([]);
      } else if (next.baseline !== was.baseline) {
        if (next.baseline === 'none') engine.removeClusterPolicy('guard-baseline');
        else expect(engine.upsertClusterPolicy(baselinePolicy)).toEqual([]);
      } else {
        const yb = lab.pod('y/b');
        engine.upsertPod(lab.policyPod(yb, labelsOf(yb, next)));
      }
      modes.push((await engine.sync()).mode);
    });
  }
  const probes = await probing.stop();

  const verdicts = judge(probes, timeline, (w, p) => allowed(w, p.from, p.port));
  console.log(
    `${UPDATES} updates, ${probes.length} probes: ${verdicts.passed} passed, ${verdicts.blocked} blocked`,
  );
  await expectSound(verdicts, modes, engine);
}, 600_000);
