// The top-of-rack namespace's BGP daemon, run as tern's own speaker, BIRD 2 or FRR bgpd: a
// route reflector for the nodes that share its AS (iBGP), an eBGP neighbour of the others,
// and the originator of the prefixes in `originate` (an external network behind the ToR).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { LabProcess } from './state.js';
import { startProcess } from './processes.js';

export type TorKind = 'tern' | 'bird' | 'frr';

export interface TorPlan {
  kind: TorKind;
  asn: number;
  netns: string;
  address: string;
  nodes: Array<{ name: string; address: string; asn: number }>;
  /** Prefixes the ToR announces to the nodes. */
  originate: string[];
  dir: string;
  repo: string;
}

/** A best route in the ToR's RIB. */
export interface TorRoute {
  prefix: string;
  nextHop?: string;
}

export interface TorPeer {
  name: string;
  address: string;
  state: string;
  established: boolean;
  prefixes?: number;
}

function ternConfig(p: TorPlan): string {
  return JSON.stringify(
    {
      asn: p.asn,
      routerId: p.address,
      clusterId: p.address,
      listen: { host: '0.0.0.0', port: 179 },
      controlSocket: join(p.dir, 'tor-bgp.sock'),
      logLevel: 'info',
      peers: p.nodes.map((n) => ({
        address: n.address,
        asn: n.asn,
        routeReflectorClient: n.asn === p.asn,
        connectRetryTime: 5,
      })),
      originate: p.originate,
    },
    null,
    2,
  );
}

function birdConfig(p: TorPlan): string {
  return [
    `log "${join(p.dir, 'bird.log')}" all;`,
    `router id ${p.address};`,
    'protocol device { }',
    ...(p.originate.length
      ? [`protocol static originated { ipv4; ${p.originate.map((x) => `route ${x} blackhole;`).join(' ')} }`]
      : []),
    ...p.nodes.map(
      (n) =>
        `protocol bgp ${n.name.replace(/[^a-zA-Z0-9_]/g, '_')} { local ${p.address} as ${p.asn}; neighbor ${n.address} as ${n.asn}; ` +
        `${n.asn === p.asn ? `rr client; rr cluster id ${p.address}; ` : ''}connect retry time 5; ipv4 { import all; export all; }; }`,
    ),
    '',
  ].join('\n');
}

function frrConfig(p: TorPlan): string {
  return [
    'frr defaults traditional',
    `log file ${join(p.dir, 'bgpd.log')}`,
    `router bgp ${p.asn}`,
    ` bgp router-id ${p.address}`,
    ` bgp cluster-id ${p.address}`,
    ' no bgp ebgp-requires-policy',
    ...p.nodes.flatMap((n) => [
      ` neighbor ${n.address} remote-as ${n.asn}`,
      ` neighbor ${n.address} timers connect 5`,
    ]),
    ' address-family ipv4 unicast',
    ...p.originate.map((x) => `  network ${x}`),
    ...p.nodes.filter((n) => n.asn === p.asn).map((n) => `  neighbor ${n.address} route-reflector-client`),
    ' exit-address-family',
    '',
  ].join('\n');
}

export function startTor(p: TorPlan): LabProcess {
  switch (p.kind) {
    case 'tern': {
      const file = join(p.dir, 'tor-bgp.json');
      writeFileSync(file, ternConfig(p));
      return startProcess({
        role: 'tor',
        netns: p.netns,
        command: process.execPath,
        args: [join(p.repo, 'dist/bgp/daemon/main.js'), '--config', file],
        logFile: join(p.dir, 'tor.log'),
      });
    }
    case 'bird': {
      const file = join(p.dir, 'bird.conf');
      writeFileSync(file, birdConfig(p));
      return startProcess({
        role: 'tor',
        netns: p.netns,
        command: 'bird',
        args: ['-f', '-c', file, '-s', join(p.dir, 'bird.ctl'), '-P', join(p.dir, 'bird.pid')],
        logFile: join(p.dir, 'tor.log'),
      });
    }
    case 'frr': {
      const file = join(p.dir, 'bgpd.conf');
      writeFileSync(file, frrConfig(p));
      // -S keeps bgpd root (it would drop to user frr, who cannot enter the 0700 lab dir).
      return startProcess({
        role: 'tor',
        netns: p.netns,
        command: '/usr/lib/frr/bgpd',
        args: ['-S', '-Z', '-f', file, '-i', join(p.dir, 'bgpd.pid'), '--vty_socket', p.dir, '-P', '0'],
        logFile: join(p.dir, 'tor.log'),
      });
    }
  }
}

/** Sessions as the ToR daemon sees them. */
export async function torPeers(p: Pick<TorPlan, 'kind' | 'dir' | 'nodes'>): Promise<TorPeer[]> {
  const nameOf = (address: string) => p.nodes.find((n) => n.address === address)?.name ?? address;
  switch (p.kind) {
    case 'tern': {
      const { getPeers } = await import('../../bgp/daemon/control-client.js');
      const peers = await getPeers(join(p.dir, 'tor-bgp.sock'));
      return peers.map((s) => ({
        name: nameOf(s.address),
        address: s.address,
        state: s.state,
        established: s.state === 'Established',
        prefixes: s.prefixesReceived,
      }));
    }
    case 'bird': {
      const { stdout } = await execa('birdc', ['-s', join(p.dir, 'bird.ctl'), 'show', 'protocols']);
      return p.nodes.map((n) => {
        const line =
          stdout.split('\n').find((l) => l.startsWith(n.name.replace(/[^a-zA-Z0-9_]/g, '_') + ' ')) ?? '';
        const established = /\bEstablished\b/.test(line);
        return {
          name: n.name,
          address: n.address,
          state: established ? 'Established' : (line.split(/\s+/)[5] ?? 'unknown'),
          established,
        };
      });
    }
    case 'frr': {
      const { stdout } = await execa('vtysh', ['--vty_socket', p.dir, '-c', 'show bgp summary json']);
      const peers =
        (
          JSON.parse(stdout) as {
            ipv4Unicast?: { peers?: Record<string, { state: string; pfxRcd?: number }> };
          }
        ).ipv4Unicast?.peers ?? {};
      return Object.entries(peers).map(([address, s]) => ({
        name: nameOf(address),
        address,
        state: s.state,
        established: s.state === 'Established',
        ...(s.pfxRcd !== undefined ? { prefixes: s.pfxRcd } : {}),
      }));
    }
  }
}

/** Best routes in the ToR daemon's RIB (learned and originated). */
export async function torRoutes(p: Pick<TorPlan, 'kind' | 'dir'>): Promise<TorRoute[]> {
  switch (p.kind) {
    case 'tern': {
      const { getRib } = await import('../../bgp/daemon/control-client.js');
      const rib = await getRib(join(p.dir, 'tor-bgp.sock'));
      return rib.flatMap((e) => {
        const best = e.paths.find((x) => x.best) ?? e.paths[0];
        return best ? [{ prefix: e.prefix, ...(best.nextHop ? { nextHop: best.nextHop } : {}) }] : [];
      });
    }
    case 'bird': {
      const { stdout } = await execa('birdc', ['-s', join(p.dir, 'bird.ctl'), 'show', 'route', 'primary']);
      return parseBirdRoutes(stdout);
    }
    case 'frr': {
      const { stdout } = await execa('vtysh', ['--vty_socket', p.dir, '-c', 'show bgp ipv4 unicast json']);
      const routes =
        (
          JSON.parse(stdout) as {
            routes?: Record<string, Array<{ bestpath?: boolean; nexthops?: Array<{ ip: string }> }>>;
          }
        ).routes ?? {};
      return Object.entries(routes).flatMap(([prefix, paths]) => {
        const best = paths.find((x) => x.bestpath);
        const nextHop = best?.nexthops?.[0]?.ip;
        return best ? [{ prefix, ...(nextHop && nextHop !== '0.0.0.0' ? { nextHop } : {}) }] : [];
      });
    }
  }
}

/** `birdc show route primary`: a prefix line, then `via X on dev` for unicast routes. */
export function parseBirdRoutes(text: string): TorRoute[] {
  const out: TorRoute[] = [];
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f.:]+\/\d+)\s/.exec(line);
    if (head) {
      out.push({ prefix: head[1]! });
      continue;
    }
    const via = /^\s+via\s+(\S+)/.exec(line);
    const last = out[out.length - 1];
    if (via && last && !last.nextHop) last.nextHop = via[1]!;
  }
  return out;
}
