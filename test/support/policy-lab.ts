// The upstream NetworkPolicy conformance model, built out of network namespaces: one "node"
// namespace with forwarding on, and a namespace per pod (x/a … z/c) joined to it by a veth whose
// host end is named by hostVethName, /32 (/128) addresses and routes as in tern's data path.
// Each pod runs a small Node agent that serves TCP and UDP on 80 and 81 and, asked over a Unix
// socket, probes other pods from inside its namespace, so a whole matrix runs in parallel.
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { hostVethName } from '../../model/index.js';
import { netnsRunner, PolicyEngine, type PolicyPod, type Protocol } from '../../policy/index.js';
import { NetnsSet, stopProcess, waitFor } from './netns.js';

export const LAB_NODE = 'lab-node';
export const LAB_PORTS = [80, 81] as const;

export type ProbeResult = 'ok' | 'blocked' | 'unsupported';

export interface ProbeOutcome {
  readonly result: ProbeResult;
  /** process.hrtime (CLOCK_MONOTONIC, shared by all processes) in ns, as bigint strings. */
  readonly start: bigint;
  readonly end: bigint;
}

export interface LabPod {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly netns: string;
  readonly veth: string;
  readonly ip4: string;
  readonly ip6: string;
  readonly labels: Record<string, string>;
}

// The agent run in every pod namespace (plain JS: it is passed to `node -e`).
const AGENT = String.raw`
const net = require('node:net'), dgram = require('node:dgram');
const [sockPath, me] = process.argv.slice(1);
const now = () => process.hrtime.bigint().toString();
for (const port of [80, 81]) {
  net.createServer((s) => { s.on('error', () => {}); s.end(me); }).listen({ port, host: '::' });
  const u = dgram.createSocket({ type: 'udp6' });
  u.on('message', (m, r) => u.send(me, r.port, r.address));
  u.bind(port, '::');
}
function probe(q, done) {
  const t0 = now();
  let settled = false;
  const finish = (result, cleanup) => { if (settled) return; settled = true; cleanup(); done({ id: q.id, result, start: t0, end: now() }); };
  if (q.proto === 'SCTP') return finish('unsupported', () => {});
  if (q.proto === 'TCP') {
    const c = net.connect({ host: q.to, port: q.port });
    const timer = setTimeout(() => finish('blocked', () => c.destroy()), q.timeoutMs);
    c.on('data', () => finish('ok', () => { clearTimeout(timer); c.destroy(); }));
    c.on('error', () => finish('blocked', () => { clearTimeout(timer); c.destroy(); }));
    return;
  }
  const u = dgram.createSocket(q.to.includes(':') ? 'udp6' : 'udp4');
  const timer = setTimeout(() => finish('blocked', () => u.close()), q.timeoutMs);
  u.on('message', () => finish('ok', () => { clearTimeout(timer); u.close(); }));
  u.on('error', () => finish('blocked', () => { clearTimeout(timer); u.close(); }));
  u.send('ping', q.port, q.to);
}
net.createServer((c) => {
  let buf = '';
  c.on('error', () => {});
  c.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const q = JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1);
      if (q.ping) { c.write(JSON.stringify({ id: q.id, result: 'pong' }) + '\n'); continue; }
      probe(q, (r) => c.write(JSON.stringify(r) + '\n'));
    }
  });
}).listen(sockPath);
`;

class AgentClient {
  private nextId = 1;
  private buf = '';
  private readonly pending = new Map<number, (r: { result: string; start?: string; end?: string }) => void>();
  constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const r = JSON.parse(this.buf.slice(0, i)) as {
          id: number;
          result: string;
          start?: string;
          end?: string;
        };
        this.buf = this.buf.slice(i + 1);
        this.pending.get(r.id)?.(r);
        this.pending.delete(r.id);
      }
    });
  }
  request(q: Record<string, unknown>): Promise<{ result: string; start?: string; end?: string }> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.socket.write(JSON.stringify({ ...q, id }) + '\n');
    });
  }
  close(): void {
    this.socket.destroy();
  }
}

export interface LabOptions {
  readonly namespaces?: readonly string[];
  readonly pods?: readonly string[];
}

export class PolicyLab {
  readonly pods: LabPod[] = [];
  nodeNs = '';
  private readonly netns = new NetnsSet();
  private readonly agents = new Map<string, { proc: ResultPromise; client?: AgentClient }>();
  private dir = '';
  readonly namespaceNames: readonly string[];

  private constructor(private readonly options: LabOptions) {
    this.namespaceNames = options.namespaces ?? ['x', 'y', 'z'];
  }

  static async create(options: LabOptions = {}): Promise<PolicyLab> {
    const lab = new PolicyLab(options);
    try {
      await lab.build();
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
    return lab;
  }

  get runner() {
    return netnsRunner(this.nodeNs);
  }

  pod(key: string): LabPod {
    const p = this.pods.find((x) => x.key === key);
    if (!p) throw new Error(`no lab pod ${key}`);
    return p;
  }

  policyPod(p: LabPod, labels: Record<string, string> = p.labels): PolicyPod {
    return {
      namespace: p.namespace,
      name: p.name,
      labels,
      ips: [p.ip4, p.ip6],
      node: LAB_NODE,
      ports: LAB_PORTS.flatMap((port) =>
        (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({
          name: `serve-${port}-${protocol.toLowerCase()}`,
          port,
          protocol,
        })),
      ),
      hostInterfaces: [p.veth],
    };
  }

  /** A policy engine for the lab's node, fed every namespace and pod. */
  newEngine(options: { dispatchTreeAbove?: number } = {}): PolicyEngine {
    const engine = new PolicyEngine({ nodeName: LAB_NODE, runner: this.runner, ...options });
    for (const name of this.namespaceNames) engine.upsertNamespace({ name, labels: {} });
    for (const p of this.pods) engine.upsertPod(this.policyPod(p));
    return engine;
  }

  async probe(
    from: LabPod,
    to: LabPod,
    port: number,
    protocol: Protocol,
    family: 4 | 6 = 4,
    timeoutMs = 1000,
  ) {
    const r = await this.agents.get(from.key)!.client!.request({
      to: family === 4 ? to.ip4 : to.ip6,
      port,
      proto: protocol,
      timeoutMs,
    });
    return { result: r.result as ProbeResult, start: BigInt(r.start ?? 0), end: BigInt(r.end ?? 0) };
  }

  /** Probes every ordered pair (including a pod to itself) in parallel. */
  async matrix(port: number, protocol: Protocol, family: 4 | 6 = 4): Promise<Map<string, ProbeResult>> {
    const out = new Map<string, ProbeResult>();
    await Promise.all(
      this.pods.flatMap((from) =>
        this.pods.map(async (to) => {
          out.set(`${from.key}>${to.key}`, (await this.probe(from, to, port, protocol, family)).result);
        }),
      ),
    );
    return out;
  }

  /** Runs a command in the node namespace. */
  nodeExec(cmd: string, args: string[]) {
    return this.netns.exec(this.nodeNs, cmd, args);
  }

  async cleanup(): Promise<void> {
    for (const a of this.agents.values()) {
      a.client?.close();
      await stopProcess(a.proc.pid);
      await a.proc.catch(() => undefined);
    }
    this.agents.clear();
    await this.netns.cleanup();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  private async build(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'tern-policy-lab-'));
    this.nodeNs = await this.netns.add('node');
    const node = (args: string[]) => execa('ip', ['-n', this.nodeNs, ...args]);
    const sys = (ns: string, kv: string) => execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', kv]);
    for (const kv of [
      'net.ipv4.ip_forward=1',
      'net.ipv6.conf.all.forwarding=1',
      'net.ipv6.conf.default.accept_dad=0',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ]) {
      await sys(this.nodeNs, kv);
    }
    // The node's own address, so that its ARP requests to pods carry a sender address.
    await node(['addr', 'add', '10.42.255.1/32', 'dev', 'lo']);
    let n = 1;
    for (const ns of this.namespaceNames) {
      for (const name of this.options.pods ?? ['a', 'b', 'c']) {
        const key = `${ns}/${name}`;
        const podNs = await this.netns.add(`${ns}-${name}`);
        await sys(podNs, 'net.ipv6.conf.default.accept_dad=0');
        const veth = hostVethName(ns, name, 'eth0');
        const ip4 = `10.42.0.${n}`;
        const ip6 = `fd00:42::${n}`;
        n++;
        await node(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', podNs]);
        await sys(this.nodeNs, `net.ipv4.conf.${veth}.proxy_arp=1`);
        await node(['link', 'set', veth, 'up']);
        const pod = (args: string[]) => execa('ip', ['-n', podNs, ...args]);
        await pod(['addr', 'add', `${ip4}/32`, 'dev', 'eth0']);
        await pod(['-6', 'addr', 'add', `${ip6}/128`, 'dev', 'eth0', 'nodad']);
        await pod(['link', 'set', 'eth0', 'up']);
        const mac = JSON.parse((await node(['-j', 'link', 'show', veth])).stdout)[0].address as string;
        await pod(['route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
        await pod(['route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
        await pod(['neigh', 'add', '169.254.1.1', 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
        const ll = await waitFor(`link-local address of ${veth}`, async () => {
          const out = JSON.parse(
            (await node(['-j', '-6', 'addr', 'show', 'dev', veth, 'scope', 'link'])).stdout,
          );
          return out[0]?.addr_info?.[0]?.local as string | undefined;
        });
        await pod(['-6', 'route', 'add', 'default', 'via', ll, 'dev', 'eth0']);
        await node(['route', 'add', `${ip4}/32`, 'dev', veth]);
        await node(['-6', 'route', 'add', `${ip6}/128`, 'dev', veth]);
        this.pods.push({ key, namespace: ns, name, netns: podNs, veth, ip4, ip6, labels: { pod: name } });
      }
    }
    await Promise.all(this.pods.map((p) => this.startAgent(p)));
  }

  private async startAgent(p: LabPod): Promise<void> {
    const sock = join(this.dir, `${p.namespace}-${p.name}.sock`);
    const proc = execa('ip', ['netns', 'exec', p.netns, process.execPath, '-e', AGENT, sock, p.key], {
      reject: false,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const entry: { proc: ResultPromise; client?: AgentClient } = { proc };
    this.agents.set(p.key, entry);
    entry.client = await waitFor(
      `probe agent of ${p.key}`,
      () =>
        new Promise<AgentClient | undefined>((resolve) => {
          const s = createConnection(sock);
          s.once('connect', () => resolve(new AgentClient(s)));
          s.once('error', () => resolve(undefined));
        }),
      15_000,
      50,
    );
    await entry.client.request({ ping: true });
  }
}

// ---- truth tables ------------------------------------------------------------------------------

export interface PeerFilter {
  readonly namespace?: string;
  readonly pod?: string;
}

const fits = (f: PeerFilter, key: string): boolean => {
  const [ns, pod] = key.split('/');
  return (f.namespace === undefined || f.namespace === ns) && (f.pod === undefined || f.pod === pod);
};

/**
 * The expected reachability between every ordered pair, written the way the upstream e2e tests
 * write it: start from a default, then set what the policies say. A pod always reaches itself
 * (that traffic never leaves its namespace).
 */
export class Reachability {
  private readonly expected = new Map<string, boolean>();
  constructor(
    private readonly keys: readonly string[],
    allowedByDefault: boolean,
  ) {
    for (const a of keys) for (const b of keys) this.expected.set(`${a}>${b}`, allowedByDefault);
  }
  expect(from: PeerFilter, to: PeerFilter, allowed: boolean): this {
    for (const a of this.keys) {
      for (const b of this.keys) if (fits(from, a) && fits(to, b)) this.expected.set(`${a}>${b}`, allowed);
    }
    return this;
  }
  get(pair: string): boolean {
    const [a, b] = pair.split('>');
    return a === b || this.expected.get(pair)!;
  }
  /** Pairs where `actual` differs, plus a grid for the failure message. */
  compare(actual: ReadonlyMap<string, ProbeResult>): { wrong: string[]; grid: string } {
    const wrong: string[] = [];
    const rows = [`from\\to ${this.keys.map((k) => k.padEnd(4)).join(' ')}`];
    for (const a of this.keys) {
      const cells = this.keys.map((b) => {
        const pair = `${a}>${b}`;
        const want = this.get(pair);
        const got = actual.get(pair) === 'ok';
        if (want !== got)
          wrong.push(`${pair}: expected ${want ? 'allowed' : 'denied'}, got ${actual.get(pair)}`);
        return (got ? '.' : 'X') + (want === got ? '   ' : '!  ');
      });
      rows.push(`${a.padEnd(7)} ${cells.join(' ')}`);
    }
    return { wrong, grid: rows.join('\n') };
  }
}
