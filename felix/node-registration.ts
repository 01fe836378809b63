// Registers this node in the datastore and records its BGP address and AS in annotations, with
// compare-and-swap retries. etcd mode (registerNode): the agent creates its Node object when
// missing. Kubernetes mode (adoptNode): the kubelet owns the Node; the agent only reads it and
// updates its own annotations, never creates it.
import type { Datastore } from '../datastore/types.js';
import {
  AlreadyExistsError,
  ConflictError,
  NODE_ANNOTATIONS,
  NotFoundError,
  type Node,
} from '../model/index.js';
import { DERIVED_ADDRESS_ANNOTATION, nodeAddressFromNode } from './node-address.js';

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

type Annotations = Record<string, string | undefined>;

function desiredAnnotations(id: NodeIdentity): Annotations {
  return {
    [NODE_ANNOTATIONS.bgpIPv4]: id.ipv4,
    [NODE_ANNOTATIONS.bgpIPv6]: id.ipv6,
    [NODE_ANNOTATIONS.asNumber]: id.asn === undefined ? undefined : String(id.asn),
    [NODE_ANNOTATIONS.routeReflectorClusterId]: id.routeReflectorClusterId,
  };
}

/** Sets (undefined: removes) annotations and merges labels; true when anything changed. */
function apply(node: Node, wanted: Annotations, labelsToMerge: Record<string, string> = {}): boolean {
  const annotations = { ...(node.metadata.annotations ?? {}) };
  const labels = { ...(node.metadata.labels ?? {}), ...labelsToMerge };
  for (const [k, v] of Object.entries(wanted)) {
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

/**
 * Read, change, compare-and-swap, again on a lost race. `change` edits the Node in place and
 * says whether it changed; `create` makes the Node when there is none (etcd mode only).
 */
async function casNode(
  ds: Datastore,
  name: string,
  change: (node: Node) => boolean,
  create: (() => Node) | undefined,
  attempts: number,
): Promise<Node> {
  for (let i = 0; i < attempts; i++) {
    const current = await ds.get('Node', { name });
    try {
      if (!current) {
        if (!create)
          throw new NotFoundError(
            `Node ${name} does not exist: in Kubernetes the kubelet registers it; is TERN_NODE_NAME the node's name?`,
          );
        return await ds.create<'Node'>(create());
      }
      if (!change(current)) return current;
      return await ds.update<'Node'>(current);
    } catch (e) {
      if (e instanceof ConflictError || e instanceof AlreadyExistsError) continue;
      throw e;
    }
  }
  throw new ConflictError(`could not update node ${name}: ${attempts} conflicting writes in a row`);
}

/** etcd mode: creates or updates the Node with the agent's addresses, AS and labels. */
export async function registerNode(ds: Datastore, id: NodeIdentity, attempts = 20): Promise<Node> {
  const wanted = desiredAnnotations(id);
  return casNode(
    ds,
    id.name,
    (node) => apply(node, wanted, id.labels),
    () => {
      const node: Node = { apiVersion: 'v1', kind: 'Node', metadata: { name: id.name } };
      apply(node, wanted, id.labels);
      return node;
    },
    attempts,
  );
}

export interface AdoptedNode {
  node: Node;
  ipv4?: string;
  ipv6?: string;
}

/**
 * Kubernetes mode: reads the kubelet's Node and settles this node's BGP addresses: an address
 * given in the agent's configuration, else the operator's annotation, else the Node's
 * InternalIP (recorded as derived, so it is derived afresh next time). Writes the address
 * annotations (and the AS / route reflector cluster ID when configured) by CAS update; the
 * operator's other annotations and the labels stay as they are. NotFoundError without a Node.
 */
export async function adoptNode(
  ds: Datastore,
  id: Omit<NodeIdentity, 'labels'>,
  attempts = 20,
): Promise<AdoptedNode> {
  let chosen: { ipv4?: string; ipv6?: string } = {};
  const node = await casNode(
    ds,
    id.name,
    (n) => {
      const derived: string[] = [];
      const pick = (family: 4 | 6, configured: string | undefined) => {
        if (configured) return configured;
        const c = nodeAddressFromNode(n, family);
        if (c?.source === 'InternalIP') derived.push(c.address);
        return c?.address;
      };
      chosen = { ipv4: pick(4, id.ipv4), ipv6: pick(6, id.ipv6) };
      const wanted: Annotations = {
        [NODE_ANNOTATIONS.bgpIPv4]: chosen.ipv4,
        [NODE_ANNOTATIONS.bgpIPv6]: chosen.ipv6,
        [DERIVED_ADDRESS_ANNOTATION]: derived.length ? derived.join(',') : undefined,
      };
      // Unset here means "the operator's annotation, if any, decides": never removed.
      if (id.asn !== undefined) wanted[NODE_ANNOTATIONS.asNumber] = String(id.asn);
      if (id.routeReflectorClusterId)
        wanted[NODE_ANNOTATIONS.routeReflectorClusterId] = id.routeReflectorClusterId;
      return apply(n, wanted);
    },
    undefined,
    attempts,
  );
  return {
    node,
    ...(chosen.ipv4 ? { ipv4: chosen.ipv4 } : {}),
    ...(chosen.ipv6 ? { ipv6: chosen.ipv6 } : {}),
  };
}
