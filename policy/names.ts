// Names of every chain and set tern owns. All start with `tern-`; hashed parts keep them
// within iptables' 28-character chain names and ipset's 31-character set names, and are
// derived from content so that identical input always yields identical names.
import { createHash } from 'node:crypto';
import type { Direction, Family, SetSpec } from './types.js';

export const TERN_PREFIX = 'tern-';
export const MAX_CHAIN_NAME = 28;
export const MAX_SET_NAME = 31;

export const CHAINS = {
  forward: 'tern-FORWARD',
  input: 'tern-INPUT',
  fromWorkload: 'tern-from-wl',
  toWorkload: 'tern-to-wl',
  allow: 'tern-allow',
  pass: 'tern-pass',
} as const;

const hashCache = new Map<string, string>();

function hash16(text: string): string {
  let h = hashCache.get(text);
  if (h === undefined) {
    h = createHash('sha256').update(text).digest('hex').slice(0, 16);
    if (hashCache.size >= 100_000) hashCache.clear();
    hashCache.set(text, h);
  }
  return h;
}

/** Endpoint chain of a local pod: `tern-wi-…` filters what enters the pod, `tern-we-…` what leaves it. */
export function endpointChain(podKey: string, direction: Direction): string {
  return `tern-w${direction === 'ingress' ? 'i' : 'e'}-${hash16(podKey)}`;
}

/** Policy chain shared by every endpoint the policy selects. */
export function policyChain(policyId: string, direction: Direction): string {
  return `tern-p${direction === 'ingress' ? 'i' : 'e'}-${hash16(policyId)}`;
}

const SET_KIND_LETTER: Record<SetSpec['kind'], string> = { pods: 'p', cidr: 'c', 'named-port': 'n' };

/** `tern-<family><kind>-<hash of the canonical spec>`, 24 characters. */
export function setName(key: string, spec: SetSpec, family: Family): string {
  return `tern-${family}${SET_KIND_LETTER[spec.kind]}-${hash16(key)}`;
}

/** The name a set is built under before `ipset swap` puts it in place. */
export const tempSetName = (name: string): string => `${name}-t`;

export const isTernName = (name: string): boolean => name.startsWith(TERN_PREFIX);
