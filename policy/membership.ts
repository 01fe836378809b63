// Which addresses a set holds, and which pods a policy selects. Selector semantics come from
// model/selector.ts; this file only says what each selector is applied to.
import { formatCidr, formatIp, matches, parseCidr, parseIp, split, type Labels } from '../model/index.js';
import type { EndpointSelector, Family, PolicyPod, SetSpec, SetType } from './types.js';

/** The label the API server puts on every namespace, so a namespace we have not seen still has it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export function namespaceLabels(name: string, labels: Labels | undefined): Labels {
  return { ...labels, [NAMESPACE_NAME_LABEL]: name };
}

export const familyOf = (ip: string): Family => (ip.includes(':') ? 6 : 4);

export const setType = (spec: SetSpec): SetType =>
  spec.kind === 'pods' ? 'hash:ip' : spec.kind === 'cidr' ? 'hash:net' : 'hash:ip,port';

/** The family a set spec exists in (`cidr` sets have one; the others exist in both). */
export function specFamilies(spec: SetSpec, families: readonly Family[]): Family[] {
  if (spec.kind !== 'cidr') return [...families];
  const f = familyOf(spec.cidr.split('/')[0]!);
  return families.includes(f) ? [f] : [];
}

export function selectsPod(sel: EndpointSelector, pod: PolicyPod, nsLabels: Labels): boolean {
  if (sel.namespace !== null && pod.namespace !== sel.namespace) return false;
  if (sel.namespaceSelector && !matches(sel.namespaceSelector, nsLabels)) return false;
  return matches(sel.podSelector, pod.labels);
}

const canonicalCache = new Map<string, string>();

/** Canonical address text, as `ipset save` prints it. Memoised: parsing IPv6 text is slow. */
export function canonicalIp(ip: string): string {
  let out = canonicalCache.get(ip);
  if (out === undefined) {
    const parsed = parseIp(ip);
    out = formatIp(parsed);
    if (canonicalCache.size >= 100_000) canonicalCache.clear();
    canonicalCache.set(ip, out);
  }
  return out;
}

/** Members a pod contributes to a pod-dependent set (empty when it contributes none). */
export function podMembers(
  spec: SetSpec,
  pod: PolicyPod,
  nsLabels: Labels,
): { family: Family; member: string }[] {
  if (spec.kind === 'pods') {
    if (!selectsPod(spec, pod, nsLabels)) return [];
    return pod.ips.map((ip) => ({ family: familyOf(ip), member: canonicalIp(ip) }));
  }
  if (spec.kind === 'named-port') {
    const ports = pod.ports.filter((p) => p.name === spec.name);
    return pod.ips.flatMap((ip) =>
      ports.map((p) => ({
        family: familyOf(ip),
        member: `${canonicalIp(ip)},${p.protocol.toLowerCase()}:${p.port}`,
      })),
    );
  }
  return [];
}

/** Members of a `cidr` set: the block (as two halves if /0, which hash:net cannot hold) and its excepts as nomatch. */
export function cidrMembers(spec: Extract<SetSpec, { kind: 'cidr' }>): string[] {
  const block = parseCidr(spec.cidr);
  const parts = block.prefixLength === 0 ? [...split(block, 1)] : [block];
  return [...parts.map(formatCidr), ...spec.except.map((e) => `${e} nomatch`)].map(shortHost);
}

/** ipset prints host routes without their /32 or /128. */
const shortHost = (m: string): string => m.replace(/\/(32|128)(?= |$)/, '');
