// One eBGP interop scenario run against each third-party daemon D (AS 65002) on one LAN:
//   T1 (tern, AS 65001) connects actively to D (D passive towards T1);
//   D connects actively to T2 (tern, AS 65003, passive).
// Each originates one prefix; the test checks propagation both ways (AS prepend, next hop set),
// withdrawals in both directions, and hold-timer expiry when D is frozen with SIGSTOP.
import { execa } from 'execa';
import { expect } from 'vitest';
import {
  BgpLab,
  birdStatic,
  type DaemonHandle,
  type LearnedRoute,
  type TernHandle,
} from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';

export type DaemonKind = 'bird' | 'frr' | 'gobgp';

const T1 = '10.77.0.1';
const D = '10.77.0.2';
const T2 = '10.77.0.3';
const P1 = '10.101.0.0/24';
const PD = '10.102.0.0/24';
const P2 = '10.103.0.0/24';

function daemonConfig(kind: DaemonKind): string {
  switch (kind) {
    case 'bird':
      return `router id ${D};
protocol device { }
${birdStatic(PD)}
template bgp t { local ${D} as 65002; hold time 3; keepalive time 1; connect retry time 1; ipv4 { import all; export all; }; }
protocol bgp t1 from t { neighbor ${T1} as 65001; passive on; }
protocol bgp t2 from t { neighbor ${T2} as 65003; }
`;
    case 'frr':
      return `router bgp 65002
 bgp router-id ${D}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor ${T1} remote-as 65001
 neighbor ${T1} passive
 neighbor ${T1} timers 1 3
 neighbor ${T1} timers connect 1
 neighbor ${T2} remote-as 65003
 neighbor ${T2} timers 1 3
 neighbor ${T2} timers connect 1
 address-family ipv4 unicast
  network ${PD}
 exit-address-family
!
`;
    case 'gobgp':
      return `[global.config]
  as = 65002
  router-id = "${D}"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${T1}"
    peer-as = 65001
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 3
    keepalive-interval = 1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${T2}"
    peer-as = 65003
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 3
    keepalive-interval = 1
`;
  }
}

const find = (routes: LearnedRoute[], prefix: string) => routes.find((r) => r.prefix === prefix);

async function routeAt(h: DaemonHandle, prefix: string, timeoutMs = 20_000): Promise<LearnedRoute> {
  return waitFor(`${prefix} at ${h.name}`, async () => find(await h.routes(), prefix), timeoutMs, 250);
}

async function goneAt(h: DaemonHandle, prefix: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(`${prefix} gone at ${h.name}`, async () => !find(await h.routes(), prefix), timeoutMs, 250);
}

export async function runEbgpScenario(kind: DaemonKind): Promise<void> {
  const lab = new BgpLab();
  try {
    await lab.init();
    const nsT1 = await lab.netns.add('t1');
    const nsD = await lab.netns.add('d');
    const nsT2 = await lab.netns.add('t2');
    await lab.lan([
      { ns: nsT1, address: `${T1}/24` },
      { ns: nsD, address: `${D}/24` },
      { ns: nsT2, address: `${T2}/24` },
    ]);
    const peerOf = { address: D, asn: 65002, holdTime: 3, keepaliveTime: 1, connectRetryTime: 1 };
    const t1: TernHandle = await lab.tern(nsT1, 't1', {
      asn: 65001,
      routerId: T1,
      peers: [peerOf],
      originate: [P1],
    });
    const t2: TernHandle = await lab.tern(nsT2, 't2', {
      asn: 65003,
      routerId: T2,
      peers: [{ ...peerOf, passive: true }],
      originate: [P2],
    });
    const d =
      kind === 'bird'
        ? await lab.bird(nsD, 'd', daemonConfig(kind))
        : kind === 'frr'
          ? await lab.frr(nsD, 'd', daemonConfig(kind))
          : await lab.gobgp(nsD, 'd', daemonConfig(kind));
    if (kind === 'gobgp') await d.originate(PD);

    try {
      // Sessions: tern active (t1 → d) and tern passive (d → t2).
      for (const t of [t1, t2]) {
        await waitFor(
          `${t.name} established`,
          async () => (await t.status())[0]?.state === 'Established',
          30_000,
          250,
        );
      }
      await waitFor(
        `${kind} sees both sessions`,
        async () => (await d.peers()).filter((p) => p.established).length === 2,
        10_000,
        250,
      );
      expect((await t1.status())[0]).toMatchObject({ passive: false, state: 'Established' });
      expect((await t2.status())[0]).toMatchObject({ passive: true, state: 'Established' });

      // tern → daemon: our AS prepended, next hop = our session address.
      expect(await routeAt(d, P1)).toMatchObject({ nextHop: T1, asPath: [65001] });
      expect(await routeAt(d, P2)).toMatchObject({ nextHop: T2, asPath: [65003] });
      // daemon → tern, and transit through the daemon.
      expect(await routeAt(t1, PD)).toMatchObject({ nextHop: D, asPath: [65002] });
      // On a shared segment RFC 4271 §5.1.3 lets D keep the originator's (third-party) next hop.
      const transit1 = await routeAt(t1, P2);
      expect(transit1.asPath).toEqual([65002, 65003]);
      expect([D, T2]).toContain(transit1.nextHop);
      const transit2 = await routeAt(t2, P1);
      expect(transit2.asPath).toEqual([65002, 65001]);
      expect([D, T1]).toContain(transit2.nextHop);
      // FRR also sends t1's own route back (AS path 65002 65001); tern counts it received, not accepted.
      const s1 = (await t1.status())[0]!;
      expect(s1).toMatchObject({ prefixesAccepted: 2, prefixesAdvertised: 1 });
      expect(s1.prefixesReceived).toBe(kind === 'frr' ? 3 : 2);

      // Withdrawals both ways.
      await t1.withdraw(P1);
      await goneAt(d, P1);
      await goneAt(t2, P1);
      await d.withdraw(PD);
      await goneAt(t1, PD);
      await goneAt(t2, PD);

      // Freeze the daemon: both tern sessions expire on the 3 s hold timer and drop its routes.
      lab.freeze(d);
      for (const t of [t1, t2]) {
        await waitFor(
          `${t.name} hold timer expiry`,
          async () => (await t.status())[0]?.lastError === 'hold timer expired',
          12_000,
          250,
        );
      }
      expect((await t1.status())[0]?.state).not.toBe('Established');
      expect(find(await t1.routes(), P2)).toBeUndefined();
      expect(await t1.routes()).toEqual([]);
      expect(await t2.routes()).toEqual([]);
      lab.thaw(d);
    } catch (err) {
      const ss = await execa('ip', ['netns', 'exec', nsD, 'ss', '-tnp'], { reject: false });
      throw new Error(`${(err as Error).message}\n---- ss in ${nsD}\n${ss.stdout}\n${await lab.logs()}`, {
        cause: err,
      });
    }
  } finally {
    await lab.cleanup();
  }
}
