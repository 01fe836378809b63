// tern-node's configuration: flags > env (TERN_*) > file > defaults.
import { hostname } from 'node:os';
import { z } from 'zod';

export const agentConfigSchema = z.object({
  /** Name of this node in the datastore. */
  nodeName: z.string().min(1).default(hostname()),
  datastore: z.enum(['etcd', 'memory', 'kubernetes']).default('etcd'),
  /** etcd endpoints, comma-separated in flags/env: http://host:port or unix:///path. */
  etcdEndpoints: z.array(z.string().min(1)).default(['http://127.0.0.1:2379']),
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
});

export type AgentConfig = z.output<typeof agentConfigSchema>;
