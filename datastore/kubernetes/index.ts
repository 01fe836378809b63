export { KubernetesDatastore, type KubernetesDatastoreOptions } from './datastore.js';
export { loadKubeConfig, type KubeConnection } from './kubeconfig.js';
export { PLURALS, parseResourcePath, resourceOf, resourcePath, type ResourceInfo } from './resources.js';
export { GoneError, KubernetesApiError, errorFromStatus, parseStatus, type KubeStatus } from './status.js';
