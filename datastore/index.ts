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
export { Informer, type InformerEvent, type InformerHandlers, type InformerOptions } from './informer.js';

export const datastoreConfigSchema = z.object({
  /** memory: in-process (tests); etcd: bare metal and the lab; kubernetes: production (issue 9). */
  backend: z.enum(['memory', 'etcd', 'kubernetes']),
  /** etcd client endpoints: http://host:port or unix:///path (comma-separated in env/flags). */
  etcdEndpoints: z.array(z.string().min(1)).optional(),
  /** Key prefix in etcd; default /tern/v1/. */
  etcdPrefix: z.string().startsWith('/').endsWith('/').optional(),
  /** Deadline of each etcd request in ms; default 5000. */
  etcdRequestTimeoutMs: z.number().int().positive().optional(),
  /** kubeconfig path for the kubernetes backend (in-cluster config when absent). */
  kubeconfig: z.string().optional(),
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
    case 'kubernetes':
      // The seam: a KubernetesDatastore (client-node informers + CRDs) plugs in here.
      throw new ValidationError(
        'backend',
        'the kubernetes datastore is not built yet (issue 9); use etcd or memory',
      );
  }
}
