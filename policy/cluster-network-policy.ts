// ClusterNetworkPolicy (policy.networking.k8s.io v1beta1, network-policy-api v0.3.1) → PolicyRules
// of the `admin` or `baseline` tier, with the API's semantics:
// - priority orders policies within the tier, lower first; equal priorities are ordered by name
//   (the API leaves ties to the implementation; tern makes them deterministic);
// - rules apply in the order written, the first match decides: Accept (allow, rest of the tiers
//   skipped), Deny (drop, never reject), Pass (skip the rest of this tier);
// - a direction with no rules is not governed (no implicit isolation, unlike NetworkPolicy);
// - a peer type tern does not implement fails closed as the API asks: an Accept rule with one
//   matches nothing, a Deny or Pass rule with one becomes "Deny all".
import type { ClusterNetworkPolicy, CnpEgressPeer, CnpNamespacedPod, CnpProtocol } from '../model/index.js';
import { formatCidr, parseCidr } from '../model/index.js';
import { canonicalSelector } from './canonical.js';
import { setRef } from './network-policy.js';
import type { Action, PolicyRules, PortMatch, Protocol, Rule, SetRef } from './types.js';

export const clusterNetworkPolicyId = (name: string): string => `clusternetworkpolicy:${name}`;

/** Peer types of the API that tern does not program (yet). */
export const UNSUPPORTED_PEERS = ['nodes', 'domainNames'] as const;

const ACTIONS: Record<'Accept' | 'Deny' | 'Pass', Action> = { Accept: 'allow', Deny: 'deny', Pass: 'pass' };

export function clusterNetworkPolicyRules(cnp: ClusterNetworkPolicy): PolicyRules {
  const warnings: string[] = [];
  const { spec } = cnp;
  const compile = (
    rules: ReadonlyArray<{
      name?: string | undefined;
      action: keyof typeof ACTIONS;
      peers: readonly CnpEgressPeer[];
      protocols?: readonly CnpProtocol[] | undefined;
    }>,
    direction: 'ingress' | 'egress',
  ): Rule[] | null =>
    rules.length === 0
      ? null
      : rules.map((r, i) => {
          const origin = `${direction}[${i}]${r.name ? ` (${r.name})` : ''}`;
          const action = ACTIONS[r.action];
          const peers: SetRef[] = [];
          const unsupported: string[] = [];
          r.peers.forEach((p, j) => {
            const refs = peerSets(p);
            if (refs) peers.push(...refs);
            else unsupported.push(`${direction === 'ingress' ? 'from' : 'to'}[${j}] (${peerType(p)})`);
          });
          const ports = r.protocols ? r.protocols.flatMap(portMatches) : null;
          if (unsupported.length === 0) return { action, peers, ports, origin };
          const fallback = action === 'allow' ? 'matches nothing' : 'denies all traffic';
          warnings.push(
            `${origin}: peer type not implemented by tern: ${unsupported.join(', ')}; the rule ${fallback} (fail closed)`,
          );
          return action === 'allow'
            ? { action, peers: [], ports, origin }
            : { action: 'deny', peers: null, ports: null, origin };
        });
  return {
    id: clusterNetworkPolicyId(cnp.metadata.name),
    tier: spec.tier === 'Admin' ? 'admin' : 'baseline',
    priority: spec.priority,
    appliesTo: spec.subject.namespaces
      ? { namespace: null, namespaceSelector: canonicalSelector(spec.subject.namespaces), podSelector: {} }
      : podsSelector(spec.subject.pods!),
    ingress: compile(
      (spec.ingress ?? []).map((r) => ({ ...r, peers: r.from })),
      'ingress',
    ),
    egress: compile(
      (spec.egress ?? []).map((r) => ({ ...r, peers: r.to })),
      'egress',
    ),
    warnings,
  };
}

function podsSelector(pods: CnpNamespacedPod) {
  return {
    namespace: null,
    namespaceSelector: canonicalSelector(pods.namespaceSelector ?? {}),
    podSelector: canonicalSelector(pods.podSelector),
  };
}

const peerType = (p: CnpEgressPeer): string => Object.keys(p).join(',') || '(none)';

/** The sets a peer matches; undefined for a peer type tern does not implement. */
function peerSets(p: CnpEgressPeer): SetRef[] | undefined {
  if (p.namespaces)
    return [setRef({ kind: 'pods', ...podsSelector({ namespaceSelector: p.namespaces, podSelector: {} }) })];
  if (p.pods) return [setRef({ kind: 'pods', ...podsSelector(p.pods) })];
  if (p.networks) {
    return p.networks.map((text) => setRef({ kind: 'cidr', cidr: formatCidr(parseCidr(text)), except: [] }));
  }
  return undefined;
}

const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

function portMatches(p: CnpProtocol): PortMatch[] {
  if (p.destinationNamedPort !== undefined) {
    // A named port carries its own protocol (the container port's): the set's members are
    // ip,proto:port, so one match per protocol covers whichever the pod declares.
    const set = setRef({ kind: 'named-port', name: p.destinationNamedPort });
    return PROTOCOLS.map((protocol) => ({ kind: 'named', protocol, name: p.destinationNamedPort!, set }));
  }
  const [protocol, match] = p.tcp
    ? (['TCP', p.tcp] as const)
    : p.udp
      ? (['UDP', p.udp] as const)
      : (['SCTP', p.sctp!] as const);
  const port = match.destinationPort;
  if (port.range) return [{ kind: 'range', protocol, from: port.range.start, to: port.range.end }];
  return [{ kind: 'range', protocol, from: port.number!, to: port.number! }];
}
