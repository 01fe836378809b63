// Shared steps of the agent's integration tests, all on the lab (deploy/lab): a lab with a
// unique directory and namespace prefix, pods through the real CNI plugin, and ping between them.
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { Lab } from '../../../deploy/lab/lab.js';
import { parseTopology, type Topology } from '../../../deploy/lab/topology.js';
import { uniqueSuffix } from '../../support/netns.js';

export const REPO = resolve(import.meta.dirname, '../../..');

export function newLab(name: string, agentArgs: string[] = []): Lab {
  const suffix = uniqueSuffix();
  return new Lab({
    dir: join(tmpdir(), `tern-felix-${name}-${suffix}`),
    prefix: `tf${suffix}-`,
    repo: REPO,
    agentArgs,
  });
}

/** Three nodes, one namespace `t`, no pods (tests add them), in the given BGP mode. */
export function threeNodes(overrides: Record<string, unknown> = {}): Topology {
  return parseTopology({
    nodes: [{ name: 'node1' }, { name: 'node2' }, { name: 'node3' }],
    namespaces: [{ name: 't' }],
    ...overrides,
  });
}

export interface PingResult {
  transmitted: number;
  received: number;
  output: string;
}

/** ping from a pod's namespace; never throws on loss (the caller asserts on the counts). */
export async function ping(lab: Lab, fromPod: string, to: string, args: string[]): Promise<PingResult> {
  const r = await execa('ip', ['netns', 'exec', lab.netnsOf(fromPod), 'ping', '-n', '-q', ...args, to], {
    reject: false,
  });
  return parsePing(r.stdout);
}

export function parsePing(output: string): PingResult {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output);
  if (!m) throw new Error(`no ping summary in: ${output}`);
  return { transmitted: Number(m[1]), received: Number(m[2]), output };
}

/** Learned (protocol 92) routes on a node, as `dst via gateway`. */
export async function learnedRoutes(lab: Lab, node: string): Promise<string[]> {
  return (await lab.kernelRoutes(node, 92)).map((r) => `${r.dst} via ${r.gateway ?? '-'}`).sort();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined); returns it with the elapsed ms. */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 20,
): Promise<{ value: T; elapsedMs: number }> {
  const start = performance.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return { value, elapsedMs: performance.now() - start };
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(intervalMs);
  }
}

export interface FloodResult extends PingResult {
  /** Sequence numbers that got no reply. */
  lost: number[];
  /** Time between the last reply before the first loss and the first reply after the last loss. */
  outageMs: number;
}

/**
 * Starts `ping -i 0.01` (timestamped) from a pod for `seconds`; the promise resolves when it ends.
 * The loss window is measured from the reply timestamps, so it holds even when ping falls behind
 * its interval on a loaded machine.
 */
export function pingFlood(lab: Lab, fromPod: string, to: string, seconds: number): Promise<FloodResult> {
  return execa(
    'ip',
    ['netns', 'exec', lab.netnsOf(fromPod), 'ping', '-n', '-D', '-i', '0.01', '-w', String(seconds), to],
    { reject: false },
  ).then((r) => {
    const summary = parsePing(r.stdout);
    const replies = new Map<number, number>();
    for (const m of r.stdout.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)/gm))
      replies.set(Number(m[2]), Number(m[1]) * 1000);
    const lost: number[] = [];
    for (let seq = 1; seq <= summary.transmitted; seq++) if (!replies.has(seq)) lost.push(seq);
    let outageMs = 0;
    if (lost.length) {
      const before = [...replies.keys()].filter((s) => s < lost[0]!).pop();
      const after = [...replies.keys()].find((s) => s > lost[lost.length - 1]!);
      if (before !== undefined && after !== undefined) outageMs = replies.get(after)! - replies.get(before)!;
    }
    return { ...summary, lost, outageMs };
  });
}

/** GET on a node agent's control socket (the same endpoint serves health, metrics and status). */
export function agentGet(lab: Lab, node: string, path: string): Promise<{ status: number; body: string }> {
  const socketPath = lab.state().nodes[node]!.agentSocket;
  return new Promise((resolvePromise, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
