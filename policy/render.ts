// Rule model → iptables rule lines, in exactly the form `iptables-save` prints them back, so
// that drift detection is a plain comparison.
import { HOST_VETH_PREFIX } from '../model/index.js';
import { CHAINS, endpointChain, policyChain } from './names.js';
import type { Direction, Family, Marks, PolicyRules, PortMatch, Rule, SetRef } from './types.js';
import { TIERS } from './types.js';

const hex = (n: number): string => `0x${n.toString(16)}`;
const WL = `${HOST_VETH_PREFIX}+`;

/** The builtin chains tern hooks, and the tern chain each jumps to. */
export const HOOKS: readonly (readonly [string, string])[] = [
  ['FORWARD', CHAINS.forward],
  ['INPUT', CHAINS.input],
];

export const hookRule = ([builtin, chain]: readonly [string, string]): string => `-A ${builtin} -j ${chain}`;

/** Chains that do not depend on policy: conntrack, dispatch entry points and the verdict helpers. */
export function staticChains(family: Family, marks: Marks): Map<string, string[]> {
  const fwd = CHAINS.forward;
  const inp = CHAINS.input;
  const chains = new Map<string, string[]>();
  chains.set(fwd, [
    // Replies and continuations of allowed connections pass before any policy.
    `-A ${fwd} -i ${WL} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${fwd} -o ${WL} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${fwd} -i ${WL} -m conntrack --ctstate INVALID -j DROP`,
    `-A ${fwd} -o ${WL} -m conntrack --ctstate INVALID -j DROP`,
    // Egress of the sending pod, then ingress of the receiving pod (both when pod to pod on this node).
    `-A ${fwd} -i ${WL} -j ${CHAINS.fromWorkload}`,
    `-A ${fwd} -o ${WL} -j ${CHAINS.toWorkload}`,
    `-A ${fwd} -i ${WL} -j ACCEPT`,
    `-A ${fwd} -o ${WL} -j ACCEPT`,
  ]);
  // Pod → this node: the pod's egress policy applies; what it allows goes on to the host's own rules.
  // Traffic from this node to a pod (OUTPUT) is never filtered: the node may always reach its pods.
  chains.set(inp, [
    `-A ${inp} -i ${WL} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    ...(family === 6
      ? [133, 135, 136].map((t) => `-A ${inp} -i ${WL} -p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j RETURN`)
      : []),
    `-A ${inp} -i ${WL} -j ${CHAINS.fromWorkload}`,
  ]);
  chains.set(CHAINS.allow, [
    `-A ${CHAINS.allow} -j MARK --set-xmark ${hex(marks.accept)}/${hex(marks.accept)}`,
  ]);
  chains.set(CHAINS.pass, [`-A ${CHAINS.pass} -j MARK --set-xmark ${hex(marks.pass)}/${hex(marks.pass)}`]);
  return chains;
}

function portFragments(
  ports: readonly PortMatch[] | null,
  setNameOf: (ref: SetRef) => string | null,
): string[] {
  if (ports === null) return [''];
  return ports.flatMap((p) => {
    const proto = p.protocol.toLowerCase();
    switch (p.kind) {
      case 'protocol':
        return [`-p ${proto}`];
      case 'range':
        return [`-p ${proto} -m ${proto} --dport ${p.from === p.to ? p.from : `${p.from}:${p.to}`}`];
      case 'named': {
        const set = setNameOf(p.set);
        return set ? [`-p ${proto} -m set --match-set ${set} dst,dst`] : [];
      }
    }
  });
}

function peerFragments(
  peers: readonly SetRef[] | null,
  direction: Direction,
  setNameOf: (ref: SetRef) => string | null,
): string[] {
  if (peers === null) return [''];
  const dir = direction === 'ingress' ? 'src' : 'dst';
  return peers.flatMap((ref) => {
    const set = setNameOf(ref);
    return set ? [`-m set --match-set ${set} ${dir}`] : [];
  });
}

const TARGET: Record<Rule['action'], string> = {
  allow: `-g ${CHAINS.allow}`,
  deny: '-j DROP',
  pass: `-g ${CHAINS.pass}`,
};

/**
 * One policy's rules for one direction and family. A rule is the cross product of its ports and
 * peers; `setNameOf` returns null for a set that does not exist in this family (an IPv6 ipBlock
 * in the IPv4 table), and a rule left with no peer or no port matches nothing here.
 */
export function policyChainRules(
  policy: PolicyRules,
  direction: Direction,
  setNameOf: (ref: SetRef) => string | null,
): string[] {
  const chain = policyChain(policy.id, direction);
  const rules = policy[direction] ?? [];
  const lines: string[] = [];
  for (const rule of rules) {
    const ports = portFragments(rule.ports, setNameOf);
    const peers = peerFragments(rule.peers, direction, setNameOf);
    for (const port of ports) {
      for (const peer of peers) {
        lines.push(['-A', chain, port, peer, TARGET[rule.action]].filter((s) => s !== '').join(' '));
      }
    }
  }
  return lines;
}

/**
 * The chain a local pod's traffic in one direction goes through: its policies tier by tier.
 * An allowing policy chain sets the accept mark (RETURN: allowed); a `pass` sets the pass mark,
 * which skips the rest of its tier; a NetworkPolicy tier that selected the pod and allowed
 * nothing drops. Falling off the end means no tier decided: allowed.
 */
export function endpointChainRules(
  chain: string,
  direction: Direction,
  policies: readonly PolicyRules[],
  marks: Marks,
): string[] {
  const lines = [`-A ${chain} -j MARK --set-xmark 0x0/${hex(marks.accept | marks.pass)}`];
  for (const tier of TIERS) {
    const inTier = policies.filter((p) => p.tier === tier.name && p[direction] !== null);
    if (inTier.length === 0) continue;
    const guard = tier.canPass ? `-m mark --mark 0x0/${hex(marks.pass)} ` : '';
    for (const p of inTier) {
      lines.push(`-A ${chain} ${guard}-j ${policyChain(p.id, direction)}`);
      lines.push(`-A ${chain} -m mark --mark ${hex(marks.accept)}/${hex(marks.accept)} -j RETURN`);
    }
    if (tier.onNoMatch === 'deny') lines.push(`-A ${chain} ${guard}-j DROP`);
    if (tier.canPass) lines.push(`-A ${chain} -j MARK --set-xmark 0x0/${hex(marks.pass)}`);
  }
  return lines;
}

/** Above this many endpoints, dispatch goes through one sub-chain per veth-name hex digit. */
export const DISPATCH_TREE_THRESHOLD = 16;

/**
 * Interface dispatch: each local endpoint's veth to its endpoint chain. Packets arriving from a
 * veth are the pod's egress; packets leaving to it, its ingress. With many endpoints the
 * dispatch is two levels deep, keyed by the first hash character of the veth name
 * (`tern<h>…`), so a new connection tests about 1/16 of the interfaces instead of all.
 */
export function dispatchChains(
  endpoints: readonly { podKey: string; interfaces: readonly string[]; ingress: boolean; egress: boolean }[],
  treeAbove = DISPATCH_TREE_THRESHOLD,
): Map<string, string[]> {
  const rows = endpoints.flatMap((e) => e.interfaces.map((iface) => ({ ...e, iface })));
  rows.sort((a, b) => (a.iface < b.iface ? -1 : a.iface > b.iface ? 1 : 0));
  const chains = new Map<string, string[]>();
  for (const [top, direction, flag] of [
    [CHAINS.fromWorkload, 'egress', '-i'],
    [CHAINS.toWorkload, 'ingress', '-o'],
  ] as const) {
    const mine = rows.filter((r) => r[direction]);
    const rule = (chain: string, r: (typeof rows)[number]) =>
      `-A ${chain} ${flag} ${r.iface} -g ${endpointChain(r.podKey, direction)}`;
    const topLines: string[] = [];
    chains.set(top, topLines);
    if (mine.length <= treeAbove) {
      topLines.push(...mine.map((r) => rule(top, r)));
      continue;
    }
    const buckets = new Map<string, string[]>();
    for (const r of mine) {
      const digit = r.iface.startsWith(HOST_VETH_PREFIX) ? r.iface.charAt(HOST_VETH_PREFIX.length) : '';
      if (!/^[0-9a-f]$/.test(digit)) {
        topLines.push(rule(top, r));
        continue;
      }
      const sub = `${top}-${digit}`;
      if (!buckets.has(sub)) {
        buckets.set(sub, []);
        topLines.push(`-A ${top} ${flag} ${HOST_VETH_PREFIX}${digit}+ -g ${sub}`);
      }
      buckets.get(sub)!.push(rule(sub, r));
    }
    for (const [sub, lines] of buckets) chains.set(sub, lines);
  }
  return chains;
}
