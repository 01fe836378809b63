// Which API server, as whom: a client-node KubeConfig from an explicit server URL, a
// kubeconfig file, or the defaults (KUBECONFIG, ~/.kube/config, then in-cluster).
import { KubeConfig, type Cluster } from '@kubernetes/client-node';
import { ValidationError } from '../../model/index.js';

export interface KubeConnection {
  /** Path of a kubeconfig file; absent: KUBECONFIG, ~/.kube/config, then the pod's service account. */
  kubeconfigPath?: string;
  /**
   * API server URL. Alone (no kubeconfigPath): an unauthenticated connection to it (a
   * `kubectl proxy`, the test server). With kubeconfigPath: overrides that file's server.
   */
  server?: string;
  /** Use this KubeConfig as it is (the other fields are then ignored). */
  kubeConfig?: KubeConfig;
}

export function loadKubeConfig(conn: KubeConnection): KubeConfig {
  if (conn.kubeConfig) return withPlainHttpAllowed(conn.kubeConfig);
  if (conn.server !== undefined) parseServerUrl(conn.server);
  const kc = new KubeConfig();
  if (conn.kubeconfigPath) {
    try {
      kc.loadFromFile(conn.kubeconfigPath);
    } catch (e) {
      throw new ValidationError('kubeconfig', `${conn.kubeconfigPath}: ${(e as Error).message}`);
    }
  } else if (conn.server !== undefined) {
    kc.loadFromClusterAndUser(
      { name: 'explicit', server: conn.server, skipTLSVerify: false },
      { name: 'none' },
    );
  } else {
    kc.loadFromDefault();
  }
  if (conn.server !== undefined && conn.kubeconfigPath) overrideServer(kc, conn.server);
  if (!kc.getCurrentCluster()) throw new ValidationError('kubeconfig', 'names no current cluster');
  return withPlainHttpAllowed(kc);
}

function parseServerUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ValidationError('kubeServer', `${JSON.stringify(server)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ValidationError('kubeServer', `${JSON.stringify(server)} is not http:// or https://`);
  return url;
}

function overrideServer(kc: KubeConfig, server: string): void {
  const current = kc.getCurrentCluster()!;
  replaceCluster(kc, { ...current, server });
}

/**
 * client-node refuses plain http unless the cluster says skipTLSVerify, which means nothing
 * without TLS; a kubeconfig for `kubectl proxy` (http://127.0.0.1:8001) rarely says it.
 */
function withPlainHttpAllowed(kc: KubeConfig): KubeConfig {
  const current = kc.getCurrentCluster();
  if (current && current.server.startsWith('http:') && !current.skipTLSVerify)
    replaceCluster(kc, { ...current, skipTLSVerify: true });
  return kc;
}

function replaceCluster(kc: KubeConfig, cluster: Cluster): void {
  kc.loadFromOptions({
    clusters: kc.getClusters().map((c) => (c.name === cluster.name ? cluster : c)),
    users: kc.getUsers(),
    contexts: kc.getContexts(),
    currentContext: kc.getCurrentContext(),
  });
}
