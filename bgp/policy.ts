// Import / export policy: an ordered list of rules, the first match decides (accept with
// optional attribute changes, or reject). Attribute changes are cached per input attribute
// set, so a policy costs one prefix test per route and one rewrite per distinct attribute set.
import { ValidationError } from '../model/errors.js';
import { parseCidr } from '../model/cidr.js';
import type { AsPathSegment, PathAttributes } from './wire/attributes.js';
import { familyOf, prefixLength, prefixNetwork, type PrefixKey } from './wire/prefix.js';

export interface PrefixMatch {
  /** "10.0.0.0/8" */
  readonly prefix: string;
  /** Route prefix length must be ≥ ge and ≤ le; without either the length must equal the list prefix's. */
  readonly ge?: number;
  readonly le?: number;
}

export interface PolicyRule {
  readonly match?: {
    /** Any of these prefixes. */
    readonly prefixes?: readonly PrefixMatch[];
    /** Any of these communities ("65000:100" standard, "65000:1:2" large). */
    readonly communities?: readonly string[];
  };
  readonly action: 'accept' | 'reject';
  readonly set?: {
    readonly addCommunities?: readonly string[];
    readonly removeCommunities?: readonly string[];
    readonly localPref?: number;
    readonly med?: number;
    /** Prepend `asn` `count` times (export: after our own AS, so the peer sees it `count + 1` times). */
    readonly asPathPrepend?: { readonly asn: number; readonly count: number };
  };
}

export interface Policy {
  readonly rules: readonly PolicyRule[];
  /** What happens when no rule matches; default accept. */
  readonly defaultAction?: 'accept' | 'reject';
}

type Community = { large: false; value: number } | { large: true; value: readonly [number, number, number] };

export function parseCommunity(text: string, field = 'community'): Community {
  const parts = text.split(':');
  const nums = parts.map((p) => (/^\d{1,10}$/.test(p) ? Number(p) : NaN));
  if (parts.length === 2 && nums.every((n) => n <= 0xffff))
    return { large: false, value: nums[0]! * 65536 + nums[1]! };
  if (parts.length === 3 && nums.every((n) => n <= 0xffffffff)) {
    return { large: true, value: [nums[0]!, nums[1]!, nums[2]!] };
  }
  throw new ValidationError(
    field,
    `${JSON.stringify(text)} is not a community (a:b with 16-bit parts, or a:b:c large)`,
  );
}

export const formatCommunity = (c: number): string => `${Math.floor(c / 65536)}:${c % 65536}`;

interface CompiledPrefix {
  family: 4 | 6;
  network: bigint;
  length: number;
  min: number;
  max: number;
}

function compilePrefix(m: PrefixMatch, field: string): CompiledPrefix {
  const c = parseCidr(m.prefix, `${field}.prefix`);
  const bits = c.family === 4 ? 32 : 128;
  const min = m.ge ?? c.prefixLength;
  const max = m.le ?? (m.ge !== undefined ? bits : c.prefixLength);
  if (min < c.prefixLength || max > bits || min > max) {
    throw new ValidationError(field, `ge/le must satisfy ${c.prefixLength} ≤ ge ≤ le ≤ ${bits}`);
  }
  return { family: c.family, network: c.network, length: c.prefixLength, min, max };
}

function prefixMatches(p: CompiledPrefix, key: PrefixKey): boolean {
  if (familyOf(key) !== p.family) return false;
  const len = prefixLength(key);
  if (len < p.min || len > p.max) return false;
  const bits = p.family === 4 ? 32n : 128n;
  const shift = bits - BigInt(p.length);
  return prefixNetwork(key) >> shift === p.network >> shift;
}

const hasCommunity = (a: PathAttributes, c: Community) =>
  c.large
    ? (a.largeCommunities ?? []).some(
        (l) => l[0] === c.value[0] && l[1] === c.value[1] && l[2] === c.value[2],
      )
    : (a.communities ?? []).includes(c.value);

/** A compiled policy: (prefix, attributes) → attributes to use, or undefined to reject. */
export type PolicyFn = (prefix: PrefixKey, attrs: PathAttributes) => PathAttributes | undefined;

export const acceptAll: PolicyFn = (_p, a) => a;

export function compilePolicy(policy: Policy | undefined, field = 'policy'): PolicyFn {
  if (!policy || policy.rules.length === 0) {
    return policy?.defaultAction === 'reject' ? () => undefined : acceptAll;
  }
  const rules = policy.rules.map((r, i) => {
    const f = `${field}.rules[${i}]`;
    const prefixes = r.match?.prefixes?.map((m, j) => compilePrefix(m, `${f}.match.prefixes[${j}]`));
    const communities = r.match?.communities?.map((c, j) =>
      parseCommunity(c, `${f}.match.communities[${j}]`),
    );
    const add =
      r.set?.addCommunities?.map((c, j) => parseCommunity(c, `${f}.set.addCommunities[${j}]`)) ?? [];
    const remove =
      r.set?.removeCommunities?.map((c, j) => parseCommunity(c, `${f}.set.removeCommunities[${j}]`)) ?? [];
    const prepend = r.set?.asPathPrepend;
    if (prepend) {
      if (!Number.isInteger(prepend.asn) || prepend.asn < 1 || prepend.asn > 0xffffffff)
        throw new ValidationError(`${f}.set.asPathPrepend.asn`, `${prepend.asn} is not an AS number`);
      if (!Number.isInteger(prepend.count) || prepend.count < 1 || prepend.count > 32)
        throw new ValidationError(`${f}.set.asPathPrepend.count`, 'must be an integer 1..32');
    }
    const rewrites = new WeakMap<PathAttributes, PathAttributes>();
    const rewrite = (a: PathAttributes): PathAttributes => {
      if (!r.set) return a;
      let out = rewrites.get(a);
      if (!out) {
        out = applySet(a, r.set, add, remove);
        rewrites.set(a, out);
      }
      return out;
    };
    return { action: r.action, prefixes, communities, rewrite };
  });
  const fallback = policy.defaultAction ?? 'accept';
  return (prefix, attrs) => {
    for (const r of rules) {
      if (r.prefixes && !r.prefixes.some((p) => prefixMatches(p, prefix))) continue;
      if (r.communities && !r.communities.some((c) => hasCommunity(attrs, c))) continue;
      return r.action === 'reject' ? undefined : r.rewrite(attrs);
    }
    return fallback === 'reject' ? undefined : attrs;
  };
}

function applySet(
  a: PathAttributes,
  set: NonNullable<PolicyRule['set']>,
  add: readonly Community[],
  remove: readonly Community[],
): PathAttributes {
  let communities = [...(a.communities ?? [])];
  let large = [...(a.largeCommunities ?? [])];
  for (const c of remove) {
    if (c.large)
      large = large.filter((l) => !(l[0] === c.value[0] && l[1] === c.value[1] && l[2] === c.value[2]));
    else communities = communities.filter((x) => x !== c.value);
  }
  for (const c of add) {
    if (!hasCommunity({ ...a, communities, largeCommunities: large }, c)) {
      if (c.large) large.push(c.value);
      else communities.push(c.value);
    }
  }
  const out: { -readonly [K in keyof PathAttributes]: PathAttributes[K] } = { ...a };
  out.communities = communities.length ? communities : undefined;
  out.largeCommunities = large.length ? large : undefined;
  if (set.localPref !== undefined) out.localPref = set.localPref;
  if (set.med !== undefined) out.med = set.med;
  if (set.asPathPrepend) out.asPath = prependAs(a.asPath, set.asPathPrepend.asn, set.asPathPrepend.count);
  return stripUndefined(out);
}

export function stripUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

export function prependAs(path: readonly AsPathSegment[], asn: number, times = 1): AsPathSegment[] {
  const add = new Array<number>(times).fill(asn);
  const first = path[0];
  if (first && first.type === 2 && first.asns.length + times <= 255) {
    return [{ type: 2, asns: [...add, ...first.asns] }, ...path.slice(1)];
  }
  return [{ type: 2, asns: add }, ...path];
}
