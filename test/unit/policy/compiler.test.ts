import { describe, expect, test } from 'vitest';
import {
  CHAINS,
  compile,
  endpointChain,
  networkPolicyId,
  policyChain,
  setName,
  PolicyState,
  type Compiled,
  type PolicyPod,
} from '../../../policy/index.js';
import { canonicalJson } from '../../../policy/canonical.js';
import { hostVethName, type NetworkPolicy } from '../../../model/index.js';
import { NODE, namespaces, np, pod, pods } from './fixtures.js';

const build = (policies: NetworkPolicy[], podList: PolicyPod[] = pods): Compiled =>
  compile({ nodeName: NODE, pods: podList, namespaces, policies });

const chain = (c: Compiled, name: string, family: 4 | 6 = 4) => c.desired.chains[family].get(name);
const pi = (ns: string, name: string) => policyChain(networkPolicyId(ns, name), 'ingress');
const pe = (ns: string, name: string) => policyChain(networkPolicyId(ns, name), 'egress');
const wi = (key: string) => endpointChain(key, 'ingress');
const we = (key: string) => endpointChain(key, 'egress');
const podSet = (spec: object, family: 4 | 6 = 4) => {
  const key = canonicalJson(spec);
  return setName(key, JSON.parse(key), family);
};
const cidrSet = (cidr: string, except: string[] = [], family: 4 | 6 = 4) =>
  podSet({ kind: 'cidr', cidr, except }, family);
const namedSet = (name: string, family: 4 | 6 = 4) => podSet({ kind: 'named-port', name }, family);
const members = (c: Compiled, name: string) => c.desired.sets.get(name)?.members;
const sel = (labels: Record<string, string>) => ({ matchLabels: labels });

describe('compiler: chain layout', () => {
  test('with no policy only the static chains exist and no endpoint is dispatched', () => {
    const c = build([]);
    expect([...c.desired.chains[4].keys()].sort()).toEqual(
      [
        CHAINS.forward,
        CHAINS.input,
        CHAINS.fromWorkload,
        CHAINS.toWorkload,
        CHAINS.allow,
        CHAINS.pass,
      ].sort(),
    );
    expect(chain(c, CHAINS.forward)).toEqual([
      '-A tern-FORWARD -i tern+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A tern-FORWARD -o tern+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A tern-FORWARD -i tern+ -m conntrack --ctstate INVALID -j DROP',
      '-A tern-FORWARD -o tern+ -m conntrack --ctstate INVALID -j DROP',
      '-A tern-FORWARD -i tern+ -j tern-from-wl',
      '-A tern-FORWARD -o tern+ -j tern-to-wl',
      '-A tern-FORWARD -i tern+ -j ACCEPT',
      '-A tern-FORWARD -o tern+ -j ACCEPT',
    ]);
    expect(chain(c, CHAINS.toWorkload)).toEqual([]);
    expect(chain(c, CHAINS.fromWorkload)).toEqual([]);
    expect(c.desired.sets.size).toBe(0);
    expect(c.text.iptables[4]).toContain('-I FORWARD 1 -j tern-FORWARD\n-I INPUT 1 -j tern-INPUT\nCOMMIT\n');
  });

  test('IPv6 lets neighbour discovery from pods reach the node before egress policy', () => {
    expect(chain(build([]), CHAINS.input, 6)).toEqual([
      '-A tern-INPUT -i tern+ -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-A tern-INPUT -i tern+ -p ipv6-icmp -m icmp6 --icmpv6-type 133 -j RETURN',
      '-A tern-INPUT -i tern+ -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j RETURN',
      '-A tern-INPUT -i tern+ -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j RETURN',
      '-A tern-INPUT -i tern+ -j tern-from-wl',
    ]);
  });

  test('default deny ingress: local selected pods get an endpoint chain that drops; remote pods get none', () => {
    const c = build([np('x', 'deny', { podSelector: {} }), np('y', 'deny', { podSelector: {} })]);
    expect(chain(c, pi('x', 'deny'))).toEqual([]);
    expect(chain(c, pe('x', 'deny'))).toBeUndefined();
    expect(chain(c, wi('x/a'))).toEqual([
      `-A ${wi('x/a')} -j MARK --set-xmark 0x0/0x30000`,
      `-A ${wi('x/a')} -j ${pi('x', 'deny')}`,
      `-A ${wi('x/a')} -m mark --mark 0x10000/0x10000 -j RETURN`,
      `-A ${wi('x/a')} -j DROP`,
    ]);
    expect(chain(c, CHAINS.toWorkload)).toEqual([
      `-A tern-to-wl -o ternxa0000000 -g ${wi('x/a')}`,
      `-A tern-to-wl -o ternxb0000000 -g ${wi('x/b')}`,
    ]);
    expect(chain(c, CHAINS.fromWorkload)).toEqual([]);
    expect(chain(c, wi('y/a'))).toBeUndefined();
  });

  test('policyTypes defaults: Ingress always, Egress only when egress rules exist', () => {
    const only = (spec: NetworkPolicy['spec']) => {
      const c = build([np('x', 'p', spec)]);
      return [chain(c, pi('x', 'p')) !== undefined, chain(c, pe('x', 'p')) !== undefined];
    };
    expect(only({ podSelector: {} })).toEqual([true, false]);
    expect(only({ podSelector: {}, egress: [] })).toEqual([true, false]);
    expect(only({ podSelector: {}, egress: [{}] })).toEqual([true, true]);
    expect(only({ podSelector: {}, policyTypes: ['Egress'] })).toEqual([false, true]);
    expect(only({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] })).toEqual([true, true]);
    expect(only({ podSelector: {}, policyTypes: ['Egress'], ingress: [{}] })).toEqual([false, true]);
  });

  test('several policies selecting a pod are called in turn (union), each shared by every endpoint', () => {
    const c = build([
      np('x', 'p2', { podSelector: sel({ pod: 'a' }), ingress: [{}] }),
      np('x', 'p1', { podSelector: {}, ingress: [{ ports: [{ port: 81 }] }] }),
    ]);
    const ordered = [networkPolicyId('x', 'p1'), networkPolicyId('x', 'p2')].sort();
    expect(chain(c, wi('x/a'))).toEqual([
      `-A ${wi('x/a')} -j MARK --set-xmark 0x0/0x30000`,
      ...ordered.flatMap((id) => [
        `-A ${wi('x/a')} -j ${policyChain(id, 'ingress')}`,
        `-A ${wi('x/a')} -m mark --mark 0x10000/0x10000 -j RETURN`,
      ]),
      `-A ${wi('x/a')} -j DROP`,
    ]);
    expect(chain(c, wi('x/b'))).toContain(`-A ${wi('x/b')} -j ${pi('x', 'p1')}`);
    expect(chain(c, pi('x', 'p2'))).toEqual([`-A ${pi('x', 'p2')} -g tern-allow`]);
    expect(chain(c, pi('x', 'p1'))).toEqual([`-A ${pi('x', 'p1')} -p tcp -m tcp --dport 81 -g tern-allow`]);
  });

  test('egress isolation dispatches packets arriving from the pod veth', () => {
    const c = build([np('x', 'e', { podSelector: sel({ pod: 'b' }), policyTypes: ['Egress'] })]);
    expect(chain(c, CHAINS.fromWorkload)).toEqual([`-A tern-from-wl -i ternxb0000000 -g ${we('x/b')}`]);
    expect(chain(c, we('x/b'))).toContain(`-A ${we('x/b')} -j DROP`);
  });
});

test('with many local endpoints dispatch goes through one sub-chain per veth hash digit', () => {
  const many = Array.from({ length: 40 }, (_, i) => ({
    ...pod('x', `p${i}`, 10 + i, true),
    hostInterfaces: [hostVethName('x', `p${i}`, 'eth0')],
  }));
  const state = new PolicyState({ nodeName: NODE });
  for (const p of many) state.upsertPod(p);
  state.upsertNetworkPolicy(np('x', 'deny', { podSelector: {} }));
  const d = state.render();
  const top = d.chains[4].get(CHAINS.toWorkload)!;
  const subs = [...d.chains[4].keys()].filter((n) => n.startsWith('tern-to-wl-'));
  expect(top).toEqual(subs.map((sub) => `-A tern-to-wl -o tern${sub.at(-1)}+ -g ${sub}`));
  const dispatched = subs.flatMap((sub) => d.chains[4].get(sub)!);
  expect(dispatched).toHaveLength(40);
  for (const p of many) {
    const iface = p.hostInterfaces[0]!;
    expect(d.chains[4].get(`tern-to-wl-${iface.charAt(4)}`)).toContain(
      `-A tern-to-wl-${iface.charAt(4)} -o ${iface} -g ${wi(`x/${p.name}`)}`,
    );
  }
  // Back under the threshold: flat again, and the sub-chains are gone.
  for (const p of many.slice(3)) state.removePod('x', p.name);
  const flat = state.render();
  expect([...flat.chains[4].keys()].filter((n) => n.startsWith('tern-to-wl-'))).toEqual([]);
  expect(flat.chains[4].get(CHAINS.toWorkload)).toHaveLength(3);
});

describe('compiler: peers become sets', () => {
  test('podSelector alone selects pods of the policy namespace', () => {
    const c = build([
      np('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: sel({ pod: 'a' }) }] }] }),
    ]);
    const s = podSet({
      kind: 'pods',
      namespace: 'x',
      namespaceSelector: null,
      podSelector: sel({ pod: 'a' }),
    });
    expect(members(c, s)).toEqual(['10.0.0.1']);
    expect(members(c, s.replace('tern-4', 'tern-6'))).toEqual(['fd00::1']);
    expect(chain(c, pi('x', 'p'))).toEqual([`-A ${pi('x', 'p')} -m set --match-set ${s} src -g tern-allow`]);
  });

  test('namespaceSelector alone selects every pod of the matching namespaces', () => {
    const c = build([
      np('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: sel({ team: 'blue' }) }] }] }),
    ]);
    const s = podSet({
      kind: 'pods',
      namespace: null,
      namespaceSelector: sel({ team: 'blue' }),
      podSelector: {},
    });
    expect(members(c, s)).toEqual(['10.0.1.1', '10.0.1.2']);
  });

  test('namespaceSelector and podSelector in one peer are ANDed; in two peers ORed', () => {
    const and = build([
      np('x', 'p', {
        podSelector: {},
        ingress: [{ from: [{ namespaceSelector: sel({ team: 'blue' }), podSelector: sel({ pod: 'b' }) }] }],
      }),
    ]);
    const s = podSet({
      kind: 'pods',
      namespace: null,
      namespaceSelector: sel({ team: 'blue' }),
      podSelector: sel({ pod: 'b' }),
    });
    expect(members(and, s)).toEqual(['10.0.1.2']);
    const or = build([
      np('x', 'p', {
        podSelector: {},
        ingress: [
          { from: [{ namespaceSelector: sel({ team: 'blue' }) }, { podSelector: sel({ pod: 'b' }) }] },
        ],
      }),
    ]);
    expect(chain(or, pi('x', 'p'))).toHaveLength(2);
  });

  test('an empty namespaceSelector selects pods of every namespace, including unknown ones by name label', () => {
    const extra = pod('z', 'q', 9, false);
    const c = build(
      [
        np('x', 'p', {
          podSelector: {},
          ingress: [{ from: [{ namespaceSelector: {}, podSelector: sel({ pod: 'q' }) }] }],
        }),
      ],
      [...pods, extra],
    );
    const s = podSet({
      kind: 'pods',
      namespace: null,
      namespaceSelector: {},
      podSelector: sel({ pod: 'q' }),
    });
    expect(members(c, s)).toEqual(['10.0.1.9']);
    const byName = build(
      [
        np('x', 'p', {
          podSelector: {},
          ingress: [{ from: [{ namespaceSelector: sel({ 'kubernetes.io/metadata.name': 'z' }) }] }],
        }),
      ],
      [...pods, extra],
    );
    expect([...byName.desired.sets.values()].find((x) => x.family === 4)?.members).toEqual(['10.0.1.9']);
  });

  test('ipBlock with except is a hash:net with nomatch entries, in its own family only', () => {
    const c = build([
      np('x', 'p', {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.1.0/24', '10.0.0.9/32'] } }] }],
      }),
    ]);
    const s = cidrSet('10.0.0.0/16', ['10.0.0.9/32', '10.0.1.0/24']);
    expect(c.desired.sets.get(s)).toEqual({
      name: s,
      family: 4,
      type: 'hash:net',
      members: ['10.0.0.0/16', '10.0.0.9 nomatch', '10.0.1.0/24 nomatch'],
    });
    expect(chain(c, pi('x', 'p'))).toEqual([`-A ${pi('x', 'p')} -m set --match-set ${s} src -g tern-allow`]);
    // The IPv6 table has no rule: the only peer is IPv4, so the rule matches nothing there.
    expect(chain(c, pi('x', 'p'), 6)).toEqual([]);
    expect(c.text.ipset).toContain(`create ${s} hash:net family inet hashsize 1024 maxelem 1048576`);
  });

  test('ipBlock 0.0.0.0/0 is stored as two halves; an except covering the block drops the peer', () => {
    const c = build([
      np('x', 'p', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] }),
    ]);
    expect(members(c, cidrSet('0.0.0.0/0'))).toEqual(['0.0.0.0/1', '128.0.0.0/1']);
    const none = build([
      np('x', 'p', {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] } }] }],
      }),
    ]);
    expect(chain(none, pi('x', 'p'))).toEqual([]);
  });
});

describe('compiler: ports', () => {
  const rules = (ports: NonNullable<NetworkPolicy['spec']['ingress']>[number]['ports']) =>
    chain(build([np('x', 'p', { podSelector: {}, ingress: [{ ports }] })]), pi('x', 'p'))!.map((l) =>
      l.replace(`-A ${pi('x', 'p')} `, ''),
    );

  test('protocol defaults to TCP; UDP and SCTP numeric ports', () => {
    expect(rules([{ port: 80 }, { protocol: 'UDP', port: 53 }, { protocol: 'SCTP', port: 80 }])).toEqual([
      '-p tcp -m tcp --dport 80 -g tern-allow',
      '-p udp -m udp --dport 53 -g tern-allow',
      '-p sctp -m sctp --dport 80 -g tern-allow',
    ]);
  });

  test('a protocol without a port admits every port of it', () => {
    expect(rules([{ protocol: 'UDP' }])).toEqual(['-p udp -g tern-allow']);
  });

  test('endPort makes an inclusive range', () => {
    expect(
      rules([
        { port: 32000, endPort: 32768 },
        { protocol: 'UDP', port: 81, endPort: 81 },
      ]),
    ).toEqual(['-p tcp -m tcp --dport 32000:32768 -g tern-allow', '-p udp -m udp --dport 81 -g tern-allow']);
  });

  test('a named port matches ip,proto:port of the destination pod in a hash:ip,port set', () => {
    const c = build([np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-tcp' }] }] })]);
    const s = namedSet('serve-80-tcp');
    expect(chain(c, pi('x', 'p'))).toEqual([
      `-A ${pi('x', 'p')} -p tcp -m set --match-set ${s} dst,dst -g tern-allow`,
    ]);
    // x/b and y/b serve it on 81 (fixtures): resolution is per pod.
    expect(members(c, s)).toEqual([
      '10.0.0.1,tcp:80',
      '10.0.0.2,tcp:81',
      '10.0.1.1,tcp:80',
      '10.0.1.2,tcp:81',
    ]);
    expect(c.desired.sets.get(namedSet('serve-80-tcp', 6))?.type).toBe('hash:ip,port');
  });

  test('ports and peers of one rule form their cross product', () => {
    const c = build([
      np('x', 'p', {
        podSelector: {},
        ingress: [
          {
            from: [{ podSelector: sel({ pod: 'a' }) }, { ipBlock: { cidr: '192.168.0.0/16' } }],
            ports: [{ port: 80 }, { port: 81 }],
          },
        ],
      }),
    ]);
    expect(chain(c, pi('x', 'p'))).toHaveLength(4);
  });
});

describe('compiler: robustness', () => {
  test('invalid parts are dropped with a warning and never widen what is allowed', () => {
    const c = build([
      np('x', 'p', {
        podSelector: {},
        ingress: [
          { ports: [{ port: 'web', endPort: 90 }] },
          { from: [{ ipBlock: { cidr: 'not-a-cidr' } }] },
          { from: [{ podSelector: { matchExpressions: [{ key: 'k', operator: 'In', values: [] }] } }] },
        ],
      }),
    ]);
    expect(chain(c, pi('x', 'p'))).toEqual([]);
    expect(chain(c, wi('x/a'))).toContain(`-A ${wi('x/a')} -j DROP`);
    expect(c.warnings.get(networkPolicyId('x', 'p'))).toHaveLength(3);
  });

  test('identical input in any order compiles to identical text; names fit the kernel limits', () => {
    const policies = [
      np('x', 'p', {
        podSelector: {},
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a', z: '1' } } }] }],
      }),
      np('y', 'q', {
        podSelector: sel({ pod: 'b' }),
        policyTypes: ['Egress'],
        egress: [{ ports: [{ port: 'web' }] }],
      }),
    ];
    const a = compile({ nodeName: NODE, pods, namespaces, policies });
    const reordered = np('x', 'p', {
      podSelector: {},
      ingress: [{ from: [{ podSelector: { matchLabels: { z: '1', pod: 'a' } } }] }],
    });
    const b = compile({
      nodeName: NODE,
      pods: [...pods].reverse(),
      namespaces: [...namespaces].reverse(),
      policies: [policies[1]!, reordered],
    });
    expect(b.text).toEqual(a.text);
    for (const f of [4, 6] as const) {
      for (const name of a.desired.chains[f].keys()) {
        expect(name.startsWith('tern-')).toBe(true);
        expect(name.length).toBeLessThanOrEqual(28);
      }
    }
    for (const name of a.desired.sets.keys()) {
      expect(name.startsWith('tern-')).toBe(true);
      expect(`${name}-t`.length).toBeLessThanOrEqual(31);
    }
  });
});
