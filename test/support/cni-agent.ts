#!/usr/bin/env node
// The node agent reduced to its CNI side: socket server, handler, veth dataplane and IPAM, without
// felix's watches, routes and policy. Used by the CNI integration tests, the CNI benchmark and for
// trying `tern` by hand. Run it in the node's (host's) netns:
//   tern-cni-agent --socket /run/tern/cni.sock --node n1 --pool default=10.244.0.0/16 [--etcd http://…]
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { MemoryDatastore, openDatastore, type Datastore } from '../../datastore/index.js';
import { Ipam } from '../../ipam/index.js';
import { AlreadyExistsError, TERN_API_VERSION, ValidationError, type IPPool } from '../../model/index.js';
import { LinuxDataplane } from '../../felix/cni/dataplane/veth.js';
import { CniHandler } from '../../felix/cni/handler.js';
import { NodeIpam } from '../../felix/cni/ipam-adapter.js';
import type { AgentHooks } from '../../felix/cni/ports.js';
import { CniServer } from '../../felix/cni/server.js';
import { DEFAULT_AGENT_SOCKET } from '../../cni/wire.js';

const { values } = parseArgs({
  options: {
    socket: { type: 'string', default: DEFAULT_AGENT_SOCKET },
    node: { type: 'string', default: hostname() },
    /** name=cidr[,blockSize]; created when missing. */
    pool: { type: 'string', multiple: true, default: [] },
    etcd: { type: 'string' },
    'etcd-prefix': { type: 'string' },
    /** Test knob: hold every ADD this long after the plumbing, before answering. */
    'hold-add-ms': { type: 'string', default: '0' },
    'log-level': { type: 'string', default: 'warn' },
  },
});

const log = pino({ level: values['log-level'], base: { component: 'cni-agent' } }, pino.destination(2));

function parsePool(spec: string): IPPool {
  const m = /^([a-z0-9.-]+)=([^,]+)(?:,(\d+))?$/.exec(spec);
  if (!m) throw new ValidationError('--pool', `${JSON.stringify(spec)} is not name=cidr[,blockSize]`);
  return {
    apiVersion: TERN_API_VERSION,
    kind: 'IPPool',
    metadata: { name: m[1]! },
    spec: { cidr: m[2]!, ...(m[3] ? { blockSize: Number(m[3]) } : {}) },
  };
}

async function main(): Promise<void> {
  const datastore: Datastore = values.etcd
    ? await openDatastore({
        backend: 'etcd',
        etcdEndpoints: values.etcd.split(','),
        ...(values['etcd-prefix'] ? { etcdPrefix: values['etcd-prefix'] } : {}),
      })
    : new MemoryDatastore();
  for (const spec of values.pool) {
    await datastore.create(parsePool(spec)).catch((e: unknown) => {
      if (!(e instanceof AlreadyExistsError)) throw e;
    });
  }
  const ipam = new Ipam({ datastore, logger: log });
  const holdMs = Number(values['hold-add-ms']);
  const hooks: AgentHooks =
    holdMs > 0 ? { beforeReturnAdd: () => new Promise((r) => setTimeout(r, holdMs)) } : {};
  const dataplane = new LinuxDataplane();
  const handler = new CniHandler({
    ipam: new NodeIpam(ipam, { node: values.node, nodeLabels: () => ({}) }),
    dataplane,
    hooks,
    logger: log,
  });
  const server = new CniServer({
    socketPath: values.socket,
    handle: (r) => handler.handle(r),
    onError: (e) => log.error({ err: e }, 'cni socket error'),
  });
  await server.start();
  const stop = async () => {
    await server.close();
    dataplane.close();
    await ipam.close();
    await datastore.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  process.stdout.write(`ready ${values.socket}\n`);
}

main().catch((e: unknown) => {
  log.fatal({ err: e }, 'cni agent failed to start');
  process.exit(1);
});
