// `ternctl policy explain`: which policies select a pod, and for a given peer and port the
// verdict and the rule that decided it. It walks the same rule model and set members the
// chains were rendered from, tier by tier as the endpoint chains do.
import { containsIp, parseCidr, parseIp, ValidationError } from '../model/index.js';
import { canonicalIp, familyOf } from './membership.js';
import type { PolicyState } from './state.js';
import {
  podKey,
  TIERS,
  type Direction,
  type PolicyPod,
  type PolicyRules,
  type Protocol,
  type Rule,
  type SetRef,
  type TierName,
} from './types.js';

export type ExplainPeer = { readonly pod: { namespace: string; name: string } } | { readonly ip: string };

export interface ExplainQuery {
  /** Traffic from this peer into the pod (ingress of the pod, egress of the peer if a pod). */
  readonly from?: ExplainPeer;
  /** Traffic from the pod to this peer (egress of the pod, ingress of the peer if a pod). */
  readonly to?: ExplainPeer;
  /** Destination port: a number, or a container port name resolved on the destination pod. */
  readonly port?: number | string;
  /** Default TCP. */
  readonly protocol?: Protocol;
}

export interface Decision {
  readonly direction: Direction;
  /** The pod whose policies were consulted (the receiver for ingress, the sender for egress). */
  readonly pod: string;
  readonly verdict: 'allow' | 'deny';
  /** The deciding policy and rule (e.g. `ingress[0]`), when a rule decided. */
  readonly policy?: string;
  readonly tier?: TierName;
  readonly rule?: string;
  readonly text: string;
}

export interface Explanation {
  readonly pod: string;
  readonly selectedBy: { readonly ingress: readonly string[]; readonly egress: readonly string[] };
  /** Present when a peer was given: allowed only if every decision allows. */
  readonly verdict?: 'allow' | 'deny';
  readonly decisions: readonly Decision[];
}

export function explain(
  state: PolicyState,
  target: { namespace: string; name: string },
  query: ExplainQuery = {},
): Explanation {
  const pod = state.pod(target.namespace, target.name);
  if (!pod) throw new ValidationError('pod', `pod ${podKey(target)} is not known`);
  const selectedBy = {
    ingress: state.policiesSelecting(pod, 'ingress').map((p) => p.id),
    egress: state.policiesSelecting(pod, 'egress').map((p) => p.id),
  };
  if (query.from && query.to) throw new ValidationError('query', 'give either from or to, not both');
  const peerSpec = query.from ?? query.to;
  if (!peerSpec) return { pod: podKey(pod), selectedBy, decisions: [] };

  const peer = resolvePeer(state, peerSpec);
  const [src, dst] = query.from ? [peer, { pod, ip: undefined }] : [{ pod, ip: undefined }, peer];
  const family = pickFamily(src, dst);
  const srcIp = src.ip ?? ipOf(src.pod!, family);
  const dstIp = dst.ip ?? ipOf(dst.pod!, family);
  const protocol = query.protocol ?? 'TCP';
  const port = resolvePort(query.port, protocol, dst.pod);

  const decisions: Decision[] = [];
  const flow = { srcIp, dstIp, port, protocol };
  if (src.pod) decisions.push(decide(state, src.pod, 'egress', flow));
  if (dst.pod) decisions.push(decide(state, dst.pod, 'ingress', flow));
  const verdict = decisions.every((d) => d.verdict === 'allow') ? 'allow' : 'deny';
  return { pod: podKey(pod), selectedBy, verdict, decisions };
}

interface Endpoint {
  readonly pod: PolicyPod | undefined;
  readonly ip: string | undefined;
}

interface Flow {
  readonly srcIp: string;
  readonly dstIp: string;
  readonly port: number | undefined;
  readonly protocol: Protocol;
}

function resolvePeer(state: PolicyState, peer: ExplainPeer): Endpoint {
  if ('ip' in peer) {
    const ip = canonicalIp(peer.ip);
    const owner = [...state.allPods()].find((p) => p.ips.some((a) => canonicalIp(a) === ip));
    return { pod: owner, ip };
  }
  const p = state.pod(peer.pod.namespace, peer.pod.name);
  if (!p) throw new ValidationError('peer', `pod ${podKey(peer.pod)} is not known`);
  return { pod: p, ip: undefined };
}

function pickFamily(a: Endpoint, b: Endpoint): 4 | 6 {
  for (const e of [a, b]) if (e.ip) return familyOf(e.ip);
  const has = (e: Endpoint, f: 4 | 6) => e.pod!.ips.some((ip) => familyOf(ip) === f);
  return has(a, 4) && has(b, 4) ? 4 : 6;
}

function ipOf(pod: PolicyPod, family: 4 | 6): string {
  const ip = pod.ips.find((a) => familyOf(a) === family);
  if (!ip) throw new ValidationError('pod', `pod ${podKey(pod)} has no IPv${family} address`);
  return canonicalIp(ip);
}

function resolvePort(port: number | string | undefined, protocol: Protocol, dst: PolicyPod | undefined) {
  if (port === undefined || typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const named = dst?.ports.find((p) => p.name === port && p.protocol === protocol);
  if (!named) {
    throw new ValidationError(
      'port',
      `the destination has no ${protocol} container port named ${JSON.stringify(port)}`,
    );
  }
  return named.port;
}

function inSet(state: PolicyState, ref: SetRef, ip: string): boolean {
  const spec = ref.spec;
  if (spec.kind === 'cidr') {
    const addr = parseIp(ip);
    return containsIp(parseCidr(spec.cidr), addr) && !spec.except.some((e) => containsIp(parseCidr(e), addr));
  }
  return state.setHas(ref, familyOf(ip), ip);
}

function ruleMatches(state: PolicyState, rule: Rule, direction: Direction, flow: Flow): boolean {
  const peerIp = direction === 'ingress' ? flow.srcIp : flow.dstIp;
  const peerOk = rule.peers === null || rule.peers.some((ref) => inSet(state, ref, peerIp));
  if (!peerOk) return false;
  if (rule.ports === null) return true;
  return rule.ports.some((p) => {
    if (p.protocol !== flow.protocol) return false;
    if (p.kind === 'protocol') return true;
    if (flow.port === undefined) return false;
    if (p.kind === 'range') return flow.port >= p.from && flow.port <= p.to;
    const member = `${flow.dstIp},${flow.protocol.toLowerCase()}:${flow.port}`;
    return state.setHas(p.set, familyOf(flow.dstIp), member);
  });
}

function decide(state: PolicyState, subject: PolicyPod, direction: Direction, flow: Flow): Decision {
  const pod = podKey(subject);
  const policies = state.policiesSelecting(subject, direction);
  const base = { direction, pod };
  if (policies.length === 0) {
    return { ...base, verdict: 'allow', text: `${pod}: no policy selects it for ${direction}; not isolated` };
  }
  // Pass rules met on the way, for the text: they explain why a later tier decided.
  const passed: string[] = [];
  const via = () => (passed.length > 0 ? ` (after ${passed.join(', ')})` : '');
  for (const tier of TIERS) {
    const inTier = policies.filter((p) => p.tier === tier.name);
    if (inTier.length === 0) continue;
    const hit = firstMatch(state, inTier, direction, flow);
    if (hit && hit.rule.action !== 'pass') {
      const verdict = hit.rule.action === 'allow' ? 'allow' : 'deny';
      return {
        ...base,
        verdict,
        policy: hit.policy.id,
        tier: tier.name,
        rule: hit.rule.origin,
        text: `${pod}: ${direction} ${verdict === 'allow' ? 'allowed' : 'denied'} by ${hit.policy.id} ${hit.rule.origin}, ${tier.name} tier${via()}`,
      };
    }
    if (hit) passed.push(`pass by ${hit.policy.id} ${hit.rule.origin}, ${tier.name} tier`);
    if (!hit && tier.onNoMatch === 'deny') {
      return {
        ...base,
        verdict: 'deny',
        tier: tier.name,
        text: `${pod}: isolated for ${direction} by ${inTier.map((p) => p.id).join(', ')}; no rule allows this traffic${via()}`,
      };
    }
  }
  return {
    ...base,
    verdict: 'allow',
    text: `${pod}: no tier decided ${direction}; allowed by default${via()}`,
  };
}

function firstMatch(
  state: PolicyState,
  policies: readonly PolicyRules[],
  direction: Direction,
  flow: Flow,
): { policy: PolicyRules; rule: Rule } | undefined {
  for (const policy of policies) {
    for (const rule of policy[direction] ?? []) {
      if (ruleMatches(state, rule, direction, flow)) return { policy, rule };
    }
  }
  return undefined;
}

/** Human-readable lines for `ternctl policy explain`. */
export function formatExplanation(e: Explanation): string {
  const list = (ids: readonly string[]) => (ids.length > 0 ? ids.join(', ') : '(none: not isolated)');
  const lines = [
    `pod ${e.pod}`,
    `  ingress policies: ${list(e.selectedBy.ingress)}`,
    `  egress policies:  ${list(e.selectedBy.egress)}`,
  ];
  if (e.verdict) {
    lines.push(`verdict: ${e.verdict.toUpperCase()}`);
    for (const d of e.decisions) lines.push(`  ${d.verdict === 'allow' ? '✓' : '✗'} ${d.text}`);
  }
  return lines.join('\n');
}
