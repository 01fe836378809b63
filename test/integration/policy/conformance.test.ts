// NetworkPolicy truth tables on the upstream conformance model (namespaces x, y, z; pods a, b, c),
// enforced by tern's real chains and sets in a node namespace. Every test probes every ordered
// pair and compares the whole matrix with a table written from the API reference.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { NetworkPolicy } from '../../../model/index.js';
import type { PolicyEngine, Protocol } from '../../../policy/index.js';
import { PolicyLab, Reachability } from '../../support/policy-lab.js';

let lab: PolicyLab;
let engine: PolicyEngine;
let keys: string[];
const installed: [string, string][] = [];

beforeAll(async () => {
  lab = await PolicyLab.create();
  keys = lab.pods.map((p) => p.key);
  // Two-level interface dispatch even for nine pods, so the matrices exercise it (the
  // continuous test runs with the flat dispatch).
  engine = lab.newEngine({ dispatchTreeAbove: 0 });
  // Every matrix runs with source validation in place, as on a node: unforged traffic of both
  // families (and the neighbour discovery it needs) must be exactly as the tables say.
  await engine.installSourceValidation();
  await engine.sync();
}, 120_000);

afterAll(async () => {
  await engine?.uninstall();
  await lab?.cleanup();
});

beforeEach(async () => {
  for (const [ns, name] of installed.splice(0)) engine.removePolicy(ns, name);
  for (const p of lab.pods) engine.upsertPod(lab.policyPod(p));
  await engine.sync();
});

function np(namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace, name }, spec };
}

async function apply(...policies: NetworkPolicy[]): Promise<void> {
  for (const p of policies) {
    expect(engine.upsertPolicy(p)).toEqual([]);
    if (!installed.some(([ns, n]) => ns === p.metadata.namespace && n === p.metadata.name)) {
      installed.push([p.metadata.namespace!, p.metadata.name]);
    }
  }
  await engine.sync();
}

const nsSel = (...names: string[]) => ({
  matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In' as const, values: names }],
});
const podSel = (name: string) => ({ matchLabels: { pod: name } });

/** Probes the whole matrix; a pair expected open but found blocked is probed once more (load). */
async function check(
  reach: Reachability,
  port: number,
  protocol: Protocol,
  family: 4 | 6 = 4,
): Promise<void> {
  const actual = await lab.matrix(port, protocol, family);
  await Promise.all(
    [...actual].map(async ([pair, result]) => {
      if (result !== 'blocked' || !reach.get(pair)) return;
      const [from, to] = pair.split('>');
      actual.set(pair, (await lab.probe(lab.pod(from!), lab.pod(to!), port, protocol, family, 2000)).result);
    }),
  );
  const { wrong, grid } = reach.compare(actual);
  expect(wrong, `${protocol}/${port} IPv${family}\n${grid}`).toEqual([]);
}

const all = (allowed: boolean) => new Reachability(keys, allowed);

describe('NetworkPolicy v1 truth tables (conformance model)', () => {
  test('with no policy every pod reaches every pod, TCP and UDP, IPv4 and IPv6', async () => {
    await check(all(true), 80, 'TCP');
    await check(all(true), 81, 'UDP');
    await check(all(true), 81, 'TCP', 6);
  });

  test('default deny ingress isolates every pod of x and nothing else', async () => {
    await apply(np('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }));
    const reach = all(true).expect({}, { namespace: 'x' }, false);
    await check(reach, 80, 'TCP');
    await check(reach, 80, 'UDP');
    await check(reach, 80, 'TCP', 6);
  });

  test('the node reaches its pods through default deny ingress (only other senders are cut off)', async () => {
    await apply(np('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }));
    const fromNode = await lab.nodeExec('timeout', [
      '3',
      'bash',
      '-c',
      `exec 3<>/dev/tcp/${lab.pod('x/a').ip4}/80; cat <&3`,
    ]);
    expect(fromNode.stdout).toBe('x/a');
    expect((await lab.probe(lab.pod('y/a'), lab.pod('x/a'), 80, 'TCP')).result).toBe('blocked');
  });

  test('default deny egress stops everything x sends, TCP and UDP', async () => {
    await apply(np('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] }));
    const reach = all(true).expect({ namespace: 'x' }, {}, false);
    await check(reach, 80, 'TCP');
    await check(reach, 81, 'UDP');
  });

  test('ingress allowed from a namespace admits only that namespace', async () => {
    await apply(
      np('x', 'from-y', {
        podSelector: podSel('a'),
        ingress: [{ from: [{ namespaceSelector: nsSel('y') }] }],
      }),
    );
    const reach = all(true)
      .expect({}, { namespace: 'x', pod: 'a' }, false)
      .expect({ namespace: 'y' }, { namespace: 'x', pod: 'a' }, true);
    await check(reach, 80, 'TCP');
    await check(reach, 81, 'UDP', 6);
  });

  test('ingress allowed from a pod selector admits that pod of the policy namespace only', async () => {
    await apply(
      np('x', 'from-b', { podSelector: podSel('a'), ingress: [{ from: [{ podSelector: podSel('b') }] }] }),
    );
    const reach = all(true)
      .expect({}, { namespace: 'x', pod: 'a' }, false)
      .expect({ namespace: 'x', pod: 'b' }, { namespace: 'x', pod: 'a' }, true);
    await check(reach, 81, 'TCP');
  });

  test('namespaceSelector AND podSelector in one peer differ from the two as separate peers', async () => {
    await apply(
      np('x', 'and', {
        podSelector: podSel('a'),
        ingress: [{ from: [{ namespaceSelector: nsSel('y', 'z'), podSelector: podSel('c') }] }],
      }),
    );
    await check(
      all(true)
        .expect({}, { namespace: 'x', pod: 'a' }, false)
        .expect({ namespace: 'y', pod: 'c' }, { namespace: 'x', pod: 'a' }, true)
        .expect({ namespace: 'z', pod: 'c' }, { namespace: 'x', pod: 'a' }, true),
      80,
      'TCP',
    );
    await apply(
      np('x', 'and', {
        podSelector: podSel('a'),
        ingress: [{ from: [{ namespaceSelector: nsSel('y', 'z') }, { podSelector: podSel('c') }] }],
      }),
    );
    await check(
      all(true)
        .expect({}, { namespace: 'x', pod: 'a' }, false)
        .expect({ namespace: 'y' }, { namespace: 'x', pod: 'a' }, true)
        .expect({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, true)
        .expect({ namespace: 'x', pod: 'c' }, { namespace: 'x', pod: 'a' }, true),
      80,
      'TCP',
    );
  });

  test('ipBlock with except admits the block minus the exception, per address family', async () => {
    // y/b is 10.42.0.5 and fd00:42::5; z/b is 10.42.0.8 and fd00:42::8.
    await apply(
      np('x', 'cidr', {
        podSelector: podSel('a'),
        ingress: [
          {
            from: [
              { ipBlock: { cidr: '10.42.0.0/24', except: ['10.42.0.5/32'] } },
              { ipBlock: { cidr: 'fd00:42::/64', except: ['fd00:42::8/128'] } },
            ],
          },
        ],
      }),
    );
    const to = { namespace: 'x', pod: 'a' };
    await check(all(true).expect({ namespace: 'y', pod: 'b' }, to, false), 80, 'TCP');
    await check(all(true).expect({ namespace: 'z', pod: 'b' }, to, false), 80, 'TCP', 6);
  });

  test('named ports resolve on the destination pod with their protocol', async () => {
    await apply(
      np('x', 'named', {
        podSelector: podSel('a'),
        ingress: [
          {
            ports: [
              { port: 'serve-81-tcp' },
              { protocol: 'UDP', port: 'serve-80-udp' },
              // No UDP port is named serve-81-tcp: this entry matches nothing.
              { protocol: 'UDP', port: 'serve-81-tcp' },
            ],
          },
        ],
      }),
    );
    const closed = all(true).expect({}, { namespace: 'x', pod: 'a' }, false);
    await check(all(true), 81, 'TCP');
    await check(closed, 80, 'TCP');
    await check(all(true), 80, 'UDP');
    await check(closed, 81, 'UDP');
  });

  test('endPort admits the inclusive range only', async () => {
    await apply(
      np('x', 'range', {
        podSelector: podSel('a'),
        ingress: [{ ports: [{ protocol: 'TCP', port: 81, endPort: 1000 }] }],
      }),
    );
    const closed = all(true).expect({}, { namespace: 'x', pod: 'a' }, false);
    await check(all(true), 81, 'TCP');
    await check(closed, 80, 'TCP');
    await check(closed, 81, 'UDP');
  });

  test('UDP-only and SCTP-only rules admit no TCP, and SCTP rules are programmed', async () => {
    await apply(
      np('x', 'udp', { podSelector: podSel('a'), ingress: [{ ports: [{ protocol: 'UDP', port: 80 }] }] }),
      np('x', 'sctp', {
        podSelector: podSel('b'),
        ingress: [
          {
            ports: [
              { protocol: 'SCTP', port: 80 },
              { protocol: 'SCTP', port: 'serve-81-sctp' },
            ],
          },
        ],
      }),
    );
    await check(all(true).expect({}, { namespace: 'x', pod: 'b' }, false), 80, 'UDP');
    await check(
      all(true)
        .expect({}, { namespace: 'x', pod: 'a' }, false)
        .expect({}, { namespace: 'x', pod: 'b' }, false),
      80,
      'TCP',
    );
    const probe = await lab.probe(lab.pod('y/a'), lab.pod('x/b'), 80, 'SCTP');
    expect(probe.result, 'SCTP unsupported by this kernel').toBe('unsupported');
    const rules = (await lab.nodeExec('iptables-save', ['-t', 'filter'])).stdout;
    expect(rules).toMatch(/-A tern-pi-\S+ -p sctp -m sctp --dport 80 -g tern-allow/);
    expect(rules).toMatch(/-A tern-pi-\S+ -p sctp -m set --match-set tern-4n-\S+ dst,dst -g tern-allow/);
    const sets = (await lab.nodeExec('ipset', ['save'])).stdout;
    expect(sets).toContain(`${lab.pod('x/b').ip4},sctp:81`);
  });

  test('egress to a namespace lets the pod reach that namespace only', async () => {
    await apply(
      np('x', 'to-y', {
        podSelector: podSel('a'),
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: nsSel('y') }] }],
      }),
    );
    const reach = all(true)
      .expect({ namespace: 'x', pod: 'a' }, {}, false)
      .expect({ namespace: 'x', pod: 'a' }, { namespace: 'y' }, true);
    await check(reach, 80, 'TCP');
    await check(reach, 80, 'UDP');
  });

  test('egress of the sender and ingress of the receiver both apply between pods of one node', async () => {
    await apply(
      np('x', 'a-egress', {
        podSelector: podSel('a'),
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: nsSel('z') }] }],
      }),
      np('y', 'b-ingress', {
        podSelector: podSel('b'),
        ingress: [{ from: [{ namespaceSelector: nsSel('x') }] }],
      }),
    );
    await check(
      all(true)
        .expect({ namespace: 'x', pod: 'a' }, {}, false)
        .expect({ namespace: 'x', pod: 'a' }, { namespace: 'z' }, true)
        .expect({}, { namespace: 'y', pod: 'b' }, false)
        .expect({ namespace: 'x' }, { namespace: 'y', pod: 'b' }, true)
        .expect({ namespace: 'x', pod: 'a' }, { namespace: 'y', pod: 'b' }, false),
      80,
      'TCP',
    );
  });

  test('several policies selecting one pod admit the union of their rules', async () => {
    await apply(
      np('x', 'from-yb', {
        podSelector: podSel('a'),
        ingress: [{ from: [{ namespaceSelector: nsSel('y'), podSelector: podSel('b') }] }],
      }),
      np('x', 'from-z', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: nsSel('z') }] }] }),
      np('x', 'egress-only', { podSelector: podSel('a'), policyTypes: ['Egress'], egress: [{}] }),
    );
    await check(
      all(true)
        .expect({}, { namespace: 'x' }, false)
        .expect({ namespace: 'z' }, { namespace: 'x' }, true)
        .expect({ namespace: 'y', pod: 'b' }, { namespace: 'x', pod: 'a' }, true),
      80,
      'TCP',
    );
  });

  test('a policy updated takes its new rules, and deleted opens the pod again', async () => {
    const to = { namespace: 'x', pod: 'a' };
    await apply(
      np('x', 'p', { podSelector: podSel('a'), ingress: [{ from: [{ podSelector: podSel('b') }] }] }),
    );
    await check(all(true).expect({}, to, false).expect({ namespace: 'x', pod: 'b' }, to, true), 80, 'TCP');
    await apply(
      np('x', 'p', { podSelector: podSel('a'), ingress: [{ from: [{ podSelector: podSel('c') }] }] }),
    );
    await check(all(true).expect({}, to, false).expect({ namespace: 'x', pod: 'c' }, to, true), 80, 'TCP');
    engine.removePolicy('x', 'p');
    installed.splice(0);
    await engine.sync();
    await check(all(true), 80, 'TCP');
  });

  test('a pod label change moves the pod between sets without rewriting chains', async () => {
    const to = { namespace: 'x', pod: 'a' };
    await apply(
      np('x', 'from-b', { podSelector: podSel('a'), ingress: [{ from: [{ podSelector: podSel('b') }] }] }),
    );
    // x/c takes the label pod=b; x/b loses it.
    engine.upsertPod(lab.policyPod(lab.pod('x/c'), { pod: 'b' }));
    engine.upsertPod(lab.policyPod(lab.pod('x/b'), { pod: 'other' }));
    const result = await engine.sync();
    expect(result.chainsWritten).toBe(0);
    expect(result.setMemberOps).toBeGreaterThan(0);
    await check(all(true).expect({}, to, false).expect({ namespace: 'x', pod: 'c' }, to, true), 80, 'TCP');
  });

  test('the kernel holds exactly what the engine rendered, and explain agrees with the probes', async () => {
    await apply(
      np('x', 'from-y', {
        podSelector: podSel('a'),
        ingress: [{ from: [{ namespaceSelector: nsSel('y') }] }],
      }),
    );
    expect(await engine.checkDrift()).toEqual([]);
    expect((await lab.nodeExec('iptables-save', ['-t', 'filter'])).stdout).toMatch(
      /-A tern-to-wl -o tern[0-9a-f]\+ -g tern-to-wl-[0-9a-f]/,
    );
    const allowed = engine.explain('x', 'a', { from: { pod: { namespace: 'y', name: 'c' } }, port: 80 });
    const denied = engine.explain('x', 'a', { from: { pod: { namespace: 'z', name: 'c' } }, port: 80 });
    expect(allowed.verdict).toBe('allow');
    expect(denied.verdict).toBe('deny');
    expect((await lab.probe(lab.pod('y/c'), lab.pod('x/a'), 80, 'TCP')).result).toBe('ok');
    expect((await lab.probe(lab.pod('z/c'), lab.pod('x/a'), 80, 'TCP', 4, 500)).result).toBe('blocked');
  });
});
