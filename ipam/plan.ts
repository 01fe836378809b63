// Turns an assign request into one plan per family: a fixed address, or an ordered list of
// pools. Precedence for fixed addresses: pod annotation `tern.network/ip-addrs` (issue 11
// inserts reservation > ordinal list > sticky between it and the pools). Precedence for the
// pools, per family: pod annotation > namespace annotation > CNI config > every enabled pool
// whose nodeSelector selects the node.
import {
  ExhaustedError,
  ValidationError,
  formatIp,
  parseIp,
  type IpAddr,
  type IpFamily,
  type Labels,
} from '../model/index.js';
import { familyName, lookupPool, poolContaining, selectsNode, type Pool, type PoolSet } from './pools.js';
import { ANNOTATIONS, type AssignRequest } from './types.js';

export type FamilyPlan =
  | { kind: 'fixed'; family: IpFamily; address: IpAddr; pool: Pool; source: string }
  | { kind: 'pools'; family: IpFamily; pools: Pool[]; source: string };

const FAMILIES: readonly IpFamily[] = [4, 6];

/** Parses an annotation holding a JSON list of non-empty strings. */
export function parseStringList(text: string, field: string, what: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError(field, `must be a JSON list of ${what}, got ${JSON.stringify(text)}`);
  }
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string' && v.length > 0)) {
    throw new ValidationError(field, `must be a JSON list of ${what}, got ${text}`);
  }
  return value;
}

const podField = (key: string) => `pod annotation ${key}`;

export function planAddresses(req: AssignRequest, pools: PoolSet, nodeLabels: Labels): FamilyPlan[] {
  const fixed = req.podAnnotations?.[ANNOTATIONS.ipAddrs];
  if (fixed !== undefined) return planFixed(fixed, req, pools);
  const plans: FamilyPlan[] = [];
  for (const family of req.families ?? FAMILIES) {
    const plan = planPools(family, req, pools, nodeLabels);
    if (plan.pools.length > 0) plans.push(plan);
    else if (req.families) {
      throw new ExhaustedError(`no enabled ${familyName(family)} IPPool selects node ${req.node}`);
    }
  }
  if (plans.length === 0) {
    throw new ExhaustedError(
      `no enabled IPPool selects node ${req.node} (labels ${JSON.stringify(nodeLabels)})`,
    );
  }
  return plans;
}

function planFixed(text: string, req: AssignRequest, pools: PoolSet): FamilyPlan[] {
  const field = podField(ANNOTATIONS.ipAddrs);
  const list = parseStringList(text, field, 'IP addresses');
  if (list.length === 0) throw new ValidationError(field, 'must name at least one address');
  const plans: FamilyPlan[] = [];
  for (const entry of list) {
    const address = parseIp(entry, field);
    const shown = formatIp(address);
    if (plans.some((p) => p.family === address.family)) {
      throw new ValidationError(field, `names more than one ${familyName(address.family)} address`);
    }
    if (req.families && !req.families.includes(address.family)) {
      throw new ValidationError(
        field,
        `${shown} is ${familyName(address.family)}, which this network does not use`,
      );
    }
    const pool = poolContaining(pools, address);
    if (!pool) throw new ValidationError(field, `${shown} is outside every IPPool`);
    if (pool.disabled)
      throw new ValidationError(field, `${shown} is in IPPool ${pool.name}, which is disabled`);
    plans.push({ kind: 'fixed', family: address.family, address, pool, source: field });
  }
  return plans.sort((a, b) => a.family - b.family);
}

function planPools(
  family: IpFamily,
  req: AssignRequest,
  pools: PoolSet,
  nodeLabels: Labels,
): Extract<FamilyPlan, { kind: 'pools' }> {
  const key = family === 4 ? ANNOTATIONS.ipv4Pools : ANNOTATIONS.ipv6Pools;
  const sources: Array<[string, string | readonly string[] | undefined]> = [
    [podField(key), req.podAnnotations?.[key]],
    [`namespace annotation ${key}`, req.namespaceAnnotations?.[key]],
    [`CNI config ipam.ipv${family}Pools`, family === 4 ? req.configPools?.ipv4 : req.configPools?.ipv6],
  ];
  for (const [source, value] of sources) {
    if (value === undefined) continue;
    const refs = typeof value === 'string' ? parseStringList(value, source, 'IPPool names or CIDRs') : value;
    // An empty list names nothing: the next source decides.
    if (refs.length === 0) continue;
    return {
      kind: 'pools',
      family,
      pools: refs.map((r) => resolve(r, family, source, req.node, pools, nodeLabels)),
      source,
    };
  }
  return {
    kind: 'pools',
    family,
    pools: pools.pools.filter((p) => p.family === family && !p.disabled && selectsNode(p, nodeLabels)),
    source: 'every enabled IPPool selecting the node',
  };
}

function resolve(
  ref: string,
  family: IpFamily,
  source: string,
  node: string,
  pools: PoolSet,
  nodeLabels: Labels,
): Pool {
  const found = lookupPool(pools, ref);
  if ('error' in found) throw new ValidationError(source, found.error);
  const { pool } = found;
  if (pool.family !== family) {
    throw new ValidationError(
      source,
      `IPPool ${pool.name} is ${familyName(pool.family)}, not ${familyName(family)}`,
    );
  }
  if (pool.disabled) throw new ValidationError(source, `IPPool ${pool.name} is disabled`);
  if (!selectsNode(pool, nodeLabels)) {
    throw new ValidationError(
      source,
      `IPPool ${pool.name} does not select node ${node} (nodeSelector ${JSON.stringify(pool.object.spec.nodeSelector)})`,
    );
  }
  return pool;
}
