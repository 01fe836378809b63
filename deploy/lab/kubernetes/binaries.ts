// Where build.sh put the upstream Kubernetes components: the same versions.env, the same cache
// folder rule ($TERN_CACHE, else $XDG_CACHE_HOME/tern, else ~/.cache/tern; then k8s/<group>-<version>).
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Each binary and the component group (a line of versions.env) that builds it. */
const GROUP_OF = {
  'kube-apiserver': 'kubernetes',
  'kube-controller-manager': 'kubernetes',
  'kube-scheduler': 'kubernetes',
  kubelet: 'kubernetes',
  'kube-proxy': 'kubernetes',
  kubectl: 'kubernetes',
  etcd: 'etcd',
  containerd: 'containerd',
  'containerd-shim-runc-v2': 'containerd',
  ctr: 'containerd',
  runc: 'runc',
  crictl: 'crictl',
} as const;

export type KubeBinary = keyof typeof GROUP_OF;
export type ComponentGroup = (typeof GROUP_OF)[KubeBinary];

// Found from the source tree or from dist/ (the .env file is not compiled, so look in both).
const VERSIONS_FILES = [
  fileURLToPath(new URL('./versions.env', import.meta.url)),
  fileURLToPath(new URL('../../../../deploy/lab/kubernetes/versions.env', import.meta.url)),
];

/** versions.env as group → version. */
export function componentVersions(): Record<ComponentGroup, string> {
  const file = VERSIONS_FILES.find((f) => {
    try {
      accessSync(f, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!file) throw new Error(`versions.env not found (looked at ${VERSIONS_FILES.join(', ')})`);
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([a-z]+)=(v\d\S*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  for (const g of new Set(Object.values(GROUP_OF)))
    if (!out[g]) throw new Error(`${file}: no version for ${g}`);
  return out as Record<ComponentGroup, string>;
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.TERN_CACHE ?? join(env.XDG_CACHE_HOME ?? join(env.HOME ?? homedir(), '.cache'), 'tern');
  return join(base, 'k8s');
}

/** Absolute path of a built component; throws, naming the fix, when setup has not built it. */
export function kubeBinary(name: KubeBinary): string {
  const group = GROUP_OF[name];
  const path = join(cacheRoot(), `${group}-${componentVersions()[group]}`, name);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${name} is not built (${path}): run scripts/setup.sh (deploy/lab/kubernetes/build.sh)`);
  }
  return path;
}

/** Whether every component is built (the real-cluster tests need them all). */
export function kubeBinariesBuilt(): boolean {
  try {
    for (const name of Object.keys(GROUP_OF) as KubeBinary[]) kubeBinary(name);
    return true;
  } catch {
    return false;
  }
}
