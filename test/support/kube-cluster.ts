// A real Kubernetes API server for one test file: etcd 3.6 and kube-apiserver v1.37 as
// deploy/lab/kubernetes/build.sh builds them, on loopback ports of their own, with TLS, the
// Node and RBAC authorizers and ServiceAccount tokens, as a production control plane runs them.
// Everything lives in one folder (tmpfs) and is removed by stop(), and by the worker's exit if
// afterAll never ran.
//
//   const cluster = await startKubeCluster({ name: 'contract' });   // in beforeAll (≈10–30 s)
//   await cluster.applyCrds();                 // deploy/kubernetes/crds.yaml, waited until Established
//   new KubernetesDatastore({ kubeconfigPath: cluster.adminKubeconfig })
//   await cluster.serviceAccountKubeconfig('tern-system', 'tern-node')   // a TokenRequest token
//   await cluster.stop();                      // in afterAll
//
// Every process is started by this module and stopped by PID; nothing listens off loopback.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { kubeBinariesBuilt, kubeBinary } from '../../deploy/lab/kubernetes/binaries.js';
import { apiServerArgs, kubeconfigText, makePki } from '../../deploy/lab/kubernetes/pki.js';
import { freePort, startEtcd, type EtcdServer } from './etcd.js';
import { ownedDirs, runningPids } from './exit-cleanup.js';
import { stopProcess } from './netns.js';

export const CRDS_YAML = fileURLToPath(new URL('../../deploy/kubernetes/crds.yaml', import.meta.url));
/** The ClusterNetworkPolicy CRD, copied from the network-policy-api module (kustomization applies it too). */
export const CNP_CRD_YAML = fileURLToPath(
  new URL('../../deploy/kubernetes/network-policy-api/clusternetworkpolicies.yaml', import.meta.url),
);
export const NAMESPACE_YAML = fileURLToPath(
  new URL('../../deploy/kubernetes/namespace.yaml', import.meta.url),
);
export const RBAC_YAML = fileURLToPath(new URL('../../deploy/kubernetes/rbac.yaml', import.meta.url));

/** True when setup has built the components; a test file can skip with a reason otherwise. */
export const kubeClusterAvailable = (): boolean => kubeBinariesBuilt();

export interface KubeClusterOptions {
  /** Names the folder and the logs, so a failure says which file's cluster it was. */
  name: string;
  /**
   * kube-apiserver's watch cache (default on, as in production). Off, every watch and list
   * goes to etcd itself, so a compaction shows as 410 at once, and there are no BOOKMARKs.
   */
  watchCache?: boolean;
  /** How long to wait for /readyz; default 120 s (a loaded 2-core machine). */
  readyTimeoutMs?: number;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface KubeCluster {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  /** PEM of the cluster CA (the server certificate's issuer). */
  readonly ca: string;
  readonly caFile: string;
  /** A kubeconfig for system:masters (static token). */
  readonly adminKubeconfig: string;
  readonly etcd: EtcdServer;
  readonly dir: string;
  /** One API request as admin (JSON in and out); resolves with any status, rejects only when unreachable. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** kubectl as admin; rejects on a non-zero exit unless `allowFailure`. */
  kubectl(args: string[], options?: { input?: string; allowFailure?: boolean }): Promise<KubectlResult>;
  /**
   * Creates a namespace with its `default` ServiceAccount (the controller-manager, which is not
   * running here, would make it; without it the ServiceAccount admission refuses every Pod).
   */
  createNamespace(name: string): Promise<void>;
  /** Applies deploy/kubernetes/crds.yaml and the ClusterNetworkPolicy CRD, waits until every CRD is Established. */
  applyCrds(): Promise<void>;
  /** Applies deploy/kubernetes's namespace.yaml and rbac.yaml, exactly as the install does. */
  applyRbac(): Promise<void>;
  /** A kubeconfig authenticating as the ServiceAccount with a token from the TokenRequest API. */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** Compacts etcd up to its current revision. */
  compact(): Promise<void>;
  /** Stops kube-apiserver and starts it again on the same port and etcd (its watch cache starts afresh). */
  restartApiServer(): Promise<void>;
  /** Stops everything and removes the folder. Safe to call twice. */
  stop(): Promise<void>;
}

function apiRequest(
  url: string,
  ca: string,
  token: string,
  method: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca,
        timeout: 30_000,
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: 'application/json',
          ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON (/readyz answers "ok"): kept as text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const getStatus = (url: string, ca: string, token: string): Promise<number> =>
  apiRequest(url, ca, token, 'GET').then(
    (r) => r.status,
    () => 0,
  );

export async function startKubeCluster(options: KubeClusterOptions): Promise<KubeCluster> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, `tern-kube-${options.name.replace(/[^a-z0-9-]/gi, '-')}-`));
  ownedDirs.add(dir);
  const pki = join(dir, 'pki');
  const adminToken = `admin-${Math.random().toString(36).slice(2)}`;
  let etcd: EtcdServer | undefined;
  let apiPid: number | undefined;
  let port = 0;
  let stopped = false;

  const logFile = join(dir, 'kube-apiserver.log');
  const logTail = () => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopProcess(apiPid, 5000);
    if (apiPid) runningPids.delete(apiPid);
    apiPid = undefined;
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
    ownedDirs.delete(dir);
  };

  try {
    mkdirSync(pki);
    await makePki(pki);
    const caFile = join(pki, 'ca.crt');
    const ca = readFileSync(caFile, 'utf8');
    writeFileSync(join(pki, 'tokens.csv'), `${adminToken},tern-test-admin,admin,"system:masters"\n`);
    etcd = await startEtcd({ binary: kubeBinary('etcd') });
    const etcdServer = etcd;

    const launch = async () => {
      const out = openSync(logFile, 'a');
      const child = spawn(
        kubeBinary('kube-apiserver'),
        [
          ...apiServerArgs({
            etcdServers: etcdServer.endpoint,
            bindAddress: '127.0.0.1',
            port,
            pki,
            tokenAuthFile: join(pki, 'tokens.csv'),
          }),
          '--etcd-compaction-interval=0', // tests compact when they mean to (compact())
          // Loopback may not be the `kubernetes` Service's endpoint; nothing here needs that Service.
          '--endpoint-reconciler-type=none',
          `--watch-cache=${options.watchCache ?? true}`,
        ],
        { cwd: dir, stdio: ['ignore', out, out] },
      );
      closeSync(out);
      const pid = child.pid;
      apiPid = pid;
      if (pid) runningPids.add(pid);
      let exited: string | undefined;
      child.once('exit', (code, signal) => {
        exited = `kube-apiserver exited (code ${code}, signal ${signal})`;
        if (pid) runningPids.delete(pid);
        if (apiPid === pid) apiPid = undefined;
      });
      const deadline = Date.now() + readyTimeoutMs;
      for (;;) {
        if (exited) throw new Error(`${exited}\n--- kube-apiserver log (${options.name}) ---\n${logTail()}`);
        if ((await getStatus(`https://127.0.0.1:${port}/readyz`, ca, adminToken)) === 200) return;
        if (Date.now() > deadline)
          throw new Error(`kube-apiserver not ready within ${readyTimeoutMs} ms\n${logTail()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    const stopApiServer = async () => {
      const pid = apiPid;
      await stopProcess(pid, 5000);
      if (pid) runningPids.delete(pid);
      apiPid = undefined;
    };

    // A free port can be taken between our probe and the bind: then try another.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await launch();
        break;
      } catch (e) {
        await stopApiServer();
        if (attempt >= 3 || !/address already in use/.test(String(e))) throw e;
      }
    }

    const url = `https://127.0.0.1:${port}`;
    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(adminKubeconfig, kubeconfigText(url, caFile, adminToken));
    const kubectl: KubeCluster['kubectl'] = async (args, o = {}) => {
      const r = await execa(kubeBinary('kubectl'), [`--kubeconfig=${adminKubeconfig}`, ...args], {
        input: o.input,
        reject: false,
        stdin: o.input === undefined ? 'ignore' : 'pipe',
      });
      const result = { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
      if (result.exitCode !== 0 && !o.allowFailure)
        throw new Error(`kubectl ${args.join(' ')} failed (${result.exitCode}): ${r.stderr || r.stdout}`);
      return result;
    };
    let kubeconfigs = 0;
    return {
      url,
      ca,
      caFile,
      adminKubeconfig,
      etcd: etcdServer,
      dir,
      request: (method, path, body) => apiRequest(url + path, ca, adminToken, method, body),
      kubectl,
      createNamespace: async (name) => {
        await kubectl(['create', 'namespace', name]);
        await kubectl(['-n', name, 'create', 'serviceaccount', 'default']);
      },
      applyCrds: async () => {
        const files = ['-f', CRDS_YAML, '-f', CNP_CRD_YAML];
        await kubectl(['apply', '--server-side', ...files]);
        await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...files]);
        // Established is the API server's view; discovery (and so kubectl) can lag a moment.
        for (let i = 0; i < 100; i++) {
          const r = await kubectl(
            ['get', 'ippools.tern.network,clusternetworkpolicies.policy.networking.k8s.io'],
            {
              allowFailure: true,
            },
          );
          if (r.exitCode === 0) return;
          await new Promise((res) => setTimeout(res, 100));
        }
        throw new Error('the tern.network resources never became servable');
      },
      applyRbac: async () => {
        await kubectl(['apply', '-f', NAMESPACE_YAML, '-f', RBAC_YAML]);
      },
      serviceAccountKubeconfig: async (namespace, name) => {
        const token = (
          await kubectl(['-n', namespace, 'create', 'token', name, '--duration=2h'])
        ).stdout.trim();
        const file = join(dir, `sa-${namespace}-${name}-${++kubeconfigs}.kubeconfig`);
        writeFileSync(file, kubeconfigText(url, caFile, token));
        return file;
      },
      compact: async () => etcdServer.compact(await etcdServer.revision()),
      restartApiServer: async () => {
        await stopApiServer();
        await launch();
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
