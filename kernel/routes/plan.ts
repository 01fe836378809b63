// The pure core of the reconciler: for one route key, compare what is desired with what the kernel
// holds and decide what to do. No I/O, so every rule here is unit-tested directly.
import { RTN, RT_SCOPE, type KernelRoute } from '../netlink/codec.js';
import { ROUTE_PROTOCOL } from '../../model/routing.js';
import { classOfProtocol, type DesiredRoute, type RouteClass } from './types.js';

export interface PlanState {
  table: number;
  /** The winning desired route at a key (after class precedence), if any. */
  desired(key: string): DesiredRoute | undefined;
  /** Our routes (protocol is one of ours) in the table, by key. */
  ours: ReadonlyMap<string, KernelRoute>;
  /** Keys where a route that is not ours sits (tracked for desired keys only). */
  foreign: ReadonlySet<string>;
  ifindex(name: string): number | undefined;
  /** Classes whose desired state is complete: only their stale routes may be deleted. */
  synced: ReadonlySet<RouteClass>;
}

export type Change =
  | { kind: 'add' | 'replace'; key: string; cls: RouteClass; route: KernelRoute }
  | { kind: 'delete'; key: string; cls: RouteClass; route: KernelRoute };

export type Hold =
  /** The kernel already holds exactly the desired route. */
  | 'in-sync'
  /** Nothing desired, nothing of ours: nothing to do. */
  | 'absent'
  /** A pod (or BGP) route names an interface that does not exist yet: retried when it appears. */
  | 'awaiting-interface'
  /** Another program's route holds the key: we never overwrite it. */
  | 'foreign-conflict'
  /** Ours but not desired, and the class's desired state is not complete yet: adopted, kept. */
  | 'kept-until-synced';

export type Decision = Change | { kind: Hold; key: string };

/** The kernel route that realizes `d` in `table`, or undefined while its interface is missing. */
export function kernelRouteFor(
  d: DesiredRoute,
  table: number,
  ifindex: (name: string) => number | undefined,
) {
  let oif = 0;
  if (d.dev !== undefined) {
    const index = ifindex(d.dev);
    if (index === undefined) return undefined;
    oif = index;
  }
  const route: KernelRoute = {
    family: d.family,
    dst: d.dst,
    dstLen: d.dstLen,
    table,
    protocol: ROUTE_PROTOCOL[d.cls],
    scope: d.cls === 'pod' && d.family === 4 ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE,
    type: d.cls === 'block' ? RTN.BLACKHOLE : RTN.UNICAST,
    tos: 0,
    flags: 0,
    oif,
    gateway: d.gateway,
    priority: d.priority,
  };
  return route;
}

/** Whether the kernel's route is the wanted one in every field we set. */
export function sameRoute(have: KernelRoute, want: KernelRoute): boolean {
  if (have.protocol !== want.protocol || have.type !== want.type) return false;
  // IPv6 reports every route with scope universe.
  if (want.family === 4 && have.scope !== want.scope) return false;
  // A gateway route without a named device lets the kernel pick the interface.
  if (want.oif !== 0 && have.oif !== want.oif) return false;
  if ((have.gateway === undefined) !== (want.gateway === undefined)) return false;
  return !have.gateway || !want.gateway || have.gateway.equals(want.gateway);
}

export function decide(key: string, s: PlanState): Decision {
  const want = s.desired(key);
  const have = s.ours.get(key);
  if (!want) {
    if (!have) return { kind: 'absent', key };
    const cls = classOfProtocol(have.protocol)!;
    return s.synced.has(cls) ? { kind: 'delete', key, cls, route: have } : { kind: 'kept-until-synced', key };
  }
  const route = kernelRouteFor(want, s.table, s.ifindex);
  if (!route) return { kind: 'awaiting-interface', key };
  if (have) {
    return sameRoute(have, route) ? { kind: 'in-sync', key } : { kind: 'replace', key, cls: want.cls, route };
  }
  if (s.foreign.has(key)) return { kind: 'foreign-conflict', key };
  return { kind: 'add', key, cls: want.cls, route };
}

export interface Plan {
  changes: Change[];
  holds: Map<Hold, string[]>;
}

export function plan(keys: Iterable<string>, s: PlanState): Plan {
  const changes: Change[] = [];
  const holds = new Map<Hold, string[]>();
  for (const key of keys) {
    const d = decide(key, s);
    if (d.kind === 'add' || d.kind === 'replace' || d.kind === 'delete') changes.push(d);
    else {
      let list = holds.get(d.kind);
      if (!list) holds.set(d.kind, (list = []));
      list.push(key);
    }
  }
  return { changes, holds };
}
