// Under continuous probing, a long series of policy updates (and label changes) must never let
// through a connection that the policy in force at that moment denies.
import { afterAll, beforeAll, test } from 'vitest';
import type { NetworkPolicy } from '../../../model/index.js';
import type { PolicyEngine } from '../../../policy/index.js';
import { PolicyLab, type LabPod } from '../../support/policy-lab.js';
import { expectSound, judge, PolicyTimeline, probeContinuously } from '../../support/policy-prober.js';

const UPDATES = 1000;

let lab: PolicyLab;
let engine: PolicyEngine;

beforeAll(async () => {
  lab = await PolicyLab.create({ namespaces: ['x', 'y'] });
  engine = lab.newEngine();
  await engine.sync();
}, 120_000);

afterAll(async () => {
  await engine?.close();
  await lab?.cleanup();
});

type Variant = 'from-b' | 'from-c-80' | 'deny-all' | 'from-y-81' | 'deleted';
const VARIANTS: Variant[] = ['from-b', 'from-c-80', 'deny-all', 'from-y-81', 'deleted'];

/** The policy on x/a for each variant. */
function policy(v: Exclude<Variant, 'deleted'>): NetworkPolicy {
  const ingress: NonNullable<NetworkPolicy['spec']['ingress']> =
    v === 'from-b'
      ? [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }]
      : v === 'from-c-80'
        ? [{ from: [{ podSelector: { matchLabels: { pod: 'c' } } }], ports: [{ port: 80 }] }]
        : v === 'from-y-81'
          ? [
              {
                from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }],
                ports: [{ port: 81 }],
              },
            ]
          : [];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace: 'x', name: 'guard' },
    spec: { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'], ingress },
  };
}

interface World {
  readonly variant: Variant;
  /** The `pod` label x/c carries (it flips between c and b). */
  readonly xcLabel: 'b' | 'c';
}

/** Written from the API reference: may `from` open a TCP connection to x/a on `port`? */
function allowed(w: World, from: LabPod, port: number): boolean {
  const label = from.key === 'x/c' ? w.xcLabel : from.name;
  switch (w.variant) {
    case 'deleted':
      return true;
    case 'deny-all':
      return false;
    case 'from-b':
      return from.namespace === 'x' && label === 'b';
    case 'from-c-80':
      return from.namespace === 'x' && label === 'c' && port === 80;
    case 'from-y-81':
      return from.namespace === 'y' && port === 81;
  }
}

test(`${UPDATES} policy and label updates under continuous probing never pass a denied probe`, async () => {
  const target = lab.pod('x/a');
  const sources = ['x/b', 'x/c', 'y/a', 'y/b'].map((k) => lab.pod(k));
  const timeline = new PolicyTimeline<World>({ variant: 'deleted', xcLabel: 'c' });
  const probing = probeContinuously(
    lab,
    sources.flatMap((from) => [80, 81].map((port) => ({ from, to: target, port }))),
  );

  const modes: string[] = [];
  for (let k = 0; k < UPDATES; k++) {
    const world = timeline.current;
    // Every fifth update is a label change of x/c; the others step through the policy variants.
    const next: World =
      k % 5 === 4
        ? { ...world, xcLabel: world.xcLabel === 'c' ? 'b' : 'c' }
        : { ...world, variant: VARIANTS[(VARIANTS.indexOf(world.variant) + 1) % VARIANTS.length]! };
    await timeline.step(next, async () => {
      if (next.xcLabel !== world.xcLabel) {
        engine.upsertPod(lab.policyPod(lab.pod('x/c'), { pod: next.xcLabel }));
      } else if (next.variant === 'deleted') {
        engine.removePolicy('x', 'guard');
      } else {
        engine.upsertPolicy(policy(next.variant));
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
