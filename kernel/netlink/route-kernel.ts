// The kernel as the route reconciler sees it: dumps, batched changes and notifications of routes
// and links. `RtnlRouteKernel` is the real one; unit tests substitute an in-memory fake.
import { NLMSG, RTM, RTNLGRP, decodeLink, decodeRoute, type KernelLink, type KernelRoute } from './codec.js';
import { RtnlMonitor, RtnlRequestSocket, type RouteRequest } from './socket.js';

export type { KernelLink, KernelRoute, RouteRequest };

export interface KernelEvents {
  route(kind: 'new' | 'del', route: KernelRoute): void;
  link(kind: 'new' | 'del', link: KernelLink): void;
  /** Notifications were lost; the listener must re-read routes and links. */
  overrun(): void;
  /** Why a receive overrun could still abort the process (the native addon is missing, …). */
  unprotected?(reason: string): void;
}

export interface RouteKernel {
  /** Starts delivering notifications to `events` (before any dump, so nothing falls in between). */
  subscribe(events: KernelEvents): void;
  /**
   * Stops (false) or resumes (true) route notifications. The reconciler pauses them while it
   * applies a large batch of its own and re-reads the table afterwards: reading one datagram per
   * notification costs far more than a dump, and a burst larger than the socket buffer overruns it.
   */
  setRouteEvents(on: boolean): void;
  dumpRoutes(): Promise<KernelRoute[]>;
  dumpLinks(): Promise<KernelLink[]>;
  /** Applies the requests in order; returns each one's errno (0 = done). */
  apply(requests: readonly RouteRequest[]): Promise<Int32Array>;
  close(): void;
}

export class RtnlRouteKernel implements RouteKernel {
  private readonly requests = new RtnlRequestSocket();
  private monitor: RtnlMonitor | undefined;

  subscribe(events: KernelEvents): void {
    this.monitor = new RtnlMonitor([RTNLGRP.LINK, RTNLGRP.IPV4_ROUTE, RTNLGRP.IPV6_ROUTE], {
      overrun: () => events.overrun(),
      unprotected: (reason) => events.unprotected?.(reason),
      message: (msg) => {
        switch (msg.type) {
          case RTM.NEWROUTE:
          case RTM.DELROUTE: {
            const r = decodeRoute(msg.payload);
            if (r) events.route(msg.type === RTM.NEWROUTE ? 'new' : 'del', r);
            break;
          }
          case RTM.NEWLINK:
          case RTM.DELLINK: {
            const l = decodeLink(msg.payload);
            if (l) events.link(msg.type === RTM.NEWLINK ? 'new' : 'del', l);
            break;
          }
          case NLMSG.OVERRUN:
            events.overrun();
            break;
        }
      },
    });
  }

  setRouteEvents(on: boolean): void {
    this.monitor?.setMembership([RTNLGRP.IPV4_ROUTE, RTNLGRP.IPV6_ROUTE], on);
  }

  async dumpRoutes(): Promise<KernelRoute[]> {
    const v4 = await this.requests.dump(RTM.GETROUTE, 4, decodeRoute);
    const v6 = await this.requests.dump(RTM.GETROUTE, 6, decodeRoute);
    return v4.concat(v6);
  }

  dumpLinks(): Promise<KernelLink[]> {
    return this.requests.dump(RTM.GETLINK, 0, decodeLink);
  }

  apply(requests: readonly RouteRequest[]): Promise<Int32Array> {
    return this.requests.apply(requests);
  }

  close(): void {
    this.monitor?.close();
    this.requests.close();
  }
}
