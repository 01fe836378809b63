// Every Kubernetes API call tern-node makes, as (API group, resource, verb): the one list that
// rbac.yaml must grant exactly (test/unit/deploy/rbac.test.ts compares them both ways).
//
// THE KUBERNETES DATASTORE BACKEND MUST KEEP THIS TRUE. When it calls a verb not listed here, add
// it here and to rbac.yaml, with the code path that needs it; when it stops calling one, remove it.
//
// How the Datastore interface (datastore/types.ts) maps onto verbs:
//   get → get, list → list, watch → watch (informers: list + watch), create → create,
//   update (compare-and-swap on resourceVersion) → update (PUT), delete → delete.

export interface ApiAccess {
  /** API group; '' is the core group. */
  group: string;
  resource: string;
  verbs: readonly string[];
  /** Namespaced grants live in a Role in the agent's namespace, not in the ClusterRole. */
  namespaced?: boolean;
  /** Which code calls it. */
  why: string;
}

export const RBAC_NEEDS: readonly ApiAccess[] = [
  {
    group: '',
    resource: 'pods',
    verbs: ['get', 'list', 'watch'],
    why: 'ClusterView informer (policy, routes); CNI ADD looks the pod up (annotations, labels); cluster IPAM GC lists Pods and re-reads one right before freeing its address',
  },
  {
    group: '',
    resource: 'namespaces',
    verbs: ['get', 'list', 'watch'],
    why: 'ClusterView informer (namespaceSelector); IPAM pool annotations of the pod namespace',
  },
  {
    group: '',
    resource: 'nodes',
    verbs: ['get', 'list', 'watch', 'update'],
    why: 'BGP peers and pool nodeSelectors; cluster IPAM GC (ipam/cluster-gc.ts) lists Nodes and re-reads one before releasing its blocks; adoptNode (felix/node-registration.ts) reads its Node and writes its BGP address annotations (CAS update, never create or patch: the kubelet registers the Node)',
  },
  {
    group: 'networking.k8s.io',
    resource: 'networkpolicies',
    verbs: ['list', 'watch'],
    why: 'policy compiler informer',
  },
  {
    group: 'policy.networking.k8s.io',
    resource: 'clusternetworkpolicies',
    verbs: ['list', 'watch'],
    why: 'policy compiler informer (Admin and Baseline tiers)',
  },
  { group: 'tern.network', resource: 'ippools', verbs: ['list', 'watch'], why: 'IPAM pool informer' },
  {
    group: 'tern.network',
    resource: 'ipamblocks',
    verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'],
    why: 'IPAM: claim, allocate, release and free blocks (CAS writes); block routes',
  },
  { group: 'tern.network', resource: 'bgppeers', verbs: ['list', 'watch'], why: 'BgpController peers' },
  {
    group: 'tern.network',
    resource: 'bgpconfigurations',
    verbs: ['list', 'watch'],
    why: 'BgpController cluster settings',
  },
  {
    group: 'tern.network',
    resource: 'ipreservations',
    verbs: ['list', 'watch'],
    why: 'IPAM identity-bound addresses',
  },
  {
    group: 'coordination.k8s.io',
    resource: 'leases',
    verbs: ['get', 'create', 'update'],
    namespaced: true,
    why: 'LeaderElector (datastore/leader-election.ts): get the Lease, create it when absent, renew / take over / hand back by CAS update; the holder runs cluster IPAM GC',
  },
];
