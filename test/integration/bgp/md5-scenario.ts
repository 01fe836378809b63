// TCP MD5 (RFC 2385) interop: one LAN, a third-party daemon D (BIRD or FRR, AS 65002) and four
// tern-bgp speakers.
//   T1 → D (tern active) and D → T2 (tern passive), same password: Established, routes flow,
//     and the kernel shows the MD5 key on the connections.
//   T1 → T2, same password: tern ↔ tern Established. The same over IPv6 for T1 → D and D → T2.
//   T3 → D and D → T4 with passwords D does not share, T3 → T4 with different passwords:
//     never Established; the kernel counts the dropped segments (TCPMD5Failure) where they land,
//     and T3 reports why its connects time out.
import { execa } from 'execa';
import { expect } from 'vitest';
import { BgpLab, birdStatic, type DaemonHandle, type TernHandle } from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';
import {
  buildTernBgp,
  md5CountersIn,
  ssBgp,
  ssListen,
  startTern,
  stopAll,
  ternPeer,
  ternState,
} from './tcp-security-lab.js';

export type Md5DaemonKind = 'bird' | 'frr';

const T1 = '10.79.0.1';
const D = '10.79.0.2';
const T2 = '10.79.0.3';
const T3 = '10.79.0.4';
const T4 = '10.79.0.5';
const PD = '10.79.100.0/24';
// IPv6 sessions t1 → d and d → t2 (keys for real IPv6 peers on the dual-stack listeners).
const T1_6 = 'fd00:79::1';
const D_6 = 'fd00:79::2';
const T2_6 = 'fd00:79::3';
const KEY = 's3cret-md5';

function daemonConfig(kind: Md5DaemonKind): string {
  if (kind === 'bird') {
    return `router id ${D};
protocol device { }
${birdStatic(PD)}
template bgp t { local ${D} as 65002; connect retry time 1; password "${KEY}"; ipv4 { import all; export all; }; }
protocol bgp t1 from t { neighbor ${T1} as 65001; passive on; }
protocol bgp t2 from t { neighbor ${T2} as 65003; }
protocol bgp t3 from t { neighbor ${T3} as 65004; passive on; }
protocol bgp t4 from t { neighbor ${T4} as 65005; }
template bgp t6 { local ${D_6} as 65002; connect retry time 1; password "${KEY}"; ipv6 { import all; export none; }; }
protocol bgp t1v6 from t6 { neighbor ${T1_6} as 65001; passive on; }
protocol bgp t2v6 from t6 { neighbor ${T2_6} as 65003; }
`;
  }
  const peers: [string, number, boolean][] = [
    [T1, 65001, true],
    [T2, 65003, false],
    [T3, 65004, true],
    [T4, 65005, false],
    [T1_6, 65001, true],
    [T2_6, 65003, false],
  ];
  return `router bgp 65002
 bgp router-id ${D}
 no bgp ebgp-requires-policy
 no bgp network import-check
${peers
  .map(
    ([a, as, passive]) =>
      ` neighbor ${a} remote-as ${as}\n neighbor ${a} password ${KEY}\n neighbor ${a} timers connect 1\n` +
      (passive ? ` neighbor ${a} passive\n` : ''),
  )
  .join('')} address-family ipv4 unicast
  network ${PD}
 exit-address-family
!
`;
}

const timers = { connectRetryTime: 1, holdTime: 9 };

export async function runMd5Scenario(kind: Md5DaemonKind): Promise<void> {
  await buildTernBgp();
  const lab = new BgpLab();
  const terns: TernHandle[] = [];
  try {
    await lab.init();
    const ns = {
      t1: await lab.netns.add('t1'),
      d: await lab.netns.add('d'),
      t2: await lab.netns.add('t2'),
      t3: await lab.netns.add('t3'),
      t4: await lab.netns.add('t4'),
    };
    await lab.lan([
      { ns: ns.t1, address: `${T1}/24` },
      { ns: ns.d, address: `${D}/24` },
      { ns: ns.t2, address: `${T2}/24` },
      { ns: ns.t3, address: `${T3}/24` },
      { ns: ns.t4, address: `${T4}/24` },
    ]);
    for (const [n, a] of [
      [ns.t1, T1_6],
      [ns.d, D_6],
      [ns.t2, T2_6],
    ] as const)
      await execa('ip', ['-n', n, 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad']);
    const t1 = await startTern(
      lab,
      ns.t1,
      't1',
      {
        asn: 65001,
        routerId: T1,
        peers: [
          { address: D, asn: 65002, password: KEY, ...timers },
          { address: T2, asn: 65003, password: 'tern-to-tern', ...timers },
          { address: D_6, asn: 65002, password: KEY, ...timers },
        ],
      },
      terns,
    );
    const t2 = await startTern(
      lab,
      ns.t2,
      't2',
      {
        asn: 65003,
        routerId: T2,
        peers: [
          { address: D, asn: 65002, password: KEY, passive: true, ...timers },
          { address: T1, asn: 65001, password: 'tern-to-tern', passive: true, ...timers },
          { address: D_6, asn: 65002, password: KEY, passive: true, ...timers },
        ],
      },
      terns,
    );
    const t3 = await startTern(
      lab,
      ns.t3,
      't3',
      {
        asn: 65004,
        routerId: T3,
        peers: [
          { address: D, asn: 65002, password: 'not-the-key', ...timers },
          { address: T4, asn: 65005, password: 'one key', ...timers },
        ],
      },
      terns,
    );
    const t4 = await startTern(
      lab,
      ns.t4,
      't4',
      {
        asn: 65005,
        routerId: T4,
        peers: [
          { address: D, asn: 65002, password: 'not-the-key', passive: true, ...timers },
          { address: T3, asn: 65004, password: 'another key', passive: true, ...timers },
        ],
      },
      terns,
    );
    const d: DaemonHandle =
      kind === 'bird'
        ? await lab.bird(ns.d, 'd', daemonConfig(kind))
        : await lab.frr(ns.d, 'd', daemonConfig(kind));

    try {
      // Matching keys: tern active (t1 → d), tern passive (d → t2), tern ↔ tern (t1 → t2).
      const up: [TernHandle, string][] = [
        [t1, D],
        [t2, D],
        [t1, T2],
        [t2, T1],
        [t1, D_6],
        [t2, D_6],
      ];
      for (const [t, peer] of up)
        await waitFor(
          `${t.name} ↔ ${peer} established`,
          async () => (await ternState(t, peer)) === 'Established',
          30_000,
          250,
        );
      await waitFor(
        `${kind} sees t1 and t2`,
        async () => {
          const p = await d.peers();
          return [T1, T2, T1_6, T2_6].every((a) => p.find((x) => x.address === a)?.established);
        },
        15_000,
        250,
      );
      expect((await ternPeer(t1, D))?.passive).toBe(false);
      expect((await ternPeer(t2, D))?.passive).toBe(true);
      // UPDATEs pass over the signed connections.
      await waitFor(`${PD} at t1`, async () => (await t1.routes()).some((r) => r.prefix === PD), 15_000, 250);
      await waitFor(`${PD} at t2`, async () => (await t2.routes()).some((r) => r.prefix === PD), 15_000, 250);

      // The kernel holds the keys: on tern's listener (per peer) and on both established connections to d.
      expect(await ssListen(ns.t2)).toContain(`${D_6}/128`); // an IPv6 peer's key on the `::` listener
      expect(await ssListen(ns.t2)).toMatch(new RegExp(`md5keys:.*${D.replace(/\./g, '\\.')}/32`));
      expect(await ssBgp(ns.t1)).toMatch(
        new RegExp(`${D.replace(/\./g, '\\.')}:179[\\s\\S]*md5keys:${D.replace(/\./g, '\\.')}/32`),
      );
      expect(await ssBgp(ns.d)).toMatch(/md5keys:/);

      // Different keys: never up, however long the matching sessions had; give them several retries more.
      await new Promise((r) => setTimeout(r, 6000));
      for (const [t, peer] of [
        [t3, D],
        [t4, D],
        [t3, T4],
        [t4, T3],
      ] as const) {
        const s = await ternPeer(t, peer);
        expect(s?.state, `${t.name} ↔ ${peer}`).not.toBe('Established');
        expect(['Idle', 'Connect', 'Active']).toContain(s?.state);
      }
      const dPeers = await d.peers();
      for (const a of [T3, T4]) expect(dPeers.find((x) => x.address === a)?.established).toBe(false);
      // The SYNs were dropped where they arrived: d (from t3), t4 (from d and from t3).
      expect((await md5CountersIn(ns.d)).failure).toBeGreaterThan(0);
      expect((await md5CountersIn(ns.t4)).failure).toBeGreaterThan(0);
      // And t3 says why its connects time out.
      expect((await ternPeer(t3, D))?.lastError).toMatch(/^connect: timed out.*TCP MD5/);
      // Meanwhile the matching sessions stayed up.
      for (const [t, peer] of up) expect(await ternState(t, peer)).toBe('Established');
    } catch (err) {
      const ss = await execa('ip', ['netns', 'exec', ns.d, 'ss', '-tnie'], { reject: false });
      const logs = await Promise.all(
        terns.map(async (t) => `==== ${t.name}\n${(await t.log()).slice(-3000)}`),
      );
      throw new Error(
        `${(err as Error).message}\n---- ss in d\n${ss.stdout}\n${await lab.logs()}\n${logs.join('\n')}`,
        {
          cause: err,
        },
      );
    }
  } finally {
    await stopAll(terns);
    await lab.cleanup();
  }
}
