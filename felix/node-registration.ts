// Registers this node in the datastore: creates its Node object when missing (etcd mode),
// and records its BGP address and AS in annotations, with compare-and-swap retries.
import type { Datastore } from '../datastore/types.js';
import { AlreadyExistsError, ConflictError, NODE_ANNOTATIONS, type Node } from '../model/index.js';

export interface NodeIdentity {
  name: string;
  ipv4?: string;
  ipv6?: string;
  /** Absent: the cluster default from BGPConfiguration applies. */
  asn?: number;
  /** Labels to set when the agent creates the Node (etcd mode); merged on update. */
  labels?: Record<string, string>;
  routeReflectorClusterId?: string;
}

function desiredAnnotations(id: NodeIdentity): Record<string, string | undefined> {
  return {
    [NODE_ANNOTATIONS.bgpIPv4]: id.ipv4,
    [NODE_ANNOTATIONS.bgpIPv6]: id.ipv6,
    [NODE_ANNOTATIONS.asNumber]: id.asn === undefined ? undefined : String(id.asn),
    [NODE_ANNOTATIONS.routeReflectorClusterId]: id.routeReflectorClusterId,
  };
}

function apply(node: Node, id: NodeIdentity): boolean {
  const annotations = { ...(node.metadata.annotations ?? {}) };
  const labels = { ...(node.metadata.labels ?? {}), ...(id.labels ?? {}) };
  for (const [k, v] of Object.entries(desiredAnnotations(id))) {
    if (v === undefined) delete annotations[k];
    else annotations[k] = v;
  }
  const changed =
    JSON.stringify(annotations) !== JSON.stringify(node.metadata.annotations ?? {}) ||
    JSON.stringify(labels) !== JSON.stringify(node.metadata.labels ?? {});
  node.metadata.annotations = annotations;
  node.metadata.labels = labels;
  return changed;
}

export async function registerNode(ds: Datastore, id: NodeIdentity, attempts = 20): Promise<Node> {
  for (let i = 0; i < attempts; i++) {
    const current = await ds.get('Node', { name: id.name });
    try {
      if (!current) {
        const node: Node = { apiVersion: 'v1', kind: 'Node', metadata: { name: id.name } };
        apply(node, id);
        return await ds.create<'Node'>(node);
      }
      if (!apply(current, id)) return current;
      return await ds.update<'Node'>(current);
    } catch (e) {
      if (e instanceof ConflictError || e instanceof AlreadyExistsError) continue;
      throw e;
    }
  }
  throw new ConflictError(`could not register node ${id.name}: ${attempts} conflicting writes in a row`);
}
