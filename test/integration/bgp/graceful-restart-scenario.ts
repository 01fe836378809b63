// Graceful restart with a third-party daemon D (BIRD 2, FRR or GoBGP) on one LAN, both roles:
//  - tern restarting: kill -9 tern-bgp and start it again; D keeps tern's route through the gap
//    (sampled every 200 ms), then receives it on the new session; BIRD and FRR (zebra) install it
//    in their namespace's kernel, and a ping flood from there to an address behind tern loses
//    no packet across the restart;
//  - tern receiving: D restarts gracefully (BIRD: `birdc graceful restart`, started again with -R;
//    FRR: kill -9 bgpd with preserve-fw-state, started again; GoBGP: kill -9, started again with -r)
//    announcing one prefix fewer; tern keeps both routes
//    through the gap, then sweeps the one D did not re-announce after its End-of-RIB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import path from 'node:path';
import { BgpLab, birdStatic, type DaemonHandle, type TernHandle } from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';

const T = '10.78.0.1';
const B = '10.78.0.2';
const PT = '10.111.0.0/24';
const PB = '10.112.0.0/24';
const PX = '10.113.0.0/24';
/** An address inside PT, on tern's side of the path. */
const BEHIND_T = '10.111.0.1';
/** Daemons that install learned routes in their namespace's kernel here (GoBGP has no FIB). */
const forwards = (kind: GrDaemonKind) => kind !== 'gobgp';

export type GrDaemonKind = 'bird' | 'frr' | 'gobgp';

const birdConfig = (statics: string[]) => `router id ${B};
protocol device { }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }
${statics.map((p) => birdStatic(p)).join('')}
protocol bgp t {
  local ${B} as 65002; neighbor ${T} as 65001;
  hold time 9; keepalive time 1; connect retry time 1;
  graceful restart on; graceful restart time 60; debug { states, events };
  ipv4 { import all; export where source = RTS_STATIC; };
}
`;

const frrConfig = (networks: string[]) => `router bgp 65002
 bgp router-id ${B}
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp graceful-restart
 bgp graceful-restart preserve-fw-state
 bgp graceful-restart restart-time 60
 neighbor ${T} remote-as 65001
 neighbor ${T} timers 1 9
 neighbor ${T} timers connect 1
 address-family ipv4 unicast
${networks.map((n) => `  network ${n}\n`).join('')} exit-address-family
!
`;

const gobgpConfig = `[global.config]
  as = 65002
  router-id = "${B}"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${T}"
    peer-as = 65001
    admin-down = true
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 1
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 60
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
`;

const ternConfig = {
  asn: 65001,
  routerId: T,
  gracefulRestart: { restartTime: 60, selectionDeferralTime: 15 },
  peers: [{ address: B, asn: 65002, holdTime: 9, keepaliveTime: 1, connectRetryTime: 1 }],
  originate: [PT],
};

interface Sample {
  readonly established: boolean;
  readonly has: readonly string[];
}

/** Samples `h`'s routes and session state every 200 ms until `until` resolves. */
async function sampleDuring(h: DaemonHandle, until: Promise<unknown>): Promise<Sample[]> {
  const samples: Sample[] = [];
  let done = false;
  const stopped = until.finally(() => (done = true));
  stopped.catch(() => {}); // rethrown below, after the last sample
  while (!done) {
    const [routes, peers] = await Promise.all([h.routes().catch(() => []), h.peers().catch(() => [])]);
    samples.push({ established: peers.some((p) => p.established), has: routes.map((r) => r.prefix) });
    await new Promise((r) => setTimeout(r, 200));
  }
  await stopped;
  return samples;
}

/** Starts D (`restarting`: in its graceful-restart recovery mode) originating `prefixes`. */
async function startDaemon(
  lab: BgpLab,
  kind: GrDaemonKind,
  ns: string,
  name: string,
  prefixes: string[],
  restarting: boolean,
) {
  if (kind === 'bird') return lab.bird(ns, name, birdConfig(prefixes), restarting ? ['-R'] : []);
  // FRR 8.4 has no restarting mode (-K came later). zebra (the FIB) only for the first instance: a
  // second zebra in the namespace would sweep the first one's routes.
  if (kind === 'frr') return lab.frr(ns, name, frrConfig(prefixes), [], { zebra: !restarting });
  const d = await lab.gobgp(ns, name, gobgpConfig, restarting ? ['-r'] : []);
  // GoBGP originates through its API only: the session starts administratively down and is enabled
  // once the prefixes are in, so that its End-of-RIB (sent at once after a restart) covers them.
  for (const p of prefixes) await d.originate(p);
  await execa('gobgp', [
    '--target',
    `unix://${path.join(lab.dir, name, 'gobgp.sock')}`,
    'neighbor',
    T,
    'enable',
  ]);
  return d;
}

/** D goes down the way it would for a graceful restart (its routes' forwarding state kept). */
async function restartGracefully(lab: BgpLab, kind: GrDaemonKind, d: DaemonHandle): Promise<void> {
  if (kind === 'bird')
    await execa('birdc', ['-s', path.join(lab.dir, d.name, 'bird.ctl'), 'graceful', 'restart']);
  else process.kill(d.pid, 'SIGKILL');
}

export function describeGracefulRestart(kind: GrDaemonKind): void {
  describe(`graceful restart with ${kind}`, () => {
    const lab = new BgpLab();
    let nsT = '';
    let nsB = '';
    let tern: TernHandle;
    let d: DaemonHandle;

    beforeAll(async () => {
      await lab.init();
      nsT = await lab.netns.add('t');
      nsB = await lab.netns.add('b');
      await lab.lan([
        { ns: nsT, address: `${T}/24` },
        { ns: nsB, address: `${B}/24` },
      ]);
      tern = await lab.tern(nsT, 't1', ternConfig);
      d = await startDaemon(lab, kind, nsB, 'b1', [PB, PX], false);
      await waitFor(
        'tern route at BIRD',
        async () => (await d.routes()).some((r) => r.prefix === PT),
        30_000,
      );
      await waitFor('BIRD routes at tern', async () => (await tern.routes()).length === 2, 30_000);
      if (forwards(kind)) {
        await execa('ip', ['-n', nsT, 'addr', 'add', `${BEHIND_T}/32`, 'dev', 'lo']);
        await waitFor(
          `${kind} installs tern's route in its kernel`,
          async () => (await execa('ip', ['-n', nsB, 'route', 'show', PT])).stdout.includes(`via ${T}`),
          30_000,
        );
      }
    }, 60_000);

    afterAll(async () => {
      await lab.cleanup();
    }, 60_000);

    it(`${kind} keeps tern’s route through a kill -9 and restart of tern-bgp, and gets it again on the new session`, async () => {
      try {
        // 3000 pings 5 ms apart (15 s) from D's namespace to an address behind tern, across the restart.
        const flood = forwards(kind)
          ? execa(
              'ip',
              ['netns', 'exec', nsB, 'ping', '-n', '-q', '-c', '3000', '-i', '0.005', '-W', '1', BEHIND_T],
              {
                reject: false,
              },
            ).then((result) => ({ result, endedAt: Date.now() }))
          : undefined;
        process.kill(tern.pid, 'SIGKILL');
        const restarted = (async () => {
          await waitFor('BIRD sees the session drop', async () => !(await d.peers())[0]?.established, 10_000);
          await new Promise((r) => setTimeout(r, 1000)); // a visible gap
          tern = await lab.tern(nsT, 't1', ternConfig);
          await waitFor(
            'session back and tern route re-announced',
            async () =>
              (await tern.status())[0]?.state === 'Established' &&
              (await tern.status())[0]!.prefixesAdvertised === 1,
            30_000,
          );
        })();
        const samples = await sampleDuring(d, restarted);
        const restartDone = Date.now();
        expect(samples.some((s) => !s.established)).toBe(true);
        expect(samples.filter((s) => !s.has.includes(PT))).toEqual([]);
        if (flood) {
          const { result: ping, endedAt } = await flood;
          const stats = /(\d+) packets transmitted, (\d+) received/.exec(ping.stdout);
          expect(stats, ping.stdout + ping.stderr).not.toBeNull();
          // The flood lasted through the whole restart, and lost nothing.
          expect(endedAt).toBeGreaterThan(restartDone);
          expect({ transmitted: Number(stats![1]), received: Number(stats![2]) }).toEqual({
            transmitted: 3000,
            received: 3000,
          });
        }
        expect((await d.routes()).map((r) => r.prefix)).toContain(PT);
        if (kind === 'bird') expect(await d.log()).toMatch(/Neighbor graceful restart detected/);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await lab.logs()}`);
      }
    }, 90_000);

    it(`tern keeps ${kind}’s routes through its graceful restart and sweeps the one it no longer announces after its End-of-RIB`, async () => {
      try {
        await waitFor('BIRD routes at tern', async () => (await tern.routes()).length === 2, 30_000);
        await restartGracefully(lab, kind, d);
        const restarted = (async () => {
          await waitFor(
            'tern sees the session drop',
            async () => !(await tern.peers())[0]?.established,
            10_000,
          );
          await new Promise((r) => setTimeout(r, 1000));
          d = await startDaemon(lab, kind, nsB, 'b2', [PB], true);
          await waitFor(
            'PX swept at tern',
            async () => !(await tern.routes()).some((r) => r.prefix === PX),
            60_000,
          );
        })();
        const samples = await sampleDuring(tern, restarted);
        const gap = samples.filter((s) => !s.established);
        expect(gap.length).toBeGreaterThan(0);
        expect(gap.filter((s) => !(s.has.includes(PB) && s.has.includes(PX)))).toEqual([]);
        expect(samples.filter((s) => !s.has.includes(PB))).toEqual([]);
        const status = (await tern.status())[0]!;
        expect(status).toMatchObject({ state: 'Established', prefixesAccepted: 1 });
        expect(status.prefixesStale).toBeUndefined();
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await lab.logs()}`);
      }
    }, 120_000);
  });
}
