// A one-node lab for the CNI integration tests: a "node" netns (with an uplink netns giving it an
// address and a default route, as a real host has) running the CNI agent, pod netns created on
// demand, and the real `tern` executable invoked exactly as a runtime does (env + stdin).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { NetnsSet, stopProcess, waitFor } from '../../support/netns.js';
import { buildPrivately, privateBuildDir } from '../../support/private-build.js';

export const ROOT = new URL('../../../', import.meta.url).pathname;
/**
 * Tests build their own copy of the executable and the agent, outside dist/ (which other builds
 * rewrite at any time): a private outDir with a package.json (ESM) and a node_modules link.
 */
export const BUILD_DIR = privateBuildDir('tern-cni-build');
/**
 * The plugin as it is installed: the one-file CommonJS bundle of cni/main.ts
 * (scripts/build-cni-bundle.mjs), named `tern`, exec'd directly through its shebang.
 */
export const TERN_BIN = join(BUILD_DIR, 'plugin/tern');
/** The same executable as tsc emits it (ESM, one file per module): what the bundle replaces. */
export const TERN_ESM = join(BUILD_DIR, 'cni/main.js');
export const AGENT_BIN = join(BUILD_DIR, 'test/support/cni-agent.js');
const BUILT = [TERN_BIN, TERN_ESM, AGENT_BIN];

/**
 * Bundles the plugin into `file` with `node` (default: this node) in its shebang. An extensionless
 * file is CommonJS only outside a `"type": "module"` package scope, so the directory gets a
 * package.json saying so (BUILD_DIR and the repository are ESM).
 */
export async function bundlePlugin(file: string, node = process.execPath): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(join(dirname(file), 'package.json'), '{"type":"commonjs"}\n');
  await execa(
    process.execPath,
    [join(ROOT, 'scripts/build-cni-bundle.mjs'), '--file', file, '--node', node],
    {
      cwd: ROOT,
    },
  );
}
export const UPLINK_MTU = 1400;

/** Compiles the executable, the standalone agent and the bundle privately (once, when stale). */
export async function buildCni(): Promise<void> {
  await buildPrivately({
    dir: BUILD_DIR,
    tsconfig: 'test/integration/cni/tsconfig.cni-build.json',
    sources: ['cni', 'felix/cni', 'kernel', 'ipam', 'model', 'datastore', 'native', 'test/support'],
    outputs: BUILT,
    after: () => bundlePlugin(TERN_BIN),
  });
}

export interface TernOutput {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json: Record<string, unknown> | undefined;
}

export interface Invocation {
  command: string;
  containerId?: string;
  ifname?: string;
  netns?: string;
  args?: string;
  conf?: Record<string, unknown>;
  /** Raw stdin instead of conf. */
  stdin?: string;
  env?: Record<string, string | undefined>;
}

export interface AgentOptions {
  pools: string[];
  holdAddMs?: number;
  etcd?: string;
  etcdPrefix?: string;
}

export class CniLab {
  readonly netns = new NetnsSet();
  node = '';
  socket = '';
  private dir = '';
  private agent: ChildProcess | undefined;
  agentLog = '';

  constructor(private readonly agentOptions: AgentOptions) {}

  /** Node netns with uplink 10.254.0.1/30 (MTU UPLINK_MTU) and a default route, then the agent. */
  async start(): Promise<this> {
    await buildCni();
    this.dir = await mkdtemp(join(tmpdir(), 'tern-cni-'));
    this.socket = join(this.dir, 'cni.sock');
    this.node = await this.netns.add('node');
    const up = await this.netns.add('up');
    await this.netns.link(this.node, 'up0', '10.254.0.1/30', up, 'down0', '10.254.0.2/30');
    await this.ip(['link', 'set', 'up0', 'mtu', String(UPLINK_MTU)]);
    await this.ip(['route', 'add', 'default', 'via', '10.254.0.2']);
    await this.netns.exec(this.node, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    await this.startAgent();
    return this;
  }

  async startAgent(extra: Partial<AgentOptions> = {}): Promise<void> {
    const o = { ...this.agentOptions, ...extra };
    const args = [
      'netns',
      'exec',
      this.node,
      process.execPath,
      AGENT_BIN,
      '--socket',
      this.socket,
      '--node',
      'node1',
      '--log-level',
      'info',
      ...o.pools.flatMap((p) => ['--pool', p]),
      ...(o.holdAddMs ? ['--hold-add-ms', String(o.holdAddMs)] : []),
      ...(o.etcd ? ['--etcd', o.etcd] : []),
      ...(o.etcdPrefix ? ['--etcd-prefix', o.etcdPrefix] : []),
    ];
    const agent = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.agent = agent;
    let out = '';
    agent.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    agent.stderr.setEncoding('utf8').on('data', (d: string) => (this.agentLog += d));
    await waitFor(
      'the CNI agent to be ready',
      () => out.includes('ready') || agent.exitCode !== null,
      60_000,
      50,
    );
    if (agent.exitCode !== null) throw new Error(`agent exited: ${this.agentLog}`);
  }

  async stopAgent(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    if (!agent?.pid) return;
    // `ip netns exec` execs node in place: the pid is the agent's.
    if (signal === 'SIGKILL') {
      try {
        process.kill(agent.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await waitFor(
        'the agent to die',
        () => agent.exitCode !== null || agent.signalCode !== null,
        10_000,
        20,
      );
    } else {
      await stopProcess(agent.pid);
    }
  }

  /** A fresh pod netns; returns its name and the path a runtime passes as CNI_NETNS. */
  async pod(role: string): Promise<{ name: string; path: string }> {
    const name = await this.netns.add(role);
    return { name, path: `/var/run/netns/${name}` };
  }

  ip(args: string[], ns = this.node) {
    return execa('ip', ['-n', ns, ...args]);
  }

  inNode(cmd: string, args: string[], reject = true) {
    return this.netns.exec(this.node, cmd, args, { reject, timeout: 20_000 });
  }

  /** Runs the real `tern` executable with CNI env and stdin, as libcni does. */
  async tern(inv: Invocation): Promise<TernOutput> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      CNI_COMMAND: inv.command,
      CNI_CONTAINERID: inv.containerId ?? '',
      CNI_NETNS: inv.netns ?? '',
      CNI_IFNAME: inv.ifname ?? 'eth0',
      CNI_PATH: '/usr/lib/cni',
      CNI_ARGS: inv.args ?? '',
      TERN_CNI_SOCKET: this.socket,
    };
    for (const [k, v] of Object.entries(inv.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const stdin =
      inv.stdin ?? JSON.stringify({ cniVersion: '1.0.0', name: 'tern', type: 'tern', ...inv.conf });
    return runPlugin(TERN_BIN, env, stdin);
  }

  /** Host veths and pod routes (proto 90) left in the node netns. */
  async residue(): Promise<{ veths: string[]; routes: string[] }> {
    const links = JSON.parse((await this.ip(['-j', 'link', 'show'])).stdout) as { ifname: string }[];
    const r4 = (await this.ip(['-4', 'route', 'show', 'proto', '90'])).stdout;
    const r6 = (await this.ip(['-6', 'route', 'show', 'proto', '90'])).stdout;
    return {
      veths: links.map((l) => l.ifname).filter((n) => n.startsWith('tern')),
      routes: [...r4.split('\n'), ...r6.split('\n')].filter(Boolean),
    };
  }

  async cleanup(): Promise<void> {
    await this.stopAgent().catch(() => undefined);
    await this.netns.cleanup();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Runs a CNI plugin binary (ours or a reference one) with env and stdin. */
export async function runPlugin(
  bin: string,
  env: Record<string, string>,
  stdin: string,
  prefix: string[] = [],
): Promise<TernOutput> {
  const [cmd, ...args] = [...prefix, bin];
  const r = await execa(cmd!, args, { env, extendEnv: false, input: stdin, reject: false, timeout: 60_000 });
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { code: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr, json };
}

export const k8sArgs = (ns: string, pod: string) =>
  `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=x`;

/** The pod's (first) IPv4 address from an ADD result. */
export function podIp(out: TernOutput, family: 4 | 6 = 4): string {
  const ips = (out.json?.ips ?? []) as { address: string }[];
  const ip = ips.find((i) => (family === 4 ? !i.address.includes(':') : i.address.includes(':')));
  if (!ip) throw new Error(`no IPv${family} address in ${out.stdout} ${out.stderr}`);
  return ip.address.split('/')[0]!;
}
