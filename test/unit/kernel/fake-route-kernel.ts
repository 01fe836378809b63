// An in-memory kernel routing table with rtnetlink's semantics for the reconciler's requests:
// add refuses an existing key (EEXIST), replace overwrites, delete removes only a route of the
// same protocol (ESRCH otherwise). Changes are notified asynchronously, like the kernel's multicast.
import type {
  KernelEvents,
  KernelLink,
  KernelRoute,
  RouteKernel,
  RouteRequest,
} from '../../../kernel/netlink/route-kernel.js';
import { routeKey } from '../../../kernel/routes/types.js';

const keyOf = (r: KernelRoute): string => `${r.table}|${routeKey(r.family, r.dst, r.dstLen, r.priority)}`;

export class FakeRouteKernel implements RouteKernel {
  readonly routes = new Map<string, KernelRoute>();
  readonly links = new Map<number, KernelLink>();
  readonly applied: RouteRequest[][] = [];
  /** Overrides the errno of a request (e.g. ENODEV for a named device). */
  refuse: ((req: RouteRequest) => number) | undefined;
  private events: KernelEvents | undefined;
  closed = false;

  subscribe(events: KernelEvents): void {
    this.events = events;
  }

  routeEvents = true;
  readonly routeEventToggles: boolean[] = [];
  /** Whether route events were on during each apply call. */
  readonly eventsDuringApply: boolean[] = [];
  setRouteEvents(on: boolean): void {
    this.routeEvents = on;
    this.routeEventToggles.push(on);
  }

  async dumpRoutes(): Promise<KernelRoute[]> {
    return [...this.routes.values()].map((r) => ({ ...r }));
  }

  async dumpLinks(): Promise<KernelLink[]> {
    return [...this.links.values()].map((l) => ({ ...l }));
  }

  async apply(requests: readonly RouteRequest[]): Promise<Int32Array> {
    this.eventsDuringApply.push(this.routeEvents);
    this.applied.push(requests.map((r) => ({ op: r.op, route: { ...r.route } })));
    const out = new Int32Array(requests.length);
    requests.forEach((req, i) => {
      const forced = this.refuse?.(req) ?? 0;
      if (forced) {
        out[i] = forced;
        return;
      }
      const key = keyOf(req.route);
      const have = this.routes.get(key);
      if (req.op === 'delete') {
        if (!have || have.protocol !== req.route.protocol) out[i] = 3;
        else this.del(key);
      } else if (req.op === 'add' && have) out[i] = 17;
      else this.put({ ...req.route });
    });
    return out;
  }

  close(): void {
    this.closed = true;
  }

  /** Changes made "by someone else" (a person, another daemon). */
  put(r: KernelRoute): void {
    this.routes.set(keyOf(r), r);
    const ev = this.events;
    if (this.routeEvents) setImmediate(() => ev?.route('new', { ...r }));
  }

  del(key: string): void {
    const r = this.routes.get(key);
    if (!r) return;
    this.routes.delete(key);
    const ev = this.events;
    if (this.routeEvents) setImmediate(() => ev?.route('del', { ...r }));
  }

  keyOf = keyOf;

  addLink(l: KernelLink): void {
    this.links.set(l.index, l);
    const ev = this.events;
    setImmediate(() => ev?.link('new', { ...l }));
  }

  requestCount(): number {
    return this.applied.reduce((n, b) => n + b.length, 0);
  }
}
