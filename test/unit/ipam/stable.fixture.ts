// Shared setup for the stable-address tests: an Ipam on a fake clock, and requests that carry
// pod identities (namespace/name, container, annotations, labels).
import type { MemoryDatastore } from '../../../datastore/memory.js';
import { ANNOTATIONS, Ipam, type AssignRequest } from '../../../ipam/index.js';
import { TERN_API_VERSION, type IPReservation } from '../../../model/index.js';

export class Clock {
  constructor(public ms = Date.parse('2030-01-01T00:00:00Z')) {}
  readonly now = () => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

const opened: Ipam[] = [];

/** An Ipam on `clock` with no periodic sweep (tests call sweep / gc themselves). */
export function stableIpam(ds: MemoryDatastore, clock: Clock, stickyHoldSeconds?: number): Ipam {
  const ipam = new Ipam({
    datastore: ds,
    retry: { maxBackoffMs: 2 },
    now: clock.now,
    sweepIntervalMs: 0,
    ...(stickyHoldSeconds !== undefined ? { stickyHoldSeconds } : {}),
  });
  opened.push(ipam);
  return ipam;
}

export async function closeStable(): Promise<void> {
  await Promise.all(opened.splice(0).map((i) => i.close()));
}

export interface PodOptions {
  namespace?: string;
  container?: string;
  ifname?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  namespaceAnnotations?: Record<string, string>;
}

/** An ADD of pod `name` on `node`; the container ID defaults to `<name>@<node>`. */
export function pod(name: string, node: string, o: PodOptions = {}): AssignRequest {
  return {
    attachment: {
      namespace: o.namespace ?? 'db',
      pod: name,
      containerID: o.container ?? `${name}@${node}`,
      ifname: o.ifname ?? 'eth0',
    },
    node,
    nodeLabels: {},
    ...(o.annotations ? { podAnnotations: o.annotations } : {}),
    ...(o.labels ? { podLabels: o.labels } : {}),
    ...(o.namespaceAnnotations ? { namespaceAnnotations: o.namespaceAnnotations } : {}),
  };
}

export const byOrdinal = (list: unknown[]) => ({ [ANNOTATIONS.ipAddrsByOrdinal]: JSON.stringify(list) });
export const sticky = { [ANNOTATIONS.stickyIp]: 'true' };
export const fixedAddrs = (list: string[]) => ({ [ANNOTATIONS.ipAddrs]: JSON.stringify(list) });

export function reservation(namespace: string, name: string, spec: IPReservation['spec']): IPReservation {
  return { apiVersion: TERN_API_VERSION, kind: 'IPReservation', metadata: { namespace, name }, spec };
}

export const key = (r: AssignRequest) => ({
  containerID: r.attachment.containerID,
  ifname: r.attachment.ifname,
});
