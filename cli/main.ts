#!/usr/bin/env node
// ternctl: the operator CLI. Tables for people, `-o json` for scripts.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_LAB_DIR, Lab, NoLabError } from '../deploy/lab/lab.js';
import { UnavailableError, ValidationError } from '../model/index.js';
import { LocalApiError } from '../model/local-api.js';
import {
  bgpCommand,
  ipamCommand,
  nodeStatus,
  policyCommand,
  routesCommand,
  type AgentCommandContext,
} from './agent-commands.js';
import { labCommand } from './lab-commands.js';
import { parseOutputFormat } from './table.js';

const USAGE = `usage: ternctl [--node NAME | --socket PATH] [-o table|json] <command>

Lab (a tern cluster on this machine, in network namespaces):
  lab up [--nodes N] [--tor tern|bird|frr] [--topology FILE] [--kubernetes]
  lab status | lab down | lab probe [--port P] [--protocol TCP|UDP|SCTP]
  lab apply -f FILE | lab delete -f FILE
  lab add-pod NS/POD --node NODE [--labels k=v,…] [--ip ADDR] | lab del-pod NS/POD
  lab exec NS/POD|NODE|tor -- COMMAND…

Node (the agent on --node NAME in the lab, or at --socket PATH, default /run/tern/agent.sock):
  node status | bgp peers | bgp rib [--prefix P] | routes
  ipam show | ipam release ADDRESS
  policy explain NS/POD [--from|--to NS/POD|IP] [--port P[/PROTO]]
  (bgp peers|rib --bgp-socket PATH: a standalone tern-bgp daemon)`;

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

async function main(argv: string[]): Promise<void> {
  const dashdash = argv.indexOf('--');
  const rest = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  const { values, positionals } = parseArgs({
    args: dashdash >= 0 ? argv.slice(0, dashdash) : argv,
    allowPositionals: true,
    strict: true,
    options: {
      node: { type: 'string' },
      socket: { type: 'string' },
      'bgp-socket': { type: 'string' },
      'lab-dir': { type: 'string' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
      nodes: { type: 'string' },
      tor: { type: 'string' },
      kubernetes: { type: 'boolean' },
      topology: { type: 'string' },
      port: { type: 'string' },
      protocol: { type: 'string' },
      file: { type: 'string', short: 'f' },
      labels: { type: 'string' },
      ip: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      prefix: { type: 'string' },
    },
  });
  const [group, verb, ...args] = positionals;
  if (values.help || !group) {
    console.log(USAGE);
    if (!values.help) process.exitCode = 2;
    return;
  }
  const output = parseOutputFormat(values.output);
  const lab = new Lab({
    dir: values['lab-dir'] ?? process.env.TERN_LAB_DIR ?? DEFAULT_LAB_DIR,
    repo: REPO,
    progress: (m) => process.stderr.write(`» ${m}\n`),
  });
  try {
    if (group === 'lab') {
      await labCommand(verb, { lab, output, flags: values, args, rest });
      return;
    }
    const socket =
      values.socket ??
      (values.node ? lab.state().nodes[values.node]?.agentSocket : undefined) ??
      join('/run/tern', 'agent.sock');
    if (values.node && !values.socket && !lab.state().nodes[values.node]) {
      throw new ValidationError(
        '--node',
        `no node ${JSON.stringify(values.node)} in the lab (nodes: ${Object.keys(lab.state().nodes).join(', ')})`,
      );
    }
    const c: AgentCommandContext = {
      socket,
      ...(values['bgp-socket'] ? { bgpSocket: values['bgp-socket'] } : {}),
      output,
      flags: values,
      args,
    };
    switch (group) {
      case 'node':
        if (verb !== 'status') throw new ValidationError('node', 'usage: ternctl node status');
        return await nodeStatus(c);
      case 'bgp':
        return await bgpCommand(verb, c);
      case 'routes':
        return await routesCommand(c);
      case 'ipam':
        return await ipamCommand(verb, c);
      case 'policy':
        return await policyCommand(verb, c);
      default:
        throw new ValidationError('command', `unknown command ${JSON.stringify(group)}\n${USAGE}`);
    }
  } finally {
    await lab.close();
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const known =
    e instanceof ValidationError ||
    e instanceof NoLabError ||
    e instanceof UnavailableError ||
    e instanceof LocalApiError;
  console.error(`ternctl: ${(e as Error).message}`);
  if (!known && process.env.TERN_DEBUG) console.error(e);
  process.exitCode = known ? 2 : 1;
});
