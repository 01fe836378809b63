// Names and numbers shared by the CNI data path (which creates them) and the node agent
// (which reconciles and garbage-collects them).
import { createHash } from 'node:crypto';

/**
 * Route protocol numbers (rtm_protocol) of the routes tern owns, one per class. The route
 * reconciler touches only routes carrying these; every other route in the table is left alone.
 * (Linux reserves 0–4; BIRD uses 12/13, FRR 186+, Calico 80.)
 */
export const ROUTE_PROTOCOL = {
  /** /32 and /128 routes to local pods via their host veth. */
  pod: 90,
  /** Blackhole routes covering the IPAM blocks this node owns. */
  block: 91,
  /** Routes learned over BGP, via the advertised next hop. */
  bgp: 92,
} as const;

export type RouteClass = keyof typeof ROUTE_PROTOCOL;

/** The link-local gateway every pod's default route points at (answered by the host veth). */
export const POD_GATEWAY_IPV4 = '169.254.1.1';

/**
 * Host-side veth name of an attachment: `tern` + 11 hex chars of sha1("<ns>/<pod>/<ifname>"),
 * 15 characters, the kernel's limit. Deterministic so that DEL and GC find it without state.
 */
export function hostVethName(namespace: string, pod: string, ifname: string): string {
  return 'tern' + createHash('sha1').update(`${namespace}/${pod}/${ifname}`).digest('hex').slice(0, 11);
}

export const HOST_VETH_PREFIX = 'tern';
