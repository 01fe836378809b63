// `ternctl lab …`: build, inspect and tear down the local lab.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { execa } from 'execa';
import type { Lab } from '../deploy/lab/lab.js';
import { defaultTopology, loadTopology } from '../deploy/lab/topology.js';
import type { Protocol } from '../deploy/lab/probe.js';
import { ValidationError } from '../model/index.js';
import { formatTable, type OutputFormat, type Row } from './table.js';

export interface LabCommandContext {
  lab: Lab;
  output: OutputFormat;
  flags: Record<string, string | boolean | undefined>;
  args: string[];
  /** Arguments after `--` (lab exec). */
  rest: string[];
}

const print = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
};

function readManifests(file: string): unknown[] {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (e) {
    throw new ValidationError('-f', `cannot read ${file}: ${(e as Error).message}`);
  }
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const d of Array.isArray(docs) ? docs : [docs]) {
    if (d.errors.length)
      throw new ValidationError(file, `not valid YAML: ${d.errors[0]!.message.split('\n')[0]}`);
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) continue;
    const items =
      (v as { kind?: string; items?: unknown[] }).kind === 'List'
        ? ((v as { items?: unknown[] }).items ?? [])
        : [v];
    out.push(...items);
  }
  return out;
}

async function showLab(lab: Lab, output: OutputFormat): Promise<void> {
  const s = lab.state();
  const peers = await lab.torPeers().catch(() => []);
  const nodes = await Promise.all(
    Object.entries(s.nodes).map(async ([name, n]) => {
      const st = (await lab.nodeStatus(name).catch(() => undefined)) as
        { peers: Array<{ state: string }>; originated: string[] } | undefined;
      return {
        node: name,
        netns: n.netns,
        address: n.address,
        agent: st ? 'running' : 'down',
        sessions: st
          ? `${st.peers.filter((p) => p.state === 'Established').length}/${st.peers.length} established`
          : '',
        announces: st?.originated.join(' ') ?? '',
      };
    }),
  );
  const routes = await Promise.all(
    Object.entries(s.nodes).map(async ([name, n]) => {
      const { stdout } = await execa('ip', ['-n', n.netns, '-j', 'route', 'show', 'table', 'main']);
      return (
        JSON.parse(stdout || '[]') as Array<{
          dst: string;
          gateway?: string;
          dev?: string;
          protocol?: string | number;
          type?: string;
        }>
      )
        .filter((r) => ['90', '91', '92'].includes(String(r.protocol)))
        .map((r) => ({
          node: name,
          dst: r.dst,
          via: r.type === 'blackhole' ? 'blackhole' : (r.gateway ?? r.dev ?? ''),
          class: ({ '90': 'pod', '91': 'block', '92': 'bgp' } as Record<string, string>)[String(r.protocol)]!,
        }));
    }),
  );
  const pods = Object.entries(s.pods).map(([key, p]) => ({ pod: key, node: p.node, ip: p.ip ?? '' }));
  if (output === 'json') {
    print(JSON.stringify({ nodes, tor: peers, routes: routes.flat(), pods }, null, 2));
    return;
  }
  print(`\nNodes\n${formatTable(nodes as Row[])}`);
  print(
    `\nBGP sessions on the top-of-rack (${s.torAddress})\n${formatTable(peers as unknown as Row[], ['name', 'address', 'state', 'prefixes'])}`,
  );
  print(`\nRoutes programmed by tern\n${formatTable(routes.flat() as Row[])}`);
  print(`\nPods\n${formatTable(pods as Row[])}`);
  if (s.kube) {
    const nodes = await lab.kubectl(['get', 'nodes', '-o', 'wide'], { allowFailure: true });
    print(`\nKubernetes control plane in ${s.kube.netns}: ${s.kube.url}\n${nodes.stdout || nodes.stderr}`);
  }
}

export async function labCommand(verb: string | undefined, c: LabCommandContext): Promise<void> {
  const { lab, output, flags, args } = c;
  switch (verb) {
    case 'up': {
      if (lab.exists()) {
        const s = lab.state();
        print(
          `a lab already exists (created ${s.createdAt}, ${Object.keys(s.nodes).length} nodes); use ternctl lab status, or ternctl lab down first`,
        );
        process.exitCode = 1;
        return;
      }
      const nodes = flags.nodes === undefined ? 3 : Number(flags.nodes);
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > 50)
        throw new ValidationError('--nodes', 'must be a whole number from 1 to 50');
      const tor = flags.tor as string | undefined;
      if (tor !== undefined && !['tern', 'bird', 'frr'].includes(tor))
        throw new ValidationError('--tor', `must be tern, bird or frr, not ${JSON.stringify(tor)}`);
      const topology =
        typeof flags.topology === 'string' ? loadTopology(flags.topology) : defaultTopology(nodes);
      if (tor) topology.tor.kind = tor as 'tern' | 'bird' | 'frr';
      if (flags.kubernetes === true) topology.kubernetes = true;
      const started = Date.now();
      await lab.up(topology);
      process.stderr.write(`lab up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      await showLab(lab, output);
      const m = await lab.probe();
      print('\n' + (output === 'json' ? JSON.stringify(m, null, 2) : lab.formatMatrix(m)));
      print(
        `\nPoke at it: ternctl lab exec x/a -- ping -c1 <ip>   ternctl --node node1 node status   ternctl lab probe\nTear down:  ternctl lab down`,
      );
      return;
    }
    case 'status':
      await showLab(lab, output);
      return;
    case 'down': {
      const r = await lab.down();
      print(`lab removed: ${r.processes} processes stopped, ${r.namespaces} network namespaces deleted`);
      return;
    }
    case 'probe': {
      const port = flags.port === undefined ? 80 : Number(flags.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new ValidationError('--port', 'must be a port number');
      const protocol = String(flags.protocol ?? 'TCP').toUpperCase();
      if (!['TCP', 'UDP', 'SCTP'].includes(protocol))
        throw new ValidationError('--protocol', 'must be TCP, UDP or SCTP');
      const m = await lab.probe({ port, protocol: protocol as Protocol });
      print(output === 'json' ? JSON.stringify(m, null, 2) : lab.formatMatrix(m));
      return;
    }
    case 'apply':
    case 'delete': {
      if (typeof flags.file !== 'string')
        throw new ValidationError('-f', 'name a manifest file (or - for stdin)');
      const objects = readManifests(flags.file);
      const done = verb === 'apply' ? await lab.apply(objects) : await lab.delete(objects);
      print(done.join('\n'));
      return;
    }
    case 'add-pod': {
      const [target] = args;
      const [namespace, name] = (target ?? '').split('/');
      if (!namespace || !name)
        throw new ValidationError(
          'pod',
          'usage: ternctl lab add-pod <namespace>/<name> --node <node> [--labels k=v,…] [--ip A]',
        );
      if (typeof flags.node !== 'string')
        throw new ValidationError('--node', 'name the node the pod runs on');
      const labels = Object.fromEntries(
        String(flags.labels ?? '')
          .split(',')
          .filter(Boolean)
          .map((kv) => {
            const [k, v] = kv.split('=');
            if (!k || v === undefined)
              throw new ValidationError('--labels', `${JSON.stringify(kv)} is not key=value`);
            return [k, v];
          }),
      );
      const ip = await lab.addPod({
        namespace,
        name,
        node: flags.node,
        labels,
        ...(typeof flags.ip === 'string' ? { ip: flags.ip } : {}),
      });
      print(`pod ${namespace}/${name} on ${flags.node}: ${ip}`);
      return;
    }
    case 'del-pod': {
      const [namespace, name] = (args[0] ?? '').split('/');
      if (!namespace || !name)
        throw new ValidationError('pod', 'usage: ternctl lab del-pod <namespace>/<name>');
      await lab.delPod(namespace, name);
      print(`pod ${namespace}/${name} deleted`);
      return;
    }
    case 'exec': {
      const target = args[0];
      if (!target || c.rest.length === 0)
        throw new ValidationError('exec', 'usage: ternctl lab exec <ns/pod|node|tor> -- <command>…');
      const r = spawnSync('ip', ['netns', 'exec', lab.netnsOf(target), ...c.rest], { stdio: 'inherit' });
      process.exitCode = r.status ?? 1;
      return;
    }
    default:
      throw new ValidationError(
        'lab',
        `unknown verb ${JSON.stringify(verb ?? '')}: use up, status, down, probe, apply, delete, add-pod, del-pod, exec`,
      );
  }
}
