// Pods with annotations and labels in a Lab, created as a container runtime and the API server
// would: the Pod object first, then a network namespace, then the real `tern` CNI executable
// in the node's namespace (CNI ADD / DEL). The Lab's own addPod sets no annotations, which the
// stable-address sources live in. Every namespace made here starts with the lab's prefix, so
// the lab's `down` sweeps it even if a test dies half-way.
import { join } from 'node:path';
import { execa } from 'execa';
import type { Lab } from '../../../deploy/lab/lab.js';
import { NotFoundError, type Pod } from '../../../model/index.js';

export interface StatefulPodSpec {
  namespace: string;
  name: string;
  node: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

export interface RunningPod {
  namespace: string;
  name: string;
  node: string;
  netns: string;
  containerID: string;
  ip: string;
}

/** A failed CNI call: the CNI error code and message the runtime would see. */
export class CniFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class LabPods {
  private seq = 0;
  readonly running = new Map<string, RunningPod>();

  constructor(
    private readonly lab: Lab,
    private readonly repo: string,
  ) {}

  /** Creates the Pod object, its netns and runs CNI ADD; returns once ADD returned. */
  async add(spec: StatefulPodSpec): Promise<RunningPod> {
    const n = ++this.seq;
    const netns = `${this.lab.state().prefix}s${n}`;
    const containerID = `st-${spec.namespace}-${spec.name}-${n}`;
    const ds = await this.lab.datastore();
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        namespace: spec.namespace,
        name: spec.name,
        labels: spec.labels ?? {},
        annotations: spec.annotations ?? {},
      },
      spec: { nodeName: spec.node, containers: [{ name: 'app' }] },
    };
    await ds.create<'Pod'>(pod);
    await execa('ip', ['netns', 'add', netns]);
    await execa('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    try {
      const out = await this.cni('ADD', spec, netns, containerID);
      const ip = (JSON.parse(out) as { ips: Array<{ address: string }> }).ips[0]!.address.split('/')[0]!;
      const running = { ...spec, netns, containerID, ip };
      this.running.set(`${spec.namespace}/${spec.name}`, running);
      return running;
    } catch (e) {
      await execa('ip', ['netns', 'del', netns], { reject: false });
      await ds.delete('Pod', { namespace: spec.namespace, name: spec.name }).catch(() => undefined);
      throw e;
    }
  }

  /** CNI DEL, then the netns and the Pod object go, as when a pod is deleted. */
  async del(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const pod = this.running.get(key);
    if (!pod) throw new NotFoundError(`no pod ${key} here`);
    await this.cni('DEL', pod, pod.netns, pod.containerID);
    await execa('ip', ['netns', 'del', pod.netns], { reject: false });
    const ds = await this.lab.datastore();
    await ds.delete('Pod', { namespace, name }).catch((e: unknown) => {
      if (!(e instanceof NotFoundError)) throw e;
    });
    this.running.delete(key);
  }

  async delAll(): Promise<void> {
    for (const p of [...this.running.values()]) await this.del(p.namespace, p.name).catch(() => undefined);
  }

  private async cni(
    command: 'ADD' | 'DEL',
    spec: { namespace: string; name: string; node: string },
    netns: string,
    containerID: string,
  ): Promise<string> {
    const node = this.lab.state().nodes[spec.node]!;
    const r = await execa(
      'ip',
      ['netns', 'exec', node.netns, process.execPath, join(this.repo, 'dist/cni/main.js')],
      {
        input: JSON.stringify({
          cniVersion: '1.0.0',
          name: 'tern',
          type: 'tern',
          agentSocket: node.cniSocket,
        }),
        reject: false,
        env: {
          CNI_COMMAND: command,
          CNI_CONTAINERID: containerID,
          CNI_NETNS: `/var/run/netns/${netns}`,
          CNI_IFNAME: 'eth0',
          CNI_PATH: '/usr/lib/cni',
          CNI_ARGS: `K8S_POD_NAMESPACE=${spec.namespace};K8S_POD_NAME=${spec.name}`,
        },
      },
    );
    if (r.exitCode !== 0) {
      let err = { code: -1, msg: r.stdout || r.stderr, details: undefined as string | undefined };
      try {
        err = JSON.parse(r.stdout) as typeof err;
      } catch {
        /* not CNI error JSON */
      }
      throw new CniFailure(err.code, `${err.msg}${err.details ? ` (${err.details})` : ''}`);
    }
    return r.stdout;
  }
}

/**
 * Pings `ip` from `netns` every 2 ms until the first reply; resolves with the reply's receive
 * time (ms since the epoch, from ping's own timestamp), rejects after `timeoutMs`. iputils ping
 * with a deadline quits at the first ICMP error; while an address moves between nodes a packet
 * may meet a transient loop ("Time to live exceeded"), so an early exit starts a new ping for
 * the time that is left.
 */
export async function firstReply(netns: string, ip: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    const reply = await pingUntilReply(netns, ip, deadline - Date.now());
    if (typeof reply === 'number') return reply;
    text = reply.output;
    await new Promise((r) => setTimeout(r, 10)); // an error that ends ping at once must not spin
  }
  throw new Error(`no reply from ${ip} in ${netns} within ${timeoutMs} ms: ${text.slice(-300)}`);
}

/** One ping run: the first reply's time, or ping's output when it ends without one. */
function pingUntilReply(netns: string, ip: string, ms: number): Promise<number | { output: string }> {
  const child = execa(
    'ip',
    [
      'netns',
      'exec',
      netns,
      'ping',
      '-D',
      '-n',
      '-i',
      '0.002',
      '-W',
      '0.2',
      '-w',
      String(Math.max(1, Math.ceil(ms / 1000))),
      ip,
    ],
    { reject: false, buffer: false },
  );
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const m = /\[(\d+\.\d+)\] \d+ bytes from/.exec(text);
      if (m) {
        child.stdout?.off('data', onData);
        child.kill('SIGTERM');
        resolve(Number(m[1]) * 1000);
      }
    };
    child.stdout?.on('data', onData);
    void child.then(() => resolve({ output: text }));
  });
}

/** One ping with a short wait: is `ip` reachable from `netns` now? */
export async function reachable(netns: string, ip: string): Promise<boolean> {
  const r = await execa('ip', ['netns', 'exec', netns, 'ping', '-n', '-c', '1', '-W', '1', ip], {
    reject: false,
  });
  return r.exitCode === 0;
}

/** The device the node's kernel sends `ip` out of, and the route's protocol. */
export async function routeOnNode(
  nodeNetns: string,
  ip: string,
): Promise<{ dev?: string; gateway?: string }> {
  const { stdout } = await execa('ip', ['-n', nodeNetns, '-j', 'route', 'get', ip], { reject: false });
  const [r] = JSON.parse(stdout || '[{}]') as Array<{ dev?: string; gateway?: string }>;
  return r ?? {};
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
