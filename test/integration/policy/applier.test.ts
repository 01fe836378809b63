// The applier in a node namespace: other tools' chains, rules and sets survive; tern's stale
// chains and sets go; drift is found and repaired; the CNI signal waits for programming.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NetworkPolicy } from '../../../model/index.js';
import {
  netnsRunner,
  PolicyApplier,
  PolicyEngine,
  UnavailableError,
  type PolicyPod,
} from '../../../policy/index.js';
import { NetnsSet } from '../../support/netns.js';

const netns = new NetnsSet();
let ns: string;
const sh = (cmd: string, args: string[], input?: string) => netnsRunner(ns)(cmd, args, input);

beforeAll(async () => {
  ns = await netns.add('polnode');
  // Another tool's chain, jump, rule and set, there before tern.
  await sh('iptables', ['-N', 'FOREIGN']);
  await sh('iptables', ['-A', 'FOREIGN', '-s', '192.0.2.1/32', '-j', 'DROP']);
  await sh('iptables', ['-A', 'FORWARD', '-j', 'FOREIGN']);
  await sh('iptables', ['-A', 'INPUT', '-p', 'tcp', '-m', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
  await sh('ip6tables', ['-A', 'FORWARD', '-s', '2001:db8::1/128', '-j', 'DROP']);
  await sh('ipset', ['create', 'foreign-set', 'hash:ip']);
  await sh('ipset', ['add', 'foreign-set', '192.0.2.7']);
});

afterAll(async () => {
  await engine?.close();
  await netns.cleanup();
});

let engine: PolicyEngine;
const NODE = 'n1';
function pod(name: string, ip: string, labels: Record<string, string>, local = true): PolicyPod {
  return {
    namespace: 'x',
    name,
    labels,
    ips: [ip, `fd00::${ip.split('.')[3]}`],
    node: local ? NODE : 'n2',
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    hostInterfaces: local ? [`ternapp${name}0000`.slice(0, 15)] : [],
  };
}
const policy = (name: string, from: string): NetworkPolicy => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { namespace: 'x', name },
  spec: {
    podSelector: { matchLabels: { app: 'db' } },
    ingress: [{ from: [{ podSelector: { matchLabels: { app: from } } }] }],
  },
});

async function foreignIntact(): Promise<void> {
  const v4 = await sh('iptables-save', ['-t', 'filter']);
  expect(v4).toContain('-A FOREIGN -s 192.0.2.1/32 -j DROP');
  expect(v4).toContain('-A FORWARD -j FOREIGN');
  expect(v4).toContain('-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT');
  expect(await sh('ip6tables-save', ['-t', 'filter'])).toContain('-A FORWARD -s 2001:db8::1/128 -j DROP');
  expect(await sh('ipset', ['save', 'foreign-set'])).toContain('add foreign-set 192.0.2.7');
}

const ternLines = (save: string) => save.split('\n').filter((l) => l.includes('tern-'));

describe('PolicyApplier and PolicyEngine against a real netfilter', () => {
  test('applying, updating and removing leaves every foreign chain, rule and set intact', async () => {
    engine = new PolicyEngine({ nodeName: NODE, runner: netnsRunner(ns) });
    engine.upsertNamespace({ name: 'x', labels: {} });
    engine.upsertPod(pod('db', '10.1.0.1', { app: 'db' }));
    engine.upsertPod(pod('web', '10.1.0.2', { app: 'web' }, false));
    engine.upsertPolicy(policy('db', 'web'));
    const first = await engine.sync();
    expect(first.mode).toBe('full');
    await foreignIntact();
    const v4 = await sh('iptables-save', ['-t', 'filter']);
    // tern's jumps come first in the builtin chains, once each.
    expect(v4.split('\n').filter((l) => l === '-A FORWARD -j tern-FORWARD')).toHaveLength(1);
    expect(v4.split('\n').filter((l) => l.startsWith('-A FORWARD '))[0]).toBe('-A FORWARD -j tern-FORWARD');
    expect(await engine.checkDrift()).toEqual([]);

    engine.upsertPolicy(policy('db', 'api'));
    const second = await engine.sync();
    expect(second.mode).toBe('delta');
    expect(second.setsRemoved).toBeGreaterThan(0);
    expect(await engine.checkDrift()).toEqual([]);
    await foreignIntact();
  });

  test('a second engine (agent restart) adopts the existing state without duplicating jumps', async () => {
    const restarted = new PolicyEngine({ nodeName: NODE, runner: netnsRunner(ns) });
    restarted.upsertNamespace({ name: 'x', labels: {} });
    restarted.upsertPod(pod('db', '10.1.0.1', { app: 'db' }));
    await restarted.sync(); // no policy any more: every policy chain and set of the first engine is stale
    const v4 = await sh('iptables-save', ['-t', 'filter']);
    expect(v4.split('\n').filter((l) => l === '-A FORWARD -j tern-FORWARD')).toHaveLength(1);
    expect(ternLines(v4).filter((l) => /tern-p[ie]-|tern-w[ie]-/.test(l))).toEqual([]);
    expect((await sh('ipset', ['list', '-n'])).split('\n').filter((n) => n.startsWith('tern-'))).toEqual([]);
    await foreignIntact();
    await engine.close(); // the old agent is gone: its restore processes with it
    engine = restarted;
  });

  test('drift (a flushed chain, a deleted jump, a removed member) is reported and repaired', async () => {
    engine.upsertPod(pod('web', '10.1.0.2', { app: 'web' }, false));
    engine.upsertPolicy(policy('db', 'web'));
    await engine.sync();
    const want = await sh('iptables-save', ['-t', 'filter']);
    const set = (await sh('ipset', ['list', '-n'])).split('\n').find((n) => n.startsWith('tern-4p-'))!;
    await sh('iptables', ['-F', 'tern-to-wl']);
    await sh('iptables', ['-D', 'INPUT', '-j', 'tern-INPUT']);
    await sh('ipset', ['del', set, '10.1.0.2']);
    const drift = await engine.checkDrift();
    expect(drift).toEqual(
      expect.arrayContaining([
        'IPv4 chain tern-to-wl differs',
        'IPv4 jump -A INPUT -j tern-INPUT missing',
        `set ${set} members differ`,
      ]),
    );
    expect(await engine.checkDrift()).toEqual([]);
    expect(ternLines(await sh('iptables-save', ['-t', 'filter'])).sort()).toEqual(ternLines(want).sort());
    await foreignIntact();
  });

  test('endpointProgrammed resolves after the sync that programs the pod, and times out without one', async () => {
    engine.upsertPod(pod('db2', '10.1.0.3', { app: 'db' }));
    const waiting = engine.endpointProgrammed('x', 'db2', 5000);
    await engine.sync();
    await expect(waiting).resolves.toBeUndefined();
    expect(await sh('iptables-save', ['-t', 'filter'])).toContain('-o ternappdb20000 -g tern-wi-');
    engine.upsertPod(pod('db3', '10.1.0.4', { app: 'db' }));
    await expect(engine.endpointProgrammed('x', 'db3', 100)).rejects.toBeInstanceOf(UnavailableError);
    await engine.sync();
  });

  test('uninstall removes every tern chain, jump and set and nothing else', async () => {
    await engine.uninstall();
    expect(ternLines(await sh('iptables-save', ['-t', 'filter']))).toEqual([]);
    expect(ternLines(await sh('ip6tables-save', ['-t', 'filter']))).toEqual([]);
    expect((await sh('ipset', ['list', '-n'])).split('\n').filter((n) => n.startsWith('tern-'))).toEqual([]);
    await foreignIntact();
    // An applier on an empty table is a no-op remove.
    await new PolicyApplier(netnsRunner(ns)).removeAll([4, 6]);
  });
});
