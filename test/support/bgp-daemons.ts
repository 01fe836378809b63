// Run BIRD 2, FRR bgpd, GoBGP and tern-bgp inside network namespaces and read their state in one
// normalized shape. One BgpLab owns its namespaces, a private state dir and every daemon it
// started, and `cleanup()` removes all of it (daemons stopped by PID) even after a failure.
import { execa, type ResultPromise } from 'execa';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NetnsSet, stopProcess, waitFor } from './netns.js';
import { REPO, buildPrivately, privateBuildDir } from './private-build.js';
import { getPeers, getRib, originateRoute, withdrawRoute } from '../../bgp/daemon/control-client.js';
import type { PeerStatus, RibEntry } from '../../bgp/speaker.js';

/** A best route as any of the daemons reports it. */
export interface LearnedRoute {
  readonly prefix: string;
  readonly nextHop: string;
  /** The link-local half of a 32-byte IPv6 next hop, where the daemon reports it. */
  readonly linkLocalNextHop?: string;
  readonly asPath: readonly number[];
  readonly originatorId?: string;
  readonly clusterList?: readonly string[];
  readonly communities?: readonly string[];
}

export interface PeerState {
  readonly address: string;
  readonly established: boolean;
}

export interface DaemonHandle {
  readonly kind: 'bird' | 'frr' | 'gobgp' | 'tern';
  readonly name: string;
  readonly pid: number;
  /** Best routes learned from peers (locally originated ones excluded). */
  routes(): Promise<LearnedRoute[]>;
  peers(): Promise<PeerState[]>;
  originate(prefix: string): Promise<void>;
  withdraw(prefix: string): Promise<void>;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** tern-bgp compiled for tests, private to them (dist/ is rebuilt by others at any moment). */
export const BGP_BUILD = privateBuildDir('tern-bgp-test-build');
const BGP_MAIN = path.join(BGP_BUILD, 'bgp/daemon/main.js');

/** Compiles tern-bgp into a private directory when its sources changed. Returns the main script. */
export async function buildTernBgp(): Promise<string> {
  await buildPrivately({
    dir: BGP_BUILD,
    tsconfig: 'test/support/tsconfig.bgp-build.json',
    sources: ['bgp', 'model', 'native'],
    outputs: [BGP_MAIN],
  });
  return BGP_MAIN;
}

export class BgpLab {
  readonly netns = new NetnsSet();
  dir = '';
  private readonly daemons: DaemonHandle[] = [];
  private stoppedPids: number[] = [];

  async init(): Promise<void> {
    this.dir = await mkdtemp(path.join(tmpdir(), `tbgp-${this.netns.suffix}-`));
    await chmod(this.dir, 0o755); // FRR drops to user frr in places; keep the tree traversable
  }

  /**
   * One L2 segment (a bridge in its own namespace) joining `hosts`, each with eth0 and the
   * given address (CIDR). Next hops of every speaker are then directly reachable.
   */
  async lan(hosts: readonly { ns: string; address: string }[]): Promise<void> {
    const sw = await this.netns.add('sw');
    await execa('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    await execa('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
    for (const [i, h] of hosts.entries()) {
      const port = `p${i}`;
      await execa('ip', [
        '-n',
        h.ns,
        'link',
        'add',
        'eth0',
        'type',
        'veth',
        'peer',
        'name',
        port,
        'netns',
        sw,
      ]);
      await execa('ip', ['-n', sw, 'link', 'set', port, 'master', 'br0', 'up']);
      await execa('ip', [
        '-n',
        h.ns,
        'addr',
        'add',
        h.address,
        'dev',
        'eth0',
        ...(h.address.includes(':') ? ['nodad'] : []),
      ]);
      await execa('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    }
  }

  private async workdir(name: string): Promise<string> {
    const d = path.join(this.dir, name);
    await execa('mkdir', ['-p', d]);
    await chmod(d, 0o755);
    return d;
  }

  private track<T extends DaemonHandle>(h: T): T {
    this.daemons.push(h);
    return h;
  }

  // ---------------------------------------------------------------- BIRD

  /** `args`: extra command-line flags (e.g. `-R`: start in graceful restart recovery). */
  async bird(ns: string, name: string, config: string, args: readonly string[] = []): Promise<DaemonHandle> {
    const d = await this.workdir(name);
    const conf = path.join(d, 'bird.conf');
    const ctl = path.join(d, 'bird.ctl');
    const pidFile = path.join(d, 'bird.pid');
    await writeFile(conf, `log "${d}/bird.log" all;\n${config}`);
    await execa('bird', ['-p', '-c', conf]);
    await this.netns.exec(ns, 'bird', ['-c', conf, '-s', ctl, '-P', pidFile, ...args]);
    const pid = await waitFor(
      `${name} pid`,
      async () => Number((await readFile(pidFile, 'utf8')).trim()) || undefined,
      5000,
    );
    const birdc = async (...args: string[]) => (await execa('birdc', ['-s', ctl, ...args])).stdout;
    const handle: DaemonHandle = {
      kind: 'bird',
      name,
      pid,
      routes: async () =>
        parseBirdRoutes(await birdc('show', 'route', 'where', 'source', '=', 'RTS_BGP', 'all')),
      peers: async () => parseBirdProtocols(await birdc('show', 'protocols', 'all')),
      // BIRD originates from static protocols in its config (birdStatic): enable / disable them.
      originate: async (prefix) => {
        const out = await birdc('enable', `st_${protoName(prefix)}`);
        if (!/enabled/.test(out)) throw new Error(`birdc enable: ${out}`);
      },
      withdraw: async (prefix) => {
        const out = await birdc('disable', `st_${protoName(prefix)}`);
        if (!/disabled/.test(out)) throw new Error(`birdc disable: ${out}`);
      },
      log: () => readFile(path.join(d, 'bird.log'), 'utf8').catch(() => ''),
      stop: async () => {
        await execa('birdc', ['-s', ctl, 'down'], { reject: false });
        await stopProcess(pid);
      },
    };
    return this.track(handle);
  }

  // ---------------------------------------------------------------- FRR

  /**
   * `args`: extra bgpd flags (e.g. `-K`: graceful restart, forwarding state kept). `zebra`: run
   * zebra too (routes installed in `ns`; bgpd then knows interfaces, which IPv6 link-local next
   * hops need: bgpd -Z withdraws routes carrying one).
   */
  async frr(
    ns: string,
    name: string,
    config: string,
    args: readonly string[] = [],
    opts: { readonly zebra?: boolean } = {},
  ): Promise<DaemonHandle> {
    const d = await this.workdir(name);
    const conf = path.join(d, 'bgpd.conf');
    const pidFile = path.join(d, 'bgpd.pid');
    await writeFile(conf, `frr defaults traditional\nhostname ${name}\nlog file ${d}/bgpd.log\n!\n${config}`);
    let zebraPid: number | undefined;
    const zserv = path.join(d, 'zserv.api');
    if (opts.zebra) {
      const zconf = path.join(d, 'zebra.conf');
      const zpid = path.join(d, 'zebra.pid');
      await writeFile(zconf, `log file ${d}/zebra.log\n`);
      // zebra has no -S (stay root): it drops to user frr, which must write its state dir.
      await execa('chown', ['-R', 'frr:frr', d]);
      await this.netns.exec(ns, '/usr/lib/frr/zebra', [
        '-d',
        '-f',
        zconf,
        '-i',
        zpid,
        '-z',
        zserv,
        '--vty_socket',
        d,
        '-P',
        '0',
      ]);
      zebraPid = await waitFor(
        `${name} zebra pid`,
        async () => Number((await readFile(zpid, 'utf8')).trim()) || undefined,
        5000,
      );
    }
    await this.netns.exec(ns, '/usr/lib/frr/bgpd', [
      '-d',
      '-S',
      ...(opts.zebra ? ['-z', zserv] : ['-Z']),
      '-f',
      conf,
      '-i',
      pidFile,
      '--vty_socket',
      d,
      '-P',
      '0',
      ...args,
    ]);
    const pid = await waitFor(
      `${name} pid`,
      async () => Number((await readFile(pidFile, 'utf8')).trim()) || undefined,
      5000,
    );
    const vtysh = async (...cmds: string[]) =>
      (await execa('vtysh', ['--vty_socket', d, ...cmds.flatMap((c) => ['-c', c])])).stdout;
    await waitFor(`${name} vty`, async () => (await vtysh('show bgp summary json')).length > 0, 10_000);
    const asn = /router bgp (\d+)/.exec(config)?.[1];
    const networkCmd = async (prefix: string, no: boolean) => {
      const af = prefix.includes(':') ? 'ipv6 unicast' : 'ipv4 unicast';
      await vtysh(
        'conf t',
        `router bgp ${asn}`,
        `address-family ${af}`,
        `${no ? 'no ' : ''}network ${prefix}`,
      );
    };
    const handle: DaemonHandle = {
      kind: 'frr',
      name,
      pid,
      routes: async () => {
        const out: LearnedRoute[] = [];
        for (const af of ['ipv4', 'ipv6']) {
          const j = JSON.parse(await vtysh(`show bgp ${af} unicast json`)) as FrrRib;
          out.push(...parseFrrRoutes(j));
        }
        return out;
      },
      peers: async () => {
        const j = JSON.parse(await vtysh('show bgp neighbors json')) as Record<string, { bgpState?: string }>;
        return Object.entries(j).map(([address, v]) => ({
          address,
          established: v.bgpState === 'Established',
        }));
      },
      originate: (prefix) => networkCmd(prefix, false),
      withdraw: (prefix) => networkCmd(prefix, true),
      log: () => readFile(path.join(d, 'bgpd.log'), 'utf8').catch(() => ''),
      stop: async () => {
        await stopProcess(pid);
        if (zebraPid) await stopProcess(zebraPid);
      },
    };
    return this.track(handle);
  }

  // ---------------------------------------------------------------- GoBGP

  /** `args`: extra gobgpd flags (e.g. `-r`: restarting, the R bit of graceful restart). */
  async gobgp(ns: string, name: string, toml: string, args: readonly string[] = []): Promise<DaemonHandle> {
    const d = await this.workdir(name);
    const conf = path.join(d, 'gobgpd.toml');
    const sock = path.join(d, 'gobgp.sock');
    await writeFile(conf, toml);
    await rm(sock, { force: true });
    const logFile = path.join(d, 'gobgpd.log');
    const child = execa(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'gobgpd',
        '-f',
        conf,
        '--api-hosts',
        `unix://${sock}`,
        '--pprof-disable',
        '-p',
        ...args,
      ],
      {
        stdout: { file: logFile, append: true },
        stderr: { file: logFile, append: true },
        reject: false,
      },
    );
    const pid = child.pid!;
    const gobgp = async (...args: string[]) =>
      (await execa('gobgp', ['--target', `unix://${sock}`, ...args])).stdout;
    await waitFor(`${name} api`, async () => (await gobgp('global')).length > 0, 10_000, 200);
    const handle: DaemonHandle = {
      kind: 'gobgp',
      name,
      pid,
      routes: async () => {
        const out: LearnedRoute[] = [];
        for (const af of ['ipv4', 'ipv6'])
          out.push(
            ...parseGobgpRoutes(
              JSON.parse((await gobgp('-j', 'global', 'rib', '-a', af)) || '{}') as GobgpRib,
            ),
          );
        return out;
      },
      peers: async () => {
        const j = JSON.parse((await gobgp('-j', 'neighbor')) || '[]') as GobgpNeighbor[];
        return j.map((n) => ({
          address: n.conf.neighbor_address,
          established: n.state.session_state === 6 || n.state.session_state === 'established',
        }));
      },
      originate: async (prefix) =>
        void (await gobgp('global', 'rib', 'add', '-a', prefix.includes(':') ? 'ipv6' : 'ipv4', prefix)),
      withdraw: async (prefix) =>
        void (await gobgp('global', 'rib', 'del', '-a', prefix.includes(':') ? 'ipv6' : 'ipv4', prefix)),
      log: () => readFile(path.join(d, 'gobgpd.log'), 'utf8').catch(() => ''),
      stop: async () => {
        await stopProcess(pid);
        await settle(child);
      },
    };
    return this.track(handle);
  }

  // ---------------------------------------------------------------- tern-bgp

  /** Runs tern-bgp (privately built, see buildTernBgp) in `ns`; `config` is its config object. */
  async tern(ns: string, name: string, config: Record<string, unknown>): Promise<TernHandle> {
    const main = await buildTernBgp();
    const d = await this.workdir(name);
    const conf = path.join(d, 'tern-bgp.json');
    const sock = path.join(d, 'control.sock');
    await writeFile(conf, JSON.stringify({ logLevel: 'debug', ...config, controlSocket: sock }));
    const logFile = path.join(d, 'tern-bgp.log');
    const child = execa('ip', ['netns', 'exec', ns, process.execPath, main, '--config', conf], {
      env: { TERN_NATIVE_ADDON: path.join(REPO, 'native/build/Release/tern_native.node') },
      stdout: { file: logFile, append: true },
      stderr: { file: logFile, append: true },
      reject: false,
    });
    const pid = child.pid!;
    await waitFor(`${name} control socket`, async () => Array.isArray(await getPeers(sock)), 10_000);
    const handle: TernHandle = {
      kind: 'tern',
      name,
      pid,
      socket: sock,
      status: () => getPeers(sock),
      rib: () => getRib(sock),
      routes: async () =>
        (await getRib(sock)).flatMap((e) =>
          e.paths
            .filter((p) => p.best && p.source !== 'local')
            .map((p) => ({
              prefix: e.prefix,
              nextHop: p.nextHop ?? '',
              ...(p.linkLocalNextHop ? { linkLocalNextHop: p.linkLocalNextHop } : {}),
              asPath: p.asPath,
              ...(p.originatorId ? { originatorId: p.originatorId } : {}),
              ...(p.clusterList ? { clusterList: p.clusterList } : {}),
              ...(p.communities ? { communities: p.communities } : {}),
            })),
        ),
      peers: async () =>
        (await getPeers(sock)).map((p) => ({ address: p.address, established: p.state === 'Established' })),
      originate: async (prefix) => void (await originateRoute(sock, prefix)),
      withdraw: async (prefix) => void (await withdrawRoute(sock, prefix)),
      log: () => readFile(path.join(d, 'tern-bgp.log'), 'utf8').catch(() => ''),
      stop: async () => {
        await stopProcess(pid);
        await settle(child);
      },
    };
    return this.track(handle);
  }

  /** Freezes / thaws a daemon (SIGSTOP / SIGCONT). Frozen daemons are thawed by cleanup. */
  freeze(h: DaemonHandle): void {
    process.kill(h.pid, 'SIGSTOP');
    this.stoppedPids.push(h.pid);
  }

  thaw(h: DaemonHandle): void {
    process.kill(h.pid, 'SIGCONT');
    this.stoppedPids = this.stoppedPids.filter((p) => p !== h.pid);
  }

  /**
   * FRR's BFD daemon next to the FRR instance `frrName` (started with `{ zebra: true }`: bgpd
   * reaches bfdd through zebra). `config` is bfdd.conf text (profiles, `debug bfd peer`).
   */
  async frrBfdd(ns: string, frrName: string, config = ''): Promise<BfddHandle> {
    const d = path.join(this.dir, frrName);
    const conf = path.join(d, 'bfdd.conf');
    const pidFile = path.join(d, 'bfdd.pid');
    await writeFile(conf, `log file ${d}/bfdd.log\nlog timestamp precision 6\n${config}`);
    // bfdd has no -S: it runs as user frr, like zebra (which made the directory frr's).
    await this.netns.exec(ns, '/usr/lib/frr/bfdd', [
      '-d',
      '--bfdctl',
      path.join(d, 'bfdd.sock'),
      '-f',
      conf,
      '-i',
      pidFile,
      '-z',
      path.join(d, 'zserv.api'),
      '--vty_socket',
      d,
      '-P',
      '0',
    ]);
    const pid = await waitFor(
      `${frrName} bfdd pid`,
      async () => Number((await readFile(pidFile, 'utf8')).trim()) || undefined,
      5000,
    );
    const vtysh = async (cmd: string) =>
      (await execa('vtysh', ['--vty_socket', d, '-d', 'bfdd', '-c', cmd])).stdout;
    const handle: BfddHandle = {
      kind: 'frr',
      name: `${frrName}-bfdd`,
      pid,
      routes: async () => [],
      peers: async () => [],
      originate: async () => undefined,
      withdraw: async () => undefined,
      bfdPeers: async () =>
        (JSON.parse((await vtysh('show bfd peers json')) || '[]') as FrrBfdPeer[]).map((p) => ({
          peer: p.peer,
          state: p.status,
          ...(p['transmit-interval'] !== undefined ? { txIntervalMs: p['transmit-interval'] } : {}),
        })),
      log: () => readFile(path.join(d, 'bfdd.log'), 'utf8').catch(() => ''),
      stop: () => stopProcess(pid),
    };
    return this.track(handle);
  }

  /** Logs of every daemon, for a failing test's message. */
  async logs(): Promise<string> {
    const parts = await Promise.all(
      this.daemons.map(async (h) => `==== ${h.name} (${h.kind})\n${(await h.log()).slice(-4000)}`),
    );
    return parts.join('\n');
  }

  async cleanup(): Promise<void> {
    for (const pid of this.stoppedPids.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    for (const h of this.daemons.splice(0).reverse()) {
      await h.stop().catch(() => stopProcess(h.pid));
    }
    await this.netns.cleanup();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** FRR bfdd: its sessions as `show bfd peers json` lists them (state up/down/init). */
export interface BfddHandle extends DaemonHandle {
  bfdPeers(): Promise<{ peer: string; state: string; txIntervalMs?: number }[]>;
}

interface FrrBfdPeer {
  peer: string;
  status: string;
  'transmit-interval'?: number;
}

export interface TernHandle extends DaemonHandle {
  readonly socket: string;
  status(): Promise<PeerStatus[]>;
  rib(): Promise<RibEntry[]>;
}

async function settle(child: ResultPromise): Promise<void> {
  await Promise.race([child, new Promise((r) => setTimeout(r, 2000))]);
}

/** BIRD protocol name for a static protocol originating `prefix` (see birdStatic). */
export const protoName = (prefix: string) => prefix.replace(/[^0-9a-f]/gi, '_');

/** A BIRD static protocol originating `prefix`; the handle's withdraw / originate disable / enable it. */
export function birdStatic(prefix: string, enabled = true): string {
  const v6 = prefix.includes(':');
  return `protocol static st_${protoName(prefix)} { ${enabled ? '' : 'disabled; '}${v6 ? 'ipv6' : 'ipv4'}; route ${prefix} blackhole; }\n`;
}

// ---------------------------------------------------------------- parsers

export function parseBirdRoutes(text: string): LearnedRoute[] {
  const out: LearnedRoute[] = [];
  let cur: { prefix: string; best: boolean; attrs: Record<string, string> } | undefined;
  let prefix = '';
  const flush = () => {
    if (cur?.best) {
      const a = cur.attrs;
      out.push({
        prefix: cur.prefix,
        nextHop: a['BGP.next_hop']?.split(' ')[0] ?? '',
        ...(a['BGP.next_hop']?.split(' ')[1] ? { linkLocalNextHop: a['BGP.next_hop'].split(' ')[1] } : {}),
        asPath: (a['BGP.as_path'] ?? '').split(/\s+/).filter(Boolean).map(Number),
        ...(a['BGP.originator_id'] ? { originatorId: a['BGP.originator_id'] } : {}),
        ...(a['BGP.cluster_list'] ? { clusterList: a['BGP.cluster_list'].split(/\s+/) } : {}),
        ...(a['BGP.community']
          ? {
              communities: [...a['BGP.community'].matchAll(/\((\d+),(\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`),
            }
          : {}),
      });
    }
    cur = undefined;
  };
  for (const line of text.split('\n')) {
    const head = /^(\S+\/\d+)?\s+unicast \[[^\]]*\]\s*(\*)?/.exec(line);
    if (head) {
      flush();
      if (head[1]) prefix = head[1];
      cur = { prefix, best: head[2] === '*', attrs: {} };
      continue;
    }
    const attr = /^\s+(BGP\.\w+):\s*(.*)$/.exec(line);
    if (attr && cur) cur.attrs[attr[1]!] = attr[2]!.trim();
  }
  flush();
  return out;
}

function parseBirdProtocols(text: string): PeerState[] {
  const out: PeerState[] = [];
  let current: { established: boolean } | undefined;
  for (const line of text.split('\n')) {
    const head = /^(\S+)\s+BGP\s+\S+\s+(\S+)\s+\S+\s*(.*)$/.exec(line);
    if (head) {
      current = { established: /Established/.test(head[3] ?? '') };
      continue;
    }
    const nb = /^\s+Neighbor address:\s+(\S+)/.exec(line);
    if (nb && current) out.push({ address: nb[1]!, established: current.established });
  }
  return out;
}

interface FrrRib {
  routes?: Record<
    string,
    {
      bestpath?: boolean;
      path?: string;
      peerId?: string;
      nexthops?: { ip: string; scope?: string }[];
      aspath?: { string?: string };
    }[]
  >;
}

function parseFrrRoutes(j: FrrRib): LearnedRoute[] {
  const out: LearnedRoute[] = [];
  for (const [prefix, paths] of Object.entries(j.routes ?? {})) {
    for (const p of paths) {
      if (!p.bestpath || !p.peerId || p.peerId === '(unspec)') continue;
      const pathText = p.path ?? p.aspath?.string ?? '';
      const ll = p.nexthops?.find((n) => n.scope === 'link-local')?.ip;
      out.push({
        prefix,
        nextHop: p.nexthops?.find((n) => n.scope !== 'link-local')?.ip ?? '',
        ...(ll ? { linkLocalNextHop: ll } : {}),
        asPath: pathText.split(/\s+/).filter(Boolean).map(Number),
      });
    }
  }
  return out;
}

type GobgpAttr = {
  type: number;
  nexthop?: string;
  value?: unknown;
  as_paths?: { asns: number[] }[];
  communities?: number[];
};
type GobgpRib = Record<string, { best?: boolean; 'neighbor-ip'?: string; attrs: GobgpAttr[] }[]>;
interface GobgpNeighbor {
  conf: { neighbor_address: string };
  state: { session_state?: number | string };
}

function parseGobgpRoutes(j: GobgpRib): LearnedRoute[] {
  const out: LearnedRoute[] = [];
  for (const [prefix, paths] of Object.entries(j)) {
    for (const p of paths) {
      if (!p.best || !p['neighbor-ip']) continue;
      const nh = p.attrs.find((a) => a.type === 3 || a.type === 14)?.nexthop ?? '';
      const asPath = p.attrs.find((a) => a.type === 2)?.as_paths?.flatMap((s) => s.asns) ?? [];
      const originator = p.attrs.find((a) => a.type === 9)?.value;
      const cluster = p.attrs.find((a) => a.type === 10)?.value;
      out.push({
        prefix,
        nextHop: nh,
        asPath,
        ...(typeof originator === 'string' ? { originatorId: originator } : {}),
        ...(Array.isArray(cluster) ? { clusterList: cluster as string[] } : {}),
      });
    }
  }
  return out;
}
