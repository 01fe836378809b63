// Where each Kind lives in the Kubernetes API. Group and version come from the model
// (KINDS[kind].apiVersion), scope from KINDS[kind].namespaced; only the plural resource name
// is ours, because Kubernetes does not derive it (NetworkPolicy → networkpolicies).
import { KINDS, ValidationError, type Kind, type ObjectKey } from '../../model/index.js';

/**
 * Plural resource names. The tern.network ones must equal the CRDs' (deploy/kubernetes/crds.ts
 * CRD_DEFS; a unit test compares them). An entry for a kind the model does not have yet is
 * inert until the kind joins KINDS.
 */
export const PLURALS = {
  Pod: 'pods',
  Namespace: 'namespaces',
  Node: 'nodes',
  NetworkPolicy: 'networkpolicies',
  ClusterNetworkPolicy: 'clusternetworkpolicies',
  Lease: 'leases',
  IPPool: 'ippools',
  IPAMBlock: 'ipamblocks',
  BGPPeer: 'bgppeers',
  BGPConfiguration: 'bgpconfigurations',
  IPReservation: 'ipreservations',
} as const satisfies { readonly [K in Kind]: string } & { readonly [kind: string]: string };

export interface ResourceInfo {
  kind: Kind;
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
  /** `pods` or `ippools.tern.network`, as the API server names a resource in its messages. */
  qualifiedName: string;
}

const cache = new Map<Kind, ResourceInfo>();

export function resourceOf(kind: Kind): ResourceInfo {
  let info = cache.get(kind);
  if (info) return info;
  const model = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  const plural = (PLURALS as Readonly<Record<string, string>>)[kind];
  if (!model || !plural) throw new ValidationError('kind', `unknown kind ${JSON.stringify(kind)}`);
  const slash = model.apiVersion.indexOf('/');
  const group = slash < 0 ? '' : model.apiVersion.slice(0, slash);
  const version = model.apiVersion.slice(slash + 1);
  info = {
    kind,
    group,
    version,
    plural,
    namespaced: model.namespaced,
    qualifiedName: group ? `${plural}.${group}` : plural,
  };
  cache.set(kind, info);
  return info;
}

/**
 * The API path of a collection (no name) or of one object. A namespace on a cluster-scoped
 * kind is ignored, as the filter means nothing there; a namespaced kind without one names
 * the collection across all namespaces.
 */
export function resourcePath(kind: Kind, key: { namespace?: string; name?: string } = {}): string {
  const r = resourceOf(kind);
  const root = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const ns = r.namespaced && key.namespace ? `/namespaces/${encodeURIComponent(key.namespace)}` : '';
  const name = key.name === undefined ? '' : `/${encodeURIComponent(key.name)}`;
  return `${root}${ns}/${r.plural}${name}`;
}

export interface ParsedResourcePath {
  resource: ResourceInfo;
  namespace?: string;
  name?: string;
}

const byGroupResource = new Map<string, Kind>();

/** The inverse of resourcePath, for servers (the test API server); undefined if it names no kind. */
export function parseResourcePath(path: string): ParsedResourcePath | undefined {
  if (byGroupResource.size === 0) {
    for (const kind of Object.keys(KINDS) as Kind[]) {
      if (!Object.hasOwn(PLURALS, kind)) continue;
      const r = resourceOf(kind);
      byGroupResource.set(`${r.group}/${r.version}/${r.plural}`, kind);
    }
  }
  const m =
    /^\/(?:api\/(?<cv>[^/]+)|apis\/(?<g>[^/]+)\/(?<v>[^/]+))(?:\/namespaces\/(?<ns>[^/]+))?\/(?<plural>[^/]+)(?:\/(?<name>[^/]+))?\/?$/.exec(
      path,
    );
  if (!m?.groups) return undefined;
  const { cv, g, v, ns, plural, name } = m.groups;
  const kind = byGroupResource.get(`${g ?? ''}/${cv ?? v}/${plural}`);
  if (!kind) return undefined;
  const resource = resourceOf(kind);
  if (ns !== undefined && !resource.namespaced) return undefined;
  return {
    resource,
    ...(ns !== undefined ? { namespace: decodeURIComponent(ns) } : {}),
    ...(name !== undefined ? { name: decodeURIComponent(name) } : {}),
  };
}

/** The object key the API path of one object names. */
export function keyFromPath(p: ParsedResourcePath): ObjectKey | undefined {
  if (p.name === undefined) return undefined;
  return p.namespace !== undefined ? { namespace: p.namespace, name: p.name } : { name: p.name };
}
