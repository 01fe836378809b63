// Opens the configured datastore backend. Components embed `datastoreConfigSchema` in their
// own config schema (see model/config.ts) and pass the result here.
import { z } from 'zod';
import { ValidationError } from '../model/index.js';
import type { Logger } from '../model/log.js';
import { EtcdDatastore } from './etcd.js';
import { MemoryDatastore } from './memory.js';
import type { Datastore } from './types.js';

export * from './types.js';
export { EtcdDatastore, DEFAULT_ETCD_PREFIX, parseEtcdEndpoint, type EtcdDatastoreOptions } from './etcd.js';
export { MemoryDatastore } from './memory.js';
// Types only: @kubernetes/client-node takes seconds to load, so only the kubernetes backend
// pays for it (openDatastore imports it on demand; import datastore/kubernetes/ for the class).
export type { KubernetesDatastore, KubernetesDatastoreOptions } from './kubernetes/index.js';
export { Informer, type InformerEvent, type InformerHandlers, type InformerOptions } from './informer.js';

export const datastoreConfigSchema = z.object({
  /** memory: in-process (tests); etcd: bare metal and the lab; kubernetes: production. */
  backend: z.enum(['memory', 'etcd', 'kubernetes']),
  /** etcd client endpoints: http://host:port or unix:///path (comma-separated in env/flags). */
  etcdEndpoints: z.array(z.string().min(1)).optional(),
  /** Key prefix in etcd; default /tern/v1/. */
  etcdPrefix: z.string().startsWith('/').endsWith('/').optional(),
  /** Deadline of each etcd request in ms; default 5000. */
  etcdRequestTimeoutMs: z.number().int().positive().optional(),
  /**
   * kubeconfig path for the kubernetes backend. Absent: $KUBECONFIG, ~/.kube/config, then the
   * pod's service account (in-cluster).
   */
  kubeconfig: z.string().min(1).optional(),
  /** API server URL: overrides the kubeconfig's; alone, an unauthenticated server (kubectl proxy, tests). */
  kubeServer: z.url({ protocol: /^https?$/ }).optional(),
  /** Deadline of each Kubernetes API request in ms (not watches); default 10000. */
  kubeRequestTimeoutMs: z.number().int().positive().optional(),
});

export type DatastoreConfig = z.infer<typeof datastoreConfigSchema>;

export async function openDatastore(
  config: DatastoreConfig,
  options: { logger?: Logger } = {},
): Promise<Datastore> {
  switch (config.backend) {
    case 'memory':
      return new MemoryDatastore();
    case 'etcd': {
      if (!config.etcdEndpoints?.length) {
        throw new ValidationError('etcdEndpoints', 'must name at least one endpoint for the etcd backend');
      }
      return new EtcdDatastore({
        endpoints: config.etcdEndpoints,
        prefix: config.etcdPrefix,
        requestTimeoutMs: config.etcdRequestTimeoutMs,
        logger: options.logger,
      });
    }
    case 'kubernetes': {
      const { KubernetesDatastore } = await import('./kubernetes/index.js');
      return new KubernetesDatastore({
        kubeconfigPath: config.kubeconfig,
        server: config.kubeServer,
        requestTimeoutMs: config.kubeRequestTimeoutMs,
        logger: options.logger,
      });
    }
  }
}
