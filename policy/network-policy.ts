// NetworkPolicy (networking.k8s.io/v1) → PolicyRules of the `networkpolicy` tier, with the
// API's semantics: policyTypes defaults, peers (podSelector / namespaceSelector / both / ipBlock),
// ports (TCP by default, numeric, named, endPort ranges). Parts the API server would reject are
// dropped with a warning, never widened: an invalid peer or port matches nothing.
import {
  containsCidr,
  formatCidr,
  parseCidr,
  validateSelector,
  type Cidr,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyPort,
} from '../model/index.js';
import { canonicalJson, canonicalSelector } from './canonical.js';
import type { PolicyRules, PortMatch, Rule, SetRef, SetSpec } from './types.js';

export const networkPolicyId = (namespace: string, name: string): string =>
  `networkpolicy:${namespace}/${name}`;

export function setRef(spec: SetSpec): SetRef {
  return { key: canonicalJson(spec), spec };
}

export function networkPolicyRules(np: NetworkPolicy): PolicyRules {
  const namespace = np.metadata.namespace!;
  const warnings: string[] = [];
  const spec = np.spec;
  // Defaults from the API: Ingress always; Egress when the policy has egress rules.
  const types = spec.policyTypes ?? [
    'Ingress',
    ...((spec.egress ?? []).length > 0 ? ['Egress' as const] : []),
  ];
  let podSelector = spec.podSelector;
  try {
    validateSelector(podSelector, 'spec.podSelector');
  } catch (e) {
    // A broken podSelector must not leave pods open that the author meant to isolate: fall back
    // to selecting every pod of the namespace (isolating more, never less).
    warnings.push(`${(e as Error).message}; selecting all pods of the namespace instead`);
    podSelector = {};
  }
  const compileRules = (
    rules: readonly { peers: NetworkPolicyPeer[] | undefined; ports: NetworkPolicyPort[] | undefined }[],
    direction: 'ingress' | 'egress',
  ): Rule[] =>
    rules.map((r, i) => {
      const at = `${direction}[${i}]`;
      return {
        action: 'allow',
        peers:
          r.peers && r.peers.length > 0
            ? r.peers.flatMap((p, j) =>
                peerSets(p, namespace, `${at}.${direction === 'ingress' ? 'from' : 'to'}[${j}]`, warnings),
              )
            : null,
        ports:
          r.ports && r.ports.length > 0
            ? r.ports.flatMap((p, j) => portMatches(p, `${at}.ports[${j}]`, warnings))
            : null,
        origin: at,
      };
    });
  return {
    id: networkPolicyId(namespace, np.metadata.name),
    tier: 'networkpolicy',
    priority: 0,
    appliesTo: { namespace, namespaceSelector: null, podSelector: canonicalSelector(podSelector) },
    ingress: types.includes('Ingress')
      ? compileRules(
          (spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })),
          'ingress',
        )
      : null,
    egress: types.includes('Egress')
      ? compileRules(
          (spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports })),
          'egress',
        )
      : null,
    warnings,
  };
}

function peerSets(peer: NetworkPolicyPeer, namespace: string, at: string, warnings: string[]): SetRef[] {
  if (peer.ipBlock) {
    if (peer.podSelector || peer.namespaceSelector) {
      warnings.push(`${at}: ipBlock cannot be combined with selectors; peer ignored`);
      return [];
    }
    return ipBlockSets(peer.ipBlock, at, warnings);
  }
  if (!peer.podSelector && !peer.namespaceSelector) {
    warnings.push(`${at}: a peer needs podSelector, namespaceSelector or ipBlock; peer ignored`);
    return [];
  }
  try {
    if (peer.podSelector) validateSelector(peer.podSelector, `${at}.podSelector`);
    if (peer.namespaceSelector) validateSelector(peer.namespaceSelector, `${at}.namespaceSelector`);
  } catch (e) {
    warnings.push(`${(e as Error).message}; peer ignored`);
    return [];
  }
  return [
    setRef({
      kind: 'pods',
      // podSelector alone: pods of the policy's namespace. With namespaceSelector: pods of the
      // namespaces it selects (AND). namespaceSelector alone: every pod of those namespaces.
      namespace: peer.namespaceSelector ? null : namespace,
      namespaceSelector: peer.namespaceSelector ? canonicalSelector(peer.namespaceSelector) : null,
      podSelector: canonicalSelector(peer.podSelector ?? {}),
    }),
  ];
}

function ipBlockSets(
  block: { cidr: string; except?: string[] | undefined },
  at: string,
  warnings: string[],
): SetRef[] {
  let cidr: Cidr;
  try {
    cidr = parseCidr(block.cidr, `${at}.ipBlock.cidr`, false);
  } catch (e) {
    warnings.push(`${(e as Error).message}; peer ignored`);
    return [];
  }
  const except: Cidr[] = [];
  for (const [k, text] of (block.except ?? []).entries()) {
    try {
      const ex = parseCidr(text, `${at}.ipBlock.except[${k}]`, false);
      if (containsCidr(ex, cidr)) return []; // the whole block is excepted: it matches nothing
      if (!containsCidr(cidr, ex)) {
        warnings.push(`${at}.ipBlock.except[${k}]: ${text} is outside ${block.cidr}; ignored`);
        continue;
      }
      except.push(ex);
    } catch (e) {
      // An except we cannot read could have excluded anything in the block: drop the peer.
      warnings.push(`${(e as Error).message}; peer ignored`);
      return [];
    }
  }
  const exceptText = [...new Set(except.map(formatCidr))].sort();
  return [setRef({ kind: 'cidr', cidr: formatCidr(cidr), except: exceptText })];
}

function portMatches(p: NetworkPolicyPort, at: string, warnings: string[]): PortMatch[] {
  const protocol = p.protocol ?? 'TCP';
  if (p.port === undefined) {
    if (p.endPort !== undefined) warnings.push(`${at}: endPort without port; ignored`);
    return p.endPort !== undefined ? [] : [{ kind: 'protocol', protocol }];
  }
  if (typeof p.port === 'string') {
    if (/^\d+$/.test(p.port)) return rangeMatch(protocol, Number(p.port), p.endPort, at, warnings);
    if (p.endPort !== undefined) {
      warnings.push(`${at}: endPort cannot be used with a named port; ignored`);
      return [];
    }
    return [{ kind: 'named', protocol, name: p.port, set: setRef({ kind: 'named-port', name: p.port }) }];
  }
  return rangeMatch(protocol, p.port, p.endPort, at, warnings);
}

function rangeMatch(
  protocol: PortMatch['protocol'],
  port: number,
  endPort: number | undefined,
  at: string,
  warnings: string[],
): PortMatch[] {
  const to = endPort ?? port;
  if (port < 1 || port > 65535 || to < port || to > 65535) {
    warnings.push(`${at}: invalid port range ${port}-${to}; ignored`);
    return [];
  }
  return [{ kind: 'range', protocol, from: port, to }];
}
