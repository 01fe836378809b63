// Shared setup for the IPAM unit tests: a MemoryDatastore with pools, and request helpers.
import { MemoryDatastore } from '../../../datastore/memory.js';
import type { Datastore } from '../../../datastore/types.js';
import { Ipam, type AssignRequest, type Attachment } from '../../../ipam/index.js';
import { TERN_API_VERSION, type IPAMBlock, type IPPool } from '../../../model/index.js';

export function pool(name: string, cidr: string, spec: Partial<IPPool['spec']> = {}): IPPool {
  return { apiVersion: TERN_API_VERSION, kind: 'IPPool', metadata: { name }, spec: { cidr, ...spec } };
}

export async function storeWith(pools: IPPool[], nodes: Record<string, Record<string, string>> = {}) {
  const ds = new MemoryDatastore();
  for (const p of pools) await ds.create(p);
  for (const [name, labels] of Object.entries(nodes)) {
    await ds.create({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels } });
  }
  return ds;
}

/** An Ipam whose retries do not sleep long, closed by `closeAll`. */
const opened: Ipam[] = [];
export function ipamOn(ds: MemoryDatastore): Ipam {
  const ipam = new Ipam({ datastore: ds, retry: { maxBackoffMs: 2 } });
  opened.push(ipam);
  return ipam;
}
export async function closeAll(): Promise<void> {
  await Promise.all(opened.splice(0).map((i) => i.close()));
}

export function attachment(pod: string, more: Partial<Attachment> = {}): Attachment {
  return { namespace: 'default', pod, containerID: `ctr-${pod}`, ifname: 'eth0', ...more };
}

export function request(pod: string, node: string, more: Partial<AssignRequest> = {}): AssignRequest {
  return { attachment: attachment(pod), node, nodeLabels: {}, ...more };
}

export async function allBlocks(ds: MemoryDatastore): Promise<IPAMBlock[]> {
  return (await ds.list('IPAMBlock')).items;
}

/** Every allocated address in the store, with its holder's handle. */
export async function allAllocated(
  ds: MemoryDatastore,
): Promise<Array<{ block: string; offset: string; handle: string }>> {
  return (await allBlocks(ds)).flatMap((b) =>
    Object.entries(b.spec.allocations).map(([offset, a]) => ({
      block: b.spec.cidr,
      offset,
      handle: a.handle,
    })),
  );
}

export const addressesOf = (r: { addresses: Array<{ address: string }> }) =>
  r.addresses.map((a) => a.address);

/** Wraps a datastore and records the name of every call made through it. */
export function counting(inner: Datastore): { ds: Datastore; calls: string[] } {
  const calls: string[] = [];
  const ds = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'watch') return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { ds, calls };
}
