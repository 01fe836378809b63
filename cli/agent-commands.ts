// ternctl commands answered by a node's agent (or a standalone tern-bgp daemon).
import {
  formatDuration,
  formatPeersTable,
  formatRibTable,
  getPeers,
  getRib,
} from '../bgp/daemon/control-client.js';
import type { PeerStatus, RibEntry } from '../bgp/speaker.js';
import type { BindingRecord } from '../ipam/index.js';
import { ValidationError } from '../model/index.js';
import { callAgent } from './agent-client.js';
import { formatTable, type OutputFormat, type Row } from './table.js';

export interface AgentCommandContext {
  /** The agent's control socket. */
  socket: string;
  /** A standalone tern-bgp control socket, when given (bgp verbs only). */
  bgpSocket?: string;
  output: OutputFormat;
  flags: Record<string, string | boolean | undefined>;
  args: string[];
}

const print = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
};
const json = (v: unknown): void => print(JSON.stringify(v, null, 2));

type PeerWithSource = PeerStatus & { source?: string };

export async function nodeStatus(c: AgentCommandContext): Promise<void> {
  const st = await callAgent<{
    node: string;
    ipv4?: string;
    ipv6?: string;
    peers: PeerWithSource[];
    originated: string[];
  }>(c.socket, '/v1/status');
  if (c.output === 'json') return json(st);
  print(`tern-node ${st.node} is running (${[st.ipv4, st.ipv6].filter(Boolean).join(', ')})`);
  print(`\nBGP sessions`);
  print(
    formatTable(
      st.peers.map((p) => ({
        'peer address': p.address,
        'peer type': p.source?.startsWith('node:')
          ? `node-to-node (${p.source.slice(5)})`
          : `${p.type}${p.source ? ` (${p.source})` : ''}`,
        state: p.state === 'Established' ? 'up' : 'down',
        since: p.since.replace('T', ' ').replace(/\.\d+Z$/, ''),
        info:
          p.state === 'Established'
            ? `Established${p.uptime !== undefined ? ` ${formatDuration(p.uptime)}` : ''}`
            : `${p.state}${p.lastError ? `: ${p.lastError}` : ''}`,
      })),
      ['peer address', 'peer type', 'state', 'since', 'info'],
    ),
  );
  print(`\nAnnounced: ${st.originated.join(' ') || 'nothing'}`);
}

export async function bgpCommand(verb: string | undefined, c: AgentCommandContext): Promise<void> {
  if (verb === 'peers') {
    const peers = c.bgpSocket
      ? await getPeers(c.bgpSocket)
      : await callAgent<PeerStatus[]>(c.socket, '/v1/bgp/peers');
    return c.output === 'json' ? json(peers) : print(formatPeersTable(peers));
  }
  if (verb === 'rib') {
    const prefix = typeof c.flags.prefix === 'string' ? c.flags.prefix : undefined;
    const rib = c.bgpSocket
      ? await getRib(c.bgpSocket, prefix)
      : await callAgent<RibEntry[]>(
          c.socket,
          `/v1/bgp/rib${prefix ? `?prefix=${encodeURIComponent(prefix)}` : ''}`,
        );
    return c.output === 'json' ? json(rib) : print(formatRibTable(rib));
  }
  throw new ValidationError('bgp', `unknown verb ${JSON.stringify(verb ?? '')}: use peers or rib`);
}

export async function routesCommand(c: AgentCommandContext): Promise<void> {
  const routes = await callAgent<
    Array<{ dst: string; gateway?: string; dev?: string; type?: string; class: string }>
  >(c.socket, '/v1/routes');
  if (c.output === 'json') return json(routes);
  print(
    formatTable(
      routes.map((r) => ({
        destination: r.dst,
        via: r.type === 'blackhole' ? 'blackhole' : (r.gateway ?? ''),
        device: r.dev ?? '',
        class: r.class,
      })),
    ),
  );
}

const BINDING_COLUMNS = ['address', 'identity', 'node', 'state', 'bound by'];

function bindingRow(b: BindingRecord): Row {
  return {
    address: b.address,
    identity: b.identity,
    node: b.node ?? '',
    state: b.state === 'held' ? `held until ${b.heldUntil ?? '?'}` : b.state,
    'bound by':
      b.source === 'sticky'
        ? 'sticky-ip'
        : b.source === 'ordinal'
          ? `ordinal list of ${b.owner ?? '?'}`
          : `IPReservation ${b.owner ?? '?'}`,
  };
}

export async function ipamCommand(verb: string | undefined, c: AgentCommandContext): Promise<void> {
  if (verb === 'show') {
    const r = await callAgent<{
      pools: Array<{
        pool: string;
        cidr: string;
        blocks: { total: number; claimed: number };
        addresses: { used: number; free: number; borrowed: number };
      }>;
      blocks: string[];
      allocations: Array<{
        address: string;
        namespace?: string;
        pod?: string;
        ifname?: string;
        containerID?: string;
      }>;
      bindings?: BindingRecord[];
    }>(c.socket, '/v1/ipam');
    if (c.output === 'json') return json(r);
    print('Pools');
    print(
      formatTable(
        r.pools.map((p) => ({
          pool: p.pool,
          cidr: p.cidr,
          'blocks claimed': `${p.blocks.claimed}/${p.blocks.total}`,
          used: p.addresses.used,
          free: p.addresses.free,
          borrowed: p.addresses.borrowed,
        })),
      ),
    );
    print(`\nBlocks of this node: ${r.blocks.join(' ') || 'none'}`);
    print('\nAllocations on this node');
    print(
      formatTable(
        r.allocations.map((a) => ({
          address: a.address,
          pod: a.pod ? `${a.namespace}/${a.pod}` : '',
          interface: a.ifname ?? '',
          container: a.containerID ?? '',
        })) as Row[],
      ),
    );
    print('\nAddresses bound to pod identities (cluster-wide)');
    print(formatTable((r.bindings ?? []).map(bindingRow), BINDING_COLUMNS));
    return;
  }
  if (verb === 'release') {
    const address = c.args[0];
    if (!address) throw new ValidationError('address', 'usage: ternctl ipam release <address>');
    const r = await callAgent<{ address: string; handle: string }>(c.socket, '/v1/ipam/release', { address });
    return c.output === 'json' ? json(r) : print(`released ${r.address} (held by ${r.handle})`);
  }
  throw new ValidationError('ipam', `unknown verb ${JSON.stringify(verb ?? '')}: use show or release`);
}

export async function policyCommand(verb: string | undefined, c: AgentCommandContext): Promise<void> {
  if (verb !== 'explain')
    throw new ValidationError('policy', `unknown verb ${JSON.stringify(verb ?? '')}: use explain`);
  const pod = c.args[0];
  if (!pod)
    throw new ValidationError(
      'pod',
      'usage: ternctl policy explain <ns/pod> [--from|--to <ns/pod|ip>] [--port P[/PROTO]]',
    );
  let port: number | string | undefined;
  let protocol: string | undefined;
  if (typeof c.flags.port === 'string') {
    const [p, proto] = c.flags.port.split('/');
    port = /^\d+$/.test(p!) ? Number(p) : p;
    protocol = proto?.toUpperCase();
  }
  const r = await callAgent<{
    pod: string;
    selectedBy: { ingress: string[]; egress: string[] };
    verdict?: string;
    decisions: Array<{
      direction: string;
      pod: string;
      verdict: string;
      reason?: string;
      policy?: string;
      rule?: string;
    }>;
  }>(c.socket, '/v1/policy/explain', { pod, from: c.flags.from, to: c.flags.to, port, protocol });
  if (c.output === 'json') return json(r);
  print(
    `${r.pod} is selected for ingress by: ${r.selectedBy.ingress.join(', ') || 'no policy (ingress open)'}`,
  );
  print(
    `${r.pod} is selected for egress by:  ${r.selectedBy.egress.join(', ') || 'no policy (egress open)'}`,
  );
  if (r.verdict) {
    print(`\nverdict: ${r.verdict.toUpperCase()}`);
    print(formatTable(r.decisions as unknown as Row[]));
  }
}
