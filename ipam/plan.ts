// Turns an assign request into one plan per family: a fixed address, or an ordered list of
// pools. Precedence, first that applies wins for the whole request:
//   pod annotation `tern.network/ip-addrs` (bound to the attachment)
//   > an IPReservation naming the pod (bound to its identity)
//   > pod annotation `tern.network/ip-addrs-by-ordinal` (bound to its identity; the other
//     entries are reserved for their replicas)
//   > `tern.network/sticky-ip` on the pod or its namespace (the address the identity holds,
//     else one from the pools, bound to the identity)
//   > pools: pod annotation > namespace annotation > CNI config > every enabled pool whose
//     nodeSelector selects the node (per family).
import {
  ExhaustedError,
  ValidationError,
  formatIp,
  parseIp,
  type IpAddr,
  type IpFamily,
  type Labels,
} from '../model/index.js';
import {
  checkDistinct,
  checkNotReservedForOther,
  entryFor,
  identityOf,
  isSticky,
  ordinalOf,
  parseOrdinalList,
  type Binding,
  type ReservationIndex,
} from './identity.js';
import { familyName, lookupPool, poolContaining, selectsNode, type Pool, type PoolSet } from './pools.js';
import { ANNOTATIONS, type AllocationRecord, type AssignRequest } from './types.js';

export type FamilyPlan =
  | { kind: 'fixed'; family: IpFamily; address: IpAddr; pool: Pool; source: string; bind?: Binding }
  | { kind: 'pools'; family: IpFamily; pools: Pool[]; source: string; bind?: Binding };

/** An address to bind to another identity than the requester's (the other ordinals of a list). */
export interface Reservation {
  address: IpAddr;
  pool: Pool;
  bind: Binding;
}

export interface Plan {
  plans: FamilyPlan[];
  reserve: Reservation[];
}

/** What planning needs besides the request: facts IPAM read before (no I/O in here). */
export interface PlanContext {
  reservations?: ReservationIndex;
  /** Live sticky bindings of the requester's identity and interface (sticky pods only). */
  stickyHeld?: readonly AllocationRecord[];
}

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

export function planAddresses(
  req: AssignRequest,
  pools: PoolSet,
  nodeLabels: Labels,
  ctx: PlanContext = {},
): Plan {
  const { namespace, pod } = req.attachment;
  const identity = identityOf(namespace, pod);
  const explicit = req.podAnnotations?.[ANNOTATIONS.ipAddrs];
  if (explicit !== undefined) {
    const field = podField(ANNOTATIONS.ipAddrs);
    const list = parseStringList(explicit, field, 'IP addresses');
    if (list.length === 0) throw new ValidationError(field, 'must name at least one address');
    const addresses = list.map((e) => parseIp(e, field));
    return { plans: fixedPlans(addresses, field, req, pools, undefined, ctx), reserve: [] };
  }
  const reserved = ctx.reservations?.lookup(namespace, pod, req.podLabels);
  if (reserved) {
    return {
      plans: fixedPlans(reserved.addresses, reserved.binding.origin, req, pools, reserved.binding, ctx),
      reserve: [],
    };
  }
  const byOrdinal = req.podAnnotations?.[ANNOTATIONS.ipAddrsByOrdinal];
  if (byOrdinal !== undefined) return planOrdinal(byOrdinal, req, pools, ctx);
  const plans = planAllPools(req, pools, nodeLabels);
  if (!isSticky(req.podAnnotations, req.namespaceAnnotations)) return { plans, reserve: [] };
  return { plans: plans.map((p) => stickyPlan(p, identity, pools, ctx)), reserve: [] };
}

function planOrdinal(text: string, req: AssignRequest, pools: PoolSet, ctx: PlanContext): Plan {
  const { namespace, pod } = req.attachment;
  const field = podField(ANNOTATIONS.ipAddrsByOrdinal);
  const entries = parseOrdinalList(text, field);
  const ord = ordinalOf(pod, req.podLabels);
  const replica = (i: number) => identityOf(namespace, `${ord.set}-${i}`);
  checkDistinct(entries, replica, field);
  const mine = entryFor(entries, ord, identityOf(namespace, pod), field);
  const owner = identityOf(namespace, ord.set);
  const binding = (i: number): Binding => ({
    identity: replica(i),
    source: 'ordinal',
    owner,
    origin: `${field} (ordinal ${i})`,
  });
  const reserve: Reservation[] = [];
  entries.forEach((set, i) => {
    if (i === ord.ordinal) return;
    for (const address of set) {
      const b = binding(i);
      if (ctx.reservations) checkNotReservedForOther(address, b.identity, b.origin, ctx.reservations);
      reserve.push({ address, pool: usablePool(address, `${field}[${i}]`, pools), bind: b });
    }
  });
  return { plans: fixedPlans(mine, field, req, pools, binding(ord.ordinal), ctx), reserve };
}

/** A sticky pod: the address its identity holds for this family, else the pools, bound. */
function stickyPlan(plan: FamilyPlan, identity: string, pools: PoolSet, ctx: PlanContext): FamilyPlan {
  const bind: Binding = { identity, source: 'sticky', origin: `annotation ${ANNOTATIONS.stickyIp}` };
  const held = ctx.stickyHeld?.find((r) => r.family === plan.family);
  if (held) {
    const address = parseIp(held.address);
    const pool = poolContaining(pools, address);
    // A held address whose pool is gone or disabled is not handed out again.
    if (pool && !pool.disabled) {
      return { kind: 'fixed', family: plan.family, address, pool, source: bind.origin, bind };
    }
  }
  return { ...plan, bind };
}

/** Exactly these addresses, at most one per family, each in an enabled pool. */
function fixedPlans(
  addresses: IpAddr[],
  field: string,
  req: AssignRequest,
  pools: PoolSet,
  bind: Binding | undefined,
  ctx: PlanContext,
): FamilyPlan[] {
  const plans: FamilyPlan[] = [];
  const asking = identityOf(req.attachment.namespace, req.attachment.pod);
  for (const address of addresses) {
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
    if (ctx.reservations) checkNotReservedForOther(address, asking, field, ctx.reservations);
    const pool = usablePool(address, field, pools);
    plans.push({
      kind: 'fixed',
      family: address.family,
      address,
      pool,
      source: field,
      ...(bind ? { bind } : {}),
    });
  }
  return plans.sort((a, b) => a.family - b.family);
}

/** The enabled pool containing a named address (nodeSelector does not apply: it follows its pod). */
function usablePool(address: IpAddr, field: string, pools: PoolSet): Pool {
  const shown = formatIp(address);
  const pool = poolContaining(pools, address);
  if (!pool) throw new ValidationError(field, `${shown} is outside every IPPool`);
  if (pool.disabled)
    throw new ValidationError(field, `${shown} is in IPPool ${pool.name}, which is disabled`);
  return pool;
}

function planAllPools(req: AssignRequest, pools: PoolSet, nodeLabels: Labels): FamilyPlan[] {
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
