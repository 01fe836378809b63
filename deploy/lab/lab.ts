// The lab: a small tern cluster on this machine, built from network namespaces. A ToR
// namespace (route reflector) and N node namespaces share the rack's L2 segment; each node
// runs the real tern-node on a private etcd (Unix socket); pods are network namespaces
// plumbed by the real `tern` CNI executable, exactly as a container runtime calls it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { callAgent } from '../../cli/agent-client.js';
import { openDatastore, type Datastore } from '../../datastore/index.js';
import {
  AlreadyExistsError,
  IPAM_ANNOTATIONS,
  NotFoundError,
  TERN_API_VERSION,
  ValidationError,
  containsCidr,
  keyOf,
  parseCidr,
  parseResource,
  type AnyResource,
  type Kind,
  type Pod,
} from '../../model/index.js';
import { formatMatrix, type Matrix } from './matrix.js';
import {
  buildNode,
  buildTor,
  createNetns,
  deleteNetns,
  listNetns,
  planRack,
  type RackPlan,
} from './network.js';
import type { ProbeResult, ProbeTarget, Protocol } from './probe.js';
import { labKubectl, startControlPlane } from './kubernetes/control-plane.js';
import { hasExited, isOurs, startProcess, stopLabProcess } from './processes.js';
import { LabStateFile, type LabState } from './state.js';
import { startTor, torPeers, torRoutes, type TorKind, type TorPeer, type TorRoute } from './tor.js';
import { clusterAsn, torSpeaks, type Topology } from './topology.js';

export const DEFAULT_LAB_DIR = '/run/tern-lab';
export const DEFAULT_LAB_PREFIX = 'ternlab-';

export class LabExistsError extends Error {}
export class NoLabError extends Error {}

export interface LabOptions {
  dir?: string;
  /** Prefix of every network namespace the lab creates. */
  prefix?: string;
  /** The repository (its dist/ holds the executables). */
  repo: string;
  progress?: (message: string) => void;
  /** Extra tern-node flags for every agent (e.g. ['--route-resync-seconds', '2']). */
  agentArgs?: string[];
}

export interface CreatedPod {
  ip: string;
  /** performance.timeOrigin + performance.now() when the CNI ADD returned (ms, sub-ms precision). */
  cniReturnedAt: number;
}

/** A route as `ip -j route` prints it. */
export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
  type?: string;
}

export interface PodSpec {
  namespace: string;
  name: string;
  node: string;
  labels?: Record<string, string>;
  ip?: string;
  ports?: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Raised inside a wait's check when waiting longer cannot help (a process died). */
class GiveUp extends Error {}

async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof GiveUp) throw e;
      last = e;
    }
    await sleep(200);
  }
  throw new Error(
    `timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? ` (${(last as Error).message})` : ''}`,
  );
}

/** A process of the lab exited: say so with the end of its log (a failed up removes the file). */
function exited(what: string, logFile: string): GiveUp {
  let tail = '';
  try {
    tail = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-5).join('\n');
  } catch {
    /* no log written */
  }
  return new GiveUp(`${what} exited${tail ? `; last lines of its log:\n${tail}` : ''}`);
}

export class Lab {
  readonly dir: string;
  readonly prefix: string;
  private readonly file: LabStateFile;
  private readonly progress: (message: string) => void;
  private ds: Datastore | undefined;

  constructor(private readonly options: LabOptions) {
    this.dir = options.dir ?? DEFAULT_LAB_DIR;
    this.prefix = options.prefix ?? DEFAULT_LAB_PREFIX;
    this.file = new LabStateFile(this.dir);
    this.progress = options.progress ?? (() => undefined);
  }

  exists(): boolean {
    return this.file.exists();
  }

  state(): LabState {
    if (!this.file.exists())
      throw new NoLabError(`no lab is running (no ${this.file.file}); start one with: ternctl lab up`);
    return this.file.read();
  }

  private save(mutate: (s: LabState) => void): LabState {
    const s = this.file.read();
    mutate(s);
    this.file.write(s);
    return s;
  }

  private topology(): Topology {
    return this.state().topology as Topology;
  }

  private get etcdEndpoint(): string {
    return `unix://${join(this.dir, 'etcd.sock')}:2379`;
  }

  async datastore(): Promise<Datastore> {
    this.ds ??= await openDatastore({ backend: 'etcd', etcdEndpoints: [this.etcdEndpoint] });
    return this.ds;
  }

  async close(): Promise<void> {
    await this.ds?.close();
    this.ds = undefined;
  }

  private rack(t: Topology): RackPlan {
    return planRack(
      this.prefix,
      t.rackSubnet,
      t.nodes.map((n) => n.name),
    );
  }

  // ---- up ---------------------------------------------------------------------------------

  async up(t: Topology): Promise<void> {
    if (this.file.exists()) {
      throw new LabExistsError(
        `a lab already exists (created ${this.file.read().createdAt}); run: ternctl lab down`,
      );
    }
    for (const exe of ['dist/felix/main.js', 'dist/bgp/daemon/main.js']) {
      if (!existsSync(join(this.options.repo, exe)))
        throw new Error(`${exe} is missing: run npm run build (or npm run setup)`);
    }
    this.file.create(this.prefix);
    this.save((s) => (s.topology = t));
    try {
      await this.installCniPlugin();
      await this.build(t);
    } catch (e) {
      this.progress(`lab up failed: ${(e as Error).message}; removing what was created`);
      await this.down();
      throw e;
    }
  }

  private async build(t: Topology): Promise<void> {
    const rack = this.rack(t);
    const record = (netns: string) => this.save((s) => s.namespaces.push(netns));
    this.progress(
      `network: ToR ${rack.torNetns} (${rack.torAddress}) with ${rack.nodes.length} nodes on ${t.rackSubnet}`,
    );
    await buildTor(rack, record);
    for (const n of rack.nodes) await buildNode(rack, n, record);
    if (t.kubernetes) await this.startKubernetes(rack, record);

    this.progress('etcd: private instance on a Unix socket');
    await this.startEtcd();
    const ds = await this.datastore();
    await this.seed(ds, t, rack);

    const nodeAsn = (name: string) => t.nodes.find((n) => n.name === name)?.asn ?? clusterAsn(t);
    this.save((s) => {
      s.torAddress = rack.torAddress;
      s.etcdEndpoint = this.etcdEndpoint;
    });
    if (torSpeaks(t)) {
      const role = t.bgp.mode === 'reflector' ? 'route reflector' : 'eBGP peer';
      this.progress(`top-of-rack: ${t.tor.kind} ${role} (AS ${t.tor.asn})`);
      const tor = startTor({
        kind: t.tor.kind,
        asn: t.tor.asn,
        netns: rack.torNetns,
        address: rack.torAddress,
        nodes: rack.nodes.map((n) => ({ name: n.name, address: n.address, asn: nodeAsn(n.name) })),
        originate: t.tor.originate,
        dir: this.dir,
        repo: this.options.repo,
      });
      this.save((s) => s.processes.push(tor));
    } else {
      this.progress(`top-of-rack: a plain switch (BGP mode ${t.bgp.mode})`);
    }

    for (const n of rack.nodes) {
      this.save((s) => {
        s.nodes[n.name] = {
          netns: n.netns,
          address: n.address,
          cniSocket: join(this.dir, `${n.name}-cni.sock`),
          agentSocket: join(this.dir, `${n.name}-agent.sock`),
          httpSocket: '',
        };
      });
      this.startAgentProcess(n.name);
    }
    for (const n of rack.nodes) await this.waitAgent(n.name);

    for (const p of t.pods) {
      this.progress(`pod ${p.namespace}/${p.name} on ${p.node}`);
      await this.addPod(p);
    }
    if (t.policies.length) {
      this.progress(`policies: ${t.policies.length}`);
      await this.apply(t.policies);
    }
    this.progress('waiting for BGP to converge');
    await this.waitConverged(60_000);
  }

  // ---- Kubernetes ------------------------------------------------------------------------

  /** The control namespace on the rack, and the control plane in it. */
  private async startKubernetes(rack: RackPlan, record: (netns: string) => void): Promise<void> {
    // The control namespace is wired like a node: an uplink on the rack, default route via the ToR.
    await buildNode(rack, rack.control, record);
    const cp = await startControlPlane({
      dir: this.dir,
      netns: rack.control.netns,
      address: rack.control.address,
      nodes: rack.nodes.map((n) => n.name),
      record: (p) => this.save((s) => s.processes.push(p)),
      progress: this.progress,
    });
    this.save(
      (s) =>
        (s.kube = {
          netns: rack.control.netns,
          address: rack.control.address,
          url: cp.url,
          adminKubeconfig: cp.adminKubeconfig,
        }),
    );
  }

  /** kubectl as the lab's admin, inside the control namespace. */
  async kubectl(
    args: string[],
    options: { input?: string; allowFailure?: boolean } = {},
  ): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    const k = this.state().kube;
    if (!k)
      throw new NoLabError(
        'this lab has no Kubernetes control plane (start it with: ternctl lab up --kubernetes)',
      );
    return labKubectl(k.netns, k.adminKubeconfig, args, options);
  }

  // ---- agents -----------------------------------------------------------------------------

  private agentRole(node: string): string {
    return `agent:${node}`;
  }

  private startAgentProcess(name: string): void {
    const t = this.topology();
    const n = this.state().nodes[name]!;
    const spec = t.nodes.find((x) => x.name === name)!;
    this.progress(`node ${name}: tern-node in ${n.netns} (${n.address})`);
    const agent = startProcess({
      role: this.agentRole(name),
      netns: n.netns,
      command: process.execPath,
      args: [
        join(this.options.repo, 'dist/felix/main.js'),
        '--node-name',
        name,
        '--etcd-endpoints',
        this.etcdEndpoint,
        '--node-ipv4',
        n.address,
        '--cni-socket',
        n.cniSocket,
        '--control-socket',
        n.agentSocket,
        '--node-labels',
        JSON.stringify(spec.labels ?? {}),
        ...(spec.asn !== undefined ? ['--as-number', String(spec.asn)] : []),
        ...(spec.routeReflector ? ['--route-reflector-cluster-id', n.address] : []),
        ...(this.options.agentArgs ?? []),
      ],
      logFile: join(this.dir, `${name}.log`),
    });
    this.save((s) => {
      s.processes = s.processes.filter((p) => p.role !== agent.role);
      s.processes.push(agent);
    });
  }

  private async waitAgent(name: string): Promise<void> {
    const log = join(this.dir, `${name}.log`);
    await waitUntil(
      `agent on ${name} (see ${log})`,
      async () => {
        const p = this.agentProcess(name);
        if (p && hasExited(p)) throw exited(`tern-node on ${name}`, log);
        return callAgent(this.state().nodes[name]!.agentSocket, '/v1/status', undefined, 1000);
      },
      30_000,
    );
  }

  private agentProcess(name: string) {
    return this.state().processes.find((x) => x.role === this.agentRole(name));
  }

  private node(name: string) {
    const n = this.state().nodes[name];
    if (!n)
      throw new ValidationError(
        'node',
        `unknown node ${JSON.stringify(name)} (nodes: ${Object.keys(this.state().nodes).join(', ')})`,
      );
    return n;
  }

  /** PID of the node's running agent, if any. */
  agentPid(name: string): number | undefined {
    this.node(name);
    const p = this.agentProcess(name);
    return p && isOurs(p) ? p.pid : undefined;
  }

  /** Stops the node's agent: SIGTERM (clean stop) or SIGKILL (a crash). Routes stay in the kernel. */
  async stopAgent(name: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    this.node(name);
    const p = this.agentProcess(name);
    if (!p || !isOurs(p)) return;
    if (signal === 'SIGKILL') {
      process.kill(p.pid, 'SIGKILL');
      while (isOurs(p)) await sleep(5);
    } else {
      await stopLabProcess(p);
    }
    this.save((s) => (s.processes = s.processes.filter((x) => x.role !== p.role)));
  }

  /** Starts the node's agent again (after stopAgent) and waits until it serves its API. */
  async startAgent(name: string): Promise<void> {
    if (this.agentPid(name) !== undefined) throw new AlreadyExistsError(`the agent on ${name} is running`);
    this.startAgentProcess(name);
    await this.waitAgent(name);
  }

  /** Takes a node out of the cluster: stops its agent and deletes its Node object. */
  async removeNode(name: string): Promise<void> {
    await this.stopAgent(name);
    const ds = await this.datastore();
    await ds.delete('Node', { name }).catch((e: unknown) => {
      if (!(e instanceof NotFoundError)) throw e;
    });
  }

  /** The node's routes in its kernel (main table), optionally of one protocol number. */
  async kernelRoutes(name: string, protocol?: number): Promise<KernelRoute[]> {
    const n = this.node(name);
    const { stdout } = await execa('ip', [
      '-n',
      n.netns,
      '-j',
      'route',
      'show',
      ...(protocol !== undefined ? ['proto', String(protocol)] : []),
    ]);
    return JSON.parse(stdout || '[]') as KernelRoute[];
  }

  private async startEtcd(): Promise<void> {
    mkdirSync(join(this.dir, 'etcd'), { recursive: true, mode: 0o700 });
    const etcd = startProcess({
      role: 'etcd',
      command: 'etcd',
      args: [
        '--name',
        'lab',
        '--data-dir',
        join(this.dir, 'etcd'),
        '--listen-client-urls',
        'unix://etcd.sock:2379',
        '--advertise-client-urls',
        'unix://etcd.sock:2379',
        '--listen-peer-urls',
        'unix://etcd-peer.sock:2380',
        '--initial-advertise-peer-urls',
        'unix://etcd-peer.sock:2380',
        '--initial-cluster',
        'lab=unix://etcd-peer.sock:2380',
      ],
      cwd: this.dir,
      logFile: join(this.dir, 'etcd.log'),
    });
    this.save((s) => s.processes.push(etcd));
    await waitUntil(
      'etcd',
      async () => {
        if (!isOurs(etcd)) throw exited('etcd', join(this.dir, 'etcd.log'));
        const ds = await this.datastore();
        await ds.list('IPPool');
        return true;
      },
      20_000,
    );
  }

  private async seed(ds: Datastore, t: Topology, rack: RackPlan): Promise<void> {
    const objects: unknown[] = [
      ...t.pools.map((p) => ({
        apiVersion: TERN_API_VERSION,
        kind: 'IPPool',
        metadata: { name: p.name },
        spec: { cidr: p.cidr, ...(p.blockSize ? { blockSize: p.blockSize } : {}) },
      })),
      {
        apiVersion: TERN_API_VERSION,
        kind: 'BGPConfiguration',
        metadata: { name: 'default' },
        // Without the mesh, the ToR (reflector mode) or the nodes marked routeReflector reflect.
        spec: {
          asNumber: clusterAsn(t),
          nodeToNodeMesh: t.bgp.mode === 'mesh' || t.bgp.mode === 'ebgp-tor',
        },
      },
      ...(torSpeaks(t)
        ? [
            {
              apiVersion: TERN_API_VERSION,
              kind: 'BGPPeer',
              metadata: { name: 'tor' },
              spec: { peerIP: rack.torAddress, asNumber: t.tor.asn },
            },
          ]
        : []),
      ...t.namespaces.map((n) => ({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: n.name, labels: { ...n.labels, 'kubernetes.io/metadata.name': n.name } },
      })),
    ];
    await this.apply(objects);
  }

  /**
   * Every running agent has all its sessions up (and so has the ToR, when it speaks BGP), and
   * every running node has a learned route covering every block of every other running node.
   */
  async waitConverged(timeoutMs: number): Promise<void> {
    const t = this.topology();
    const ds = await this.datastore();
    await waitUntil(
      'BGP convergence',
      async () => {
        const running = Object.keys(this.state().nodes).filter((n) => this.agentPid(n) !== undefined);
        if (torSpeaks(t)) {
          const peers = (await this.torPeers()).filter((p) => running.includes(p.name));
          if (peers.length < running.length || !peers.every((p) => p.established)) return undefined;
        }
        for (const name of running) {
          const st = (await this.nodeStatus(name)) as { peers: Array<{ state: string }> };
          if (st.peers.length === 0 || !st.peers.every((p) => p.state === 'Established')) return undefined;
        }
        const blocks = (await ds.list('IPAMBlock')).items.filter(
          (b) => b.spec.affinity && running.includes(b.spec.affinity),
        );
        for (const name of running) {
          const learned = (await this.kernelRoutes(name, 92)).map((r) => r.dst);
          const missing = blocks.filter(
            (b) => b.spec.affinity !== name && !learned.some((d) => covers(d, b.spec.cidr)),
          );
          if (missing.length) return undefined;
        }
        return true;
      },
      timeoutMs,
    );
  }

  // ---- pods -------------------------------------------------------------------------------

  private podNetns(namespace: string, name: string): string {
    return `${this.state().prefix}p-${namespace}-${name}`;
  }

  async addPod(spec: PodSpec): Promise<string> {
    return (await this.createPod(spec)).ip;
  }

  /**
   * Creates a pod (Pod object, netns, CNI ADD through the real plugin) and, unless `server` is
   * false, starts its TCP/UDP identity server.
   */
  async createPod(spec: PodSpec, options: { server?: boolean } = {}): Promise<CreatedPod> {
    const s = this.state();
    const node = s.nodes[spec.node];
    if (!node)
      throw new ValidationError(
        'node',
        `unknown node ${JSON.stringify(spec.node)} (nodes: ${Object.keys(s.nodes).join(', ')})`,
      );
    const key = `${spec.namespace}/${spec.name}`;
    if (s.pods[key]) throw new AlreadyExistsError(`pod ${key} already exists`);
    const ds = await this.datastore();
    if (!(await ds.get('Namespace', { name: spec.namespace }))) {
      throw new NotFoundError(`namespace ${JSON.stringify(spec.namespace)} does not exist`);
    }
    const ports = spec.ports ?? [80, 81];
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        labels: spec.labels ?? {},
        ...(spec.ip ? { annotations: { [IPAM_ANNOTATIONS.ipAddrs]: JSON.stringify([spec.ip]) } } : {}),
      },
      spec: {
        nodeName: spec.node,
        containers: [
          {
            name: 'server',
            ports: ports.flatMap((port) =>
              (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({
                name: `serve-${port}-${protocol.toLowerCase()}`,
                containerPort: port,
                protocol,
              })),
            ),
          },
        ],
      },
    };
    await ds.create<'Pod'>(pod);
    const netns = this.podNetns(spec.namespace, spec.name);
    const containerID = `lab-${spec.namespace}-${spec.name}`;
    try {
      await createNetns(netns);
      this.save((st) => {
        st.namespaces.push(netns);
        st.pods[key] = { netns, node: spec.node, containerID };
      });
      const result = await this.cni('ADD', spec.namespace, spec.name);
      const cniReturnedAt = performance.timeOrigin + performance.now();
      const ip = (JSON.parse(result) as { ips?: Array<{ address: string }> }).ips?.[0]?.address.split('/')[0];
      if (!ip) throw new Error(`CNI ADD for ${key} returned no address: ${result}`);
      if (options.server === false) {
        this.save((st) => (st.pods[key] = { netns, node: spec.node, containerID, ip }));
        return { ip, cniReturnedAt };
      }
      const server = startProcess({
        role: `pod:${key}`,
        netns,
        command: process.execPath,
        args: [join(this.options.repo, 'dist/deploy/lab/pod-server.js'), key, ...ports.map(String)],
        logFile: join(this.dir, `pod-${spec.namespace}-${spec.name}.log`),
      });
      this.save((st) => {
        st.pods[key] = { netns, node: spec.node, containerID, ip };
        st.processes.push(server);
      });
      return { ip, cniReturnedAt };
    } catch (e) {
      await this.delPod(spec.namespace, spec.name).catch(() => undefined);
      throw e;
    }
  }

  async delPod(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const s = this.state();
    const pod = s.pods[key];
    if (!pod)
      throw new NotFoundError(`no pod ${key} in the lab (pods: ${Object.keys(s.pods).join(', ') || 'none'})`);
    for (const p of s.processes.filter((x) => x.role === `pod:${key}`)) await stopLabProcess(p);
    await this.cni('DEL', namespace, name);
    await deleteNetns(pod.netns);
    const ds = await this.datastore();
    await ds.delete('Pod', { namespace, name }).catch((e: unknown) => {
      if (!(e instanceof NotFoundError)) throw e;
    });
    this.save((st) => {
      delete st.pods[key];
      st.namespaces = st.namespaces.filter((n) => n !== pod.netns);
      st.processes = st.processes.filter((x) => x.role !== `pod:${key}`);
    });
  }

  /** The `tern` CNI plugin as a node has it installed: the one-file bundle, run through its shebang. */
  private get cniPlugin(): string {
    return join(this.dir, 'cni-bin', 'tern');
  }

  /** Bundles cni/main.ts into the lab's plugin directory (scripts/build-cni-bundle.mjs). */
  private async installCniPlugin(): Promise<void> {
    const bin = dirname(this.cniPlugin);
    mkdirSync(bin, { recursive: true });
    // An extensionless file is CommonJS only outside a `"type": "module"` package scope.
    writeFileSync(join(bin, 'package.json'), '{"type":"commonjs"}\n');
    const script = join(this.options.repo, 'scripts/build-cni-bundle.mjs');
    const r = await execa(process.execPath, [script, '--file', this.cniPlugin, '--node', process.execPath], {
      reject: false,
    });
    if (r.exitCode !== 0) throw new Error(`bundling the CNI plugin failed: ${r.stderr || r.stdout}`);
    this.progress(`cni: plugin bundle installed as ${this.cniPlugin}`);
  }

  /** Runs the `tern` executable in the node's namespace with a runtime's env and stdin. */
  private async cni(command: 'ADD' | 'DEL', namespace: string, name: string): Promise<string> {
    const s = this.state();
    const pod = s.pods[`${namespace}/${name}`]!;
    const node = s.nodes[pod.node]!;
    const conf = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'tern',
      type: 'tern',
      agentSocket: node.cniSocket,
    });
    const r = await execa('ip', ['netns', 'exec', node.netns, this.cniPlugin], {
      input: conf,
      reject: false,
      env: {
        CNI_COMMAND: command,
        CNI_CONTAINERID: pod.containerID,
        CNI_NETNS: `/var/run/netns/${pod.netns}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni',
        CNI_ARGS: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`,
      },
    });
    if (r.exitCode !== 0) {
      let msg = r.stdout || r.stderr;
      try {
        const err = JSON.parse(r.stdout) as { code: number; msg: string; details?: string };
        msg = `code ${err.code}: ${err.msg}${err.details ? ` (${err.details})` : ''}`;
      } catch {
        /* not CNI error JSON */
      }
      throw new Error(`CNI ${command} for ${namespace}/${name} failed: ${msg}`);
    }
    return r.stdout;
  }

  // ---- objects ----------------------------------------------------------------------------

  /** Creates or updates objects (validated first: a bad one is rejected and nothing of it written). */
  async apply(objects: readonly unknown[]): Promise<string[]> {
    const parsed = objects.map((o, i) => {
      try {
        return parseResource(o);
      } catch (e) {
        if (e instanceof ValidationError)
          throw new ValidationError(
            `object ${i + 1} (${describe(o)}): ${e.field}`,
            e.message.slice(e.field.length + 2),
          );
        throw e;
      }
    });
    const ds = await this.datastore();
    const done: string[] = [];
    for (const obj of parsed) {
      if (obj.kind === 'Pod') {
        const pod = obj as Pod;
        if (!pod.spec?.nodeName)
          throw new ValidationError(`Pod ${describe(pod)}: spec.nodeName`, 'must name a lab node');
        await this.addPod({
          namespace: pod.metadata.namespace!,
          name: pod.metadata.name,
          node: pod.spec.nodeName,
          labels: pod.metadata.labels ?? {},
        });
        done.push(`pod/${pod.metadata.namespace}/${pod.metadata.name} created`);
        continue;
      }
      const existing = await ds.get(obj.kind as Kind, keyOf(obj.metadata));
      if (existing) {
        obj.metadata.resourceVersion = existing.metadata.resourceVersion;
        await ds.update<Kind>(obj);
        done.push(`${obj.kind.toLowerCase()}/${describe(obj)} configured`);
      } else {
        await ds.create<Kind>(obj);
        done.push(`${obj.kind.toLowerCase()}/${describe(obj)} created`);
      }
    }
    return done;
  }

  async delete(objects: readonly unknown[]): Promise<string[]> {
    const ds = await this.datastore();
    const done: string[] = [];
    for (const o of objects) {
      const obj = o as AnyResource;
      const kind = (o as { kind?: string })?.kind;
      const name = (o as { metadata?: { name?: string } })?.metadata?.name;
      if (typeof kind !== 'string' || typeof name !== 'string') {
        throw new ValidationError(describe(o), 'needs kind and metadata.name');
      }
      if (kind === 'Pod') {
        await this.delPod(obj.metadata.namespace ?? 'default', name);
      } else {
        await ds.delete(kind as Kind, keyOf(obj.metadata));
      }
      done.push(`${kind.toLowerCase()}/${describe(o)} deleted`);
    }
    return done;
  }

  // ---- observation ------------------------------------------------------------------------

  async torPeers(): Promise<TorPeer[]> {
    const s = this.state();
    const t = this.topology();
    if (!torSpeaks(t)) return [];
    return torPeers({
      kind: t.tor.kind as TorKind,
      dir: this.dir,
      nodes: Object.entries(s.nodes).map(([name, n]) => ({ name, address: n.address, asn: 0 })),
    });
  }

  /** Best routes in the ToR daemon's RIB; empty when the ToR does not speak BGP. */
  async torRoutes(): Promise<TorRoute[]> {
    const t = this.topology();
    if (!torSpeaks(t)) return [];
    return torRoutes({ kind: t.tor.kind as TorKind, dir: this.dir });
  }

  async nodeStatus(node: string): Promise<unknown> {
    const n = this.state().nodes[node];
    if (!n) throw new ValidationError('node', `unknown node ${JSON.stringify(node)}`);
    return callAgent(n.agentSocket, '/v1/status');
  }

  /** Every ordered pair of pods, one port and protocol. */
  async probe(options: { port?: number; protocol?: Protocol; timeoutMs?: number } = {}): Promise<Matrix> {
    const s = this.state();
    const port = options.port ?? 80;
    const protocol = options.protocol ?? 'TCP';
    const pods = Object.keys(s.pods).sort();
    const results = await Promise.all(
      pods.map(async (from) => {
        const targets: ProbeTarget[] = pods
          .filter((to) => to !== from && s.pods[to]!.ip)
          .map((to) => ({ address: s.pods[to]!.ip!, port, protocol, expect: to }));
        const out = await runIn(s.pods[from]!.netns, [
          process.execPath,
          join(this.options.repo, 'dist/deploy/lab/probe.js'),
          String(options.timeoutMs ?? 1000),
          JSON.stringify(targets),
        ]);
        return (JSON.parse(out) as ProbeResult[]).map((r) => ({
          from,
          to: r.expect,
          outcome: r.outcome,
          ...(r.detail ? { detail: r.detail } : {}),
        }));
      }),
    );
    return { port, protocol, pods, cells: results.flat() };
  }

  formatMatrix(m: Matrix): string {
    return formatMatrix(m);
  }

  /** Network namespace of `ns/pod` or of a node. */
  netnsOf(target: string): string {
    const s = this.state();
    if (target.includes('/')) {
      const pod = s.pods[target];
      if (!pod)
        throw new NotFoundError(`no pod ${target} in the lab (pods: ${Object.keys(s.pods).join(', ')})`);
      return pod.netns;
    }
    if (target === 'tor') return `${s.prefix}tor`;
    const node = s.nodes[target];
    if (!node)
      throw new NotFoundError(
        `no node ${JSON.stringify(target)} in the lab (nodes: ${Object.keys(s.nodes).join(', ')}, tor)`,
      );
    return node.netns;
  }

  // ---- down -------------------------------------------------------------------------------

  /** Removes every process, namespace and file the lab made, from its state file and by name. */
  async down(): Promise<{ processes: number; namespaces: number }> {
    await this.close();
    const s = this.file.exists() ? this.file.read() : undefined;
    let processes = 0;
    for (const p of [...(s?.processes ?? [])].reverse()) {
      if (isOurs(p)) processes++;
      await stopLabProcess(p);
    }
    const names = new Set([...(s?.namespaces ?? []), ...(await listNetns(s?.prefix ?? this.prefix))]);
    for (const n of names) await deleteNetns(n);
    this.file.remove();
    return { processes, namespaces: names.size };
  }
}

function describe(o: unknown): string {
  const m = (o as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  const name = typeof m?.name === 'string' ? m.name : '?';
  return typeof m?.namespace === 'string' ? `${m.namespace}/${name}` : name;
}

/** True when route destination `dst` (CIDR, or a bare address for a host route) covers `cidr`. */
function covers(dst: string, cidr: string): boolean {
  const route = parseCidr(dst.includes('/') ? dst : `${dst}/${dst.includes(':') ? 128 : 32}`, 'dst', false);
  return containsCidr(route, parseCidr(cidr));
}

function runIn(netns: string, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`probe in ${netns} failed: ${err}`)),
    );
  });
}
