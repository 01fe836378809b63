// The lab's Kubernetes control plane, in the lab's control namespace: etcd 3.6 on that
// namespace's loopback, kube-apiserver (TLS, Node + RBAC, ServiceAccount tokens) bound to the
// namespace's rack address, kube-controller-manager (every controller but nodeipam: tern does
// IPAM) and kube-scheduler. Processes are started through the lab's bookkeeping (`record`), so
// `lab down` stops them by PID even after a crash; every file lives in the lab's folder.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { startProcess, hasExited } from '../processes.js';
import type { LabProcess } from '../state.js';
import { kubeBinary } from './binaries.js';
import { apiServerArgs, kubeconfigText, makePki } from './pki.js';

export const API_SERVER_PORT = 6443;

export interface ControlPlaneOptions {
  /** The lab's folder; the control plane's files go to <dir>/kube. */
  dir: string;
  /** The control namespace. */
  netns: string;
  /** Its address on the rack (the API server binds and advertises it). */
  address: string;
  /** Node names, each given a kubelet token (system:node:<name>). */
  nodes: readonly string[];
  /** Records a started process in the lab's state before anything waits on it. */
  record: (p: LabProcess) => void;
  progress: (message: string) => void;
}

export interface ControlPlane {
  url: string;
  caFile: string;
  adminKubeconfig: string;
  /** Kubeconfig of a node's kubelet, and of its kube-proxy. */
  kubeletKubeconfig(node: string): string;
  kubeProxyKubeconfig: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where the control plane's files are, from the lab's folder (for verbs after up). */
export function controlPlaneFiles(dir: string, address: string): ControlPlane {
  const kube = join(dir, 'kube');
  return {
    url: `https://${address}:${API_SERVER_PORT}`,
    caFile: join(kube, 'pki', 'ca.crt'),
    adminKubeconfig: join(kube, 'admin.kubeconfig'),
    kubeletKubeconfig: (node) => join(kube, `kubelet-${node}.kubeconfig`),
    kubeProxyKubeconfig: join(kube, 'kube-proxy.kubeconfig'),
  };
}

/** kubectl as admin, run inside the control namespace (the API server is reachable only there). */
export async function labKubectl(
  netns: string,
  adminKubeconfig: string,
  args: string[],
  options: { input?: string; allowFailure?: boolean } = {},
): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await execa(
    'nsenter',
    [`--net=/run/netns/${netns}`, kubeBinary('kubectl'), `--kubeconfig=${adminKubeconfig}`, ...args],
    { input: options.input, reject: false, stdin: options.input === undefined ? 'ignore' : 'pipe' },
  );
  const out = { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  if (out.exitCode !== 0 && !options.allowFailure)
    throw new Error(`kubectl ${args.join(' ')} failed (${out.exitCode}): ${r.stderr || r.stdout}`);
  return out;
}

export async function startControlPlane(o: ControlPlaneOptions): Promise<ControlPlane> {
  const files = controlPlaneFiles(o.dir, o.address);
  const kube = join(o.dir, 'kube');
  const pki = join(kube, 'pki');
  mkdirSync(pki, { recursive: true, mode: 0o700 });
  await makePki(pki, [o.address]);

  // Static tokens: admin, each kubelet (the Node authorizer knows it by system:node:<name> in
  // system:nodes), kube-proxy (bound to system:node-proxier by the default RBAC), the
  // controller-manager and the scheduler (their default roles).
  const token = () => randomBytes(16).toString('hex');
  const users: Array<{ file: string; user: string; groups?: string }> = [
    { file: files.adminKubeconfig, user: 'lab-admin', groups: 'system:masters' },
    ...o.nodes.map((n) => ({
      file: files.kubeletKubeconfig(n),
      user: `system:node:${n}`,
      groups: 'system:nodes',
    })),
    { file: files.kubeProxyKubeconfig, user: 'system:kube-proxy' },
    { file: join(kube, 'kcm.kubeconfig'), user: 'system:kube-controller-manager' },
    { file: join(kube, 'scheduler.kubeconfig'), user: 'system:kube-scheduler' },
  ];
  const lines = users.map((u, i) => {
    const t = token();
    writeFileSync(u.file, kubeconfigText(files.url, files.caFile, t), { mode: 0o600 });
    return `${t},${u.user},${i + 1}${u.groups ? `,"${u.groups}"` : ''}`;
  });
  const tokens = join(pki, 'tokens.csv');
  writeFileSync(tokens, lines.join('\n') + '\n', { mode: 0o600 });

  const start = (role: string, binary: Parameters<typeof kubeBinary>[0], args: string[]) => {
    const p = startProcess({
      role,
      netns: o.netns,
      command: kubeBinary(binary),
      args,
      cwd: kube,
      logFile: join(o.dir, `${role}.log`),
    });
    o.record(p);
    return p;
  };

  o.progress(`control plane: etcd and kube-apiserver in ${o.netns} (${files.url})`);
  mkdirSync(join(kube, 'etcd'), { mode: 0o700 });
  start('kube-etcd', 'etcd', [
    '--name=kube',
    `--data-dir=${join(kube, 'etcd')}`,
    '--listen-client-urls=http://127.0.0.1:2379',
    '--advertise-client-urls=http://127.0.0.1:2379',
    '--listen-peer-urls=http://127.0.0.1:2380',
    '--initial-advertise-peer-urls=http://127.0.0.1:2380',
    '--initial-cluster=kube=http://127.0.0.1:2380',
    '--listen-metrics-urls=',
  ]);
  const api = start('kube-apiserver', 'kube-apiserver', [
    ...apiServerArgs({
      etcdServers: 'http://127.0.0.1:2379',
      bindAddress: o.address,
      port: API_SERVER_PORT,
      pki,
      tokenAuthFile: tokens,
    }),
  ]);
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (hasExited(api)) throw new Error(`kube-apiserver exited; see ${join(o.dir, 'kube-apiserver.log')}`);
    const r = await labKubectl(o.netns, files.adminKubeconfig, ['get', '--raw', '/readyz'], {
      allowFailure: true,
    });
    if (r.exitCode === 0) break;
    if (Date.now() > deadline)
      throw new Error(
        `kube-apiserver not ready in 120 s: ${r.stderr}; see ${join(o.dir, 'kube-apiserver.log')}`,
      );
    await sleep(500);
  }

  o.progress('control plane: kube-controller-manager and kube-scheduler');
  start('kube-controller-manager', 'kube-controller-manager', [
    `--kubeconfig=${join(kube, 'kcm.kubeconfig')}`,
    `--service-account-private-key-file=${join(pki, 'sa.key')}`,
    `--root-ca-file=${files.caFile}`,
    // Each controller under its own ServiceAccount, as clusters run it.
    '--use-service-account-credentials=true',
    // tern allocates pod addresses; the Node's podCIDR is not used.
    '--controllers=*,-nodeipam',
    '--bind-address=127.0.0.1',
    '--secure-port=10257',
    '--leader-elect=false',
  ]);
  start('kube-scheduler', 'kube-scheduler', [
    `--kubeconfig=${join(kube, 'scheduler.kubeconfig')}`,
    '--bind-address=127.0.0.1',
    '--secure-port=10259',
    '--leader-elect=false',
  ]);
  return files;
}
