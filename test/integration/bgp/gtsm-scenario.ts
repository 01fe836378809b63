// GTSM (RFC 5082) interop. LAN 10.80.0.0/24: tern T (.1), tern T' (.3), tern T2 (.4), the daemon
// D (.2, BIRD `ttl security on` / FRR `ttl-security hops 1`) and a router R (.254); behind R, on
// 10.80.1.0/24, a far tern F (.1): two hops away, its packets arrive with TTL 254.
//   T → D (tern active) and D → T' (tern passive), 1 hop allowed: Established.
//   T → F with ttlSecurity 1: F's SYN-ACK arrives with TTL 254 < 255 and IP_MINTTL drops it.
//   F → T' with T' at ttlSecurity 1: the accepted socket's IP_MINTTL drops F's segments.
//   F → T2 with T2 at ttlSecurity 2: the same path is fine when two hops are allowed.
import { execa } from 'execa';
import { expect } from 'vitest';
import { BgpLab, type DaemonHandle, type TernHandle } from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';
import { buildTernBgp, startTern, stopAll, ternPeer, ternState } from './tcp-security-lab.js';

export type GtsmDaemonKind = 'bird' | 'frr';

const T = '10.80.0.1';
const D = '10.80.0.2';
const TP = '10.80.0.3';
const T2 = '10.80.0.4';
const R_LAN = '10.80.0.254';
const R_FAR = '10.80.1.254';
const F = '10.80.1.1';

function daemonConfig(kind: GtsmDaemonKind): string {
  if (kind === 'bird') {
    return `router id ${D};
protocol device { }
template bgp gt { local ${D} as 65002; connect retry time 1; ttl security on; ipv4 { import all; export all; }; }
protocol bgp t from gt { neighbor ${T} as 65001; passive on; }
protocol bgp tp from gt { neighbor ${TP} as 65003; }
`;
  }
  return `router bgp 65002
 bgp router-id ${D}
 no bgp ebgp-requires-policy
 neighbor ${T} remote-as 65001
 neighbor ${T} passive
 neighbor ${T} ttl-security hops 1
 neighbor ${T} timers connect 1
 neighbor ${TP} remote-as 65003
 neighbor ${TP} ttl-security hops 1
 neighbor ${TP} timers connect 1
!
`;
}

const timers = { connectRetryTime: 1, holdTime: 9 };

export async function runGtsmScenario(kind: GtsmDaemonKind): Promise<void> {
  await buildTernBgp();
  const lab = new BgpLab();
  const terns: TernHandle[] = [];
  try {
    await lab.init();
    const ns = {
      t: await lab.netns.add('t'),
      d: await lab.netns.add('d'),
      tp: await lab.netns.add('tp'),
      t2: await lab.netns.add('t2'),
      r: await lab.netns.add('r'),
      f: await lab.netns.add('f'),
    };
    await lab.lan([
      { ns: ns.t, address: `${T}/24` },
      { ns: ns.d, address: `${D}/24` },
      { ns: ns.tp, address: `${TP}/24` },
      { ns: ns.t2, address: `${T2}/24` },
      { ns: ns.r, address: `${R_LAN}/24` },
    ]);
    const ip = (n: string, ...args: string[]) => execa('ip', ['-n', n, ...args]);
    await ip(ns.r, 'link', 'add', 'rf', 'type', 'veth', 'peer', 'name', 'fr', 'netns', ns.f);
    await ip(ns.r, 'addr', 'add', `${R_FAR}/24`, 'dev', 'rf');
    await ip(ns.f, 'addr', 'add', `${F}/24`, 'dev', 'fr');
    await ip(ns.r, 'link', 'set', 'rf', 'up');
    await ip(ns.f, 'link', 'set', 'fr', 'up');
    await execa('ip', ['netns', 'exec', ns.r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await ip(ns.f, 'route', 'add', 'default', 'via', R_FAR);
    for (const n of [ns.t, ns.tp, ns.t2]) await ip(n, 'route', 'add', '10.80.1.0/24', 'via', R_LAN);

    const far = { address: F, asn: 65005, ...timers };
    const t = await startTern(
      lab,
      ns.t,
      't',
      {
        asn: 65001,
        routerId: T,
        peers: [
          { address: D, asn: 65002, ttlSecurity: 1, ...timers },
          { ...far, ttlSecurity: 1 },
        ],
      },
      terns,
    );
    const tp = await startTern(
      lab,
      ns.tp,
      'tp',
      {
        asn: 65003,
        routerId: TP,
        peers: [
          { address: D, asn: 65002, ttlSecurity: 1, passive: true, ...timers },
          { ...far, ttlSecurity: 1, passive: true },
        ],
      },
      terns,
    );
    const t2 = await startTern(
      lab,
      ns.t2,
      't2',
      { asn: 65004, routerId: T2, peers: [{ ...far, ttlSecurity: 2, passive: true }] },
      terns,
    );
    const f = await startTern(
      lab,
      ns.f,
      'f',
      {
        asn: 65005,
        routerId: F,
        peers: [
          { address: T, asn: 65001, ttlSecurity: 2, passive: true, ...timers },
          { address: TP, asn: 65003, ttlSecurity: 2, ...timers },
          { address: T2, asn: 65004, ttlSecurity: 2, ...timers },
        ],
      },
      terns,
    );
    const d: DaemonHandle =
      kind === 'bird'
        ? await lab.bird(ns.d, 'd', daemonConfig(kind))
        : await lab.frr(ns.d, 'd', daemonConfig(kind));

    try {
      const up: [TernHandle, string][] = [
        [t, D],
        [tp, D],
        [t2, F],
        [f, T2],
      ];
      for (const [h, peer] of up)
        await waitFor(
          `${h.name} ↔ ${peer} established`,
          async () => (await ternState(h, peer)) === 'Established',
          30_000,
          250,
        );
      await waitFor(
        `${kind} sees t and t'`,
        async () => {
          const p = await d.peers();
          return [T, TP].every((a) => p.find((x) => x.address === a)?.established);
        },
        15_000,
        250,
      );
      expect((await ternPeer(t, D))?.passive).toBe(false);
      expect((await ternPeer(tp, D))?.passive).toBe(true);

      // Two hops where one is allowed: never up, in either direction, while the rest is.
      await new Promise((r) => setTimeout(r, 6000));
      for (const [h, peer] of [
        [t, F],
        [f, T],
        [tp, F],
        [f, TP],
      ] as const) {
        expect(await ternState(h, peer), `${h.name} ↔ ${peer}`).not.toBe('Established');
      }
      // t's SYNs reach f (TTL 254 ≥ f's 254), f's SYN-ACKs never pass t's minimum of 255.
      expect((await ternPeer(t, F))?.lastError).toBe('connect: timed out');
      // f's SYNs reach tp, which refuses the connection at accept by the TTL the SYN came with.
      expect((await ternPeer(tp, F))?.lastError).toMatch(
        /refused by GTSM: its SYN arrived with TTL 254, below 255/,
      );
      for (const [h, peer] of up) expect(await ternState(h, peer)).toBe('Established');
    } catch (err) {
      const logs = await Promise.all(
        terns.map(async (h) => `==== ${h.name}\n${(await h.log()).slice(-3000)}`),
      );
      throw new Error(`${(err as Error).message}\n${await lab.logs()}\n${logs.join('\n')}`, { cause: err });
    }
  } finally {
    await stopAll(terns);
    await lab.cleanup();
  }
}
