// The PKI and kubeconfigs of a control plane: a CA, the API server's certificate (loopback, the
// given addresses and the in-cluster names), the ServiceAccount key pair, token kubeconfigs.
// Shared by the lab's control plane and the real-cluster tests (test/support/kube-cluster.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

async function openssl(cwd: string, args: string[]): Promise<void> {
  await execa('openssl', args, { cwd, stdio: 'pipe' });
}

/** The `kubernetes` Service's ClusterIP for the service range both use (10.96.0.0/24). */
export const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/24';
const KUBERNETES_SERVICE_IP = '10.96.0.1';

/**
 * Writes ca.{crt,key}, apiserver.{crt,key} and sa.{key,pub} into `dir`. The server certificate
 * names 127.0.0.1, the `kubernetes` Service's address and names, and `addresses`.
 */
export async function makePki(dir: string, addresses: readonly string[] = []): Promise<void> {
  const days = ['-days', '2'];
  await openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    '/CN=tern-test-ca',
    ...days,
  ]);
  await openssl(dir, [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'apiserver.key',
    '-out',
    'apiserver.csr',
    '-subj',
    '/CN=kube-apiserver',
  ]);
  const ips = ['127.0.0.1', KUBERNETES_SERVICE_IP, ...addresses].map((a) => `IP:${a}`);
  const names = ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'].map(
    (n) => `DNS:${n}`,
  );
  writeFileSync(join(dir, 'apiserver.ext'), `subjectAltName=${[...ips, ...names].join(',')}\n`);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    'apiserver.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'apiserver.crt',
    '-extfile',
    'apiserver.ext',
    ...days,
  ]);
  await openssl(dir, ['genrsa', '-out', 'sa.key', '2048']);
  await openssl(dir, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

/** A kubeconfig (JSON is YAML) authenticating with a bearer token. */
export function kubeconfigText(url: string, caFile: string, token: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: url, 'certificate-authority': caFile } }],
    users: [{ name: 'u', user: { token } }],
    contexts: [{ name: 'c', context: { cluster: 'test', user: 'u' } }],
    'current-context': 'c',
  });
}

export interface ApiServerFlags {
  etcdServers: string;
  bindAddress: string;
  port: number;
  /** Folder holding makePki's files. */
  pki: string;
  tokenAuthFile: string;
}

/**
 * kube-apiserver as a production control plane runs it: TLS, the Node and RBAC authorizers,
 * NodeRestriction, ServiceAccount tokens; InternalIP first towards kubelets (otherwise it looks
 * the node name up in DNS, which here means a packet to the host's resolver).
 */
export function apiServerArgs(f: ApiServerFlags): string[] {
  return [
    `--etcd-servers=${f.etcdServers}`,
    `--bind-address=${f.bindAddress}`,
    `--advertise-address=${f.bindAddress}`,
    `--secure-port=${f.port}`,
    `--tls-cert-file=${join(f.pki, 'apiserver.crt')}`,
    `--tls-private-key-file=${join(f.pki, 'apiserver.key')}`,
    `--client-ca-file=${join(f.pki, 'ca.crt')}`,
    `--token-auth-file=${f.tokenAuthFile}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    '--service-account-issuer=https://kubernetes.default.svc',
    `--service-account-key-file=${join(f.pki, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(f.pki, 'sa.key')}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--kubelet-preferred-address-types=InternalIP',
    '--profiling=false',
  ];
}
