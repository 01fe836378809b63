// tern-node's configuration: flags > env (TERN_*) > file > defaults.
import { hostname } from 'node:os';
import { z } from 'zod';

export const agentConfigSchema = z.object({
  /** Name of this node in the datastore. */
  nodeName: z.string().min(1).default(hostname()),
  datastore: z.enum(['etcd', 'memory', 'kubernetes']).default('etcd'),
  /** etcd endpoints, comma-separated in flags/env: http://host:port or unix:///path. */
  etcdEndpoints: z.array(z.string().min(1)).default(['http://127.0.0.1:2379']),
  /** kubernetes datastore: kubeconfig path; absent = $KUBECONFIG, ~/.kube/config, then in-cluster. */
  kubeconfig: z.string().min(1).optional(),
  /** kubernetes datastore: API server URL overriding the kubeconfig's (or alone: unauthenticated). */
  kubeServer: z.url({ protocol: /^https?$/ }).optional(),
  /** The node's BGP/uplink addresses; detected from the default-route interface when absent. */
  nodeIPv4: z.string().optional(),
  nodeIPv6: z.string().optional(),
  /** This node's AS; absent = the cluster's (BGPConfiguration, default 64512). */
  asNumber: z.number().int().min(1).max(4294967295).optional(),
  /** Labels set on the Node object when the agent registers it (etcd mode). */
  nodeLabels: z.record(z.string(), z.string()).default({}),
  /** Cluster ID when this node is a route reflector (also marks it as one without a selector). */
  routeReflectorClusterId: z.string().optional(),
  /** Where the CNI plugin reaches the agent. */
  cniSocket: z.string().default('/run/tern/cni.sock'),
  /** ternctl's endpoint (JSON status API, metrics, health) on a Unix socket. */
  controlSocket: z.string().default('/run/tern/agent.sock'),
  /** Health and metrics over TCP, for kubelet probes and Prometheus; empty disables. */
  httpListen: z.string().default('127.0.0.1:9099'),
  bgpListenPort: z.number().int().min(1).max(65535).default(179),
  /** Pod MTU; absent = the uplink's MTU. */
  mtu: z.number().int().min(576).max(65535).optional(),
  /** Full route resync period (drift repair), seconds. */
  routeResyncSeconds: z.number().positive().default(30),
  /** How long a CNI ADD waits for the pod's policy to be programmed. */
  policyWaitSeconds: z.number().positive().default(10),
  /** Restart time advertised to BGP peers (graceful restart), seconds. */
  gracefulRestartSeconds: z.number().int().min(0).max(4095).default(120),
  /**
   * Cluster IPAM garbage collection (addresses of deleted pods, blocks of deleted nodes), run
   * by the one agent holding the Lease. Absent: on with the kubernetes datastore, off otherwise
   * (in etcd mode nothing may create Pod objects, and every address would look leaked).
   */
  ipamGcEnabled: z.boolean().optional(),
  /** How long a pod (or node) must be seen gone before GC frees its addresses, seconds. */
  ipamGcGraceSeconds: z.number().positive().default(600),
  /** Between GC passes, seconds. */
  ipamGcIntervalSeconds: z.number().positive().default(60),
  /** The Lease that elects the GC runner: its namespace (the agent's own in Kubernetes) and name. */
  leaderElectionNamespace: z.string().min(1).default('tern-system'),
  leaderElectionLeaseName: z.string().min(1).default('tern-ipam-gc'),
});

/** Whether this agent campaigns for the GC Lease. */
export function ipamGcEnabled(c: Pick<AgentConfig, 'ipamGcEnabled' | 'datastore'>): boolean {
  return c.ipamGcEnabled ?? c.datastore === 'kubernetes';
}

export type AgentConfig = z.output<typeof agentConfigSchema>;
