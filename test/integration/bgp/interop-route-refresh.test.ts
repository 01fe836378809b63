// Route refresh (RFC 2918) and enhanced route refresh (RFC 7313) with FRR and BIRD in network
// namespaces, both ways on one session:
//  - the daemon asks tern (FRR `clear bgp … soft in`, BIRD `reload in`): tern answers with BoRR,
//    its routes and EoRR; the daemon, which purges at EoRR whatever was not re-sent, keeps them;
//  - BIRD re-sends to tern (`reload out`) framed by BoRR / EoRR: tern marks BIRD's routes at BoRR
//    and keeps the re-sent ones at EoRR;
//  - tern asks: its import policy changes (tern-bgp re-reads its config on SIGHUP), it sends a
//    ROUTE-REFRESH, and the daemon's re-sent routes pass the new policy — a route the old policy
//    rejected arrives, on the same session.
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgpLab, birdStatic, type DaemonHandle, type TernHandle } from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';

const T = '10.79.0.1';
const D = '10.79.0.2';
const PT = '10.121.0.0/24';
const PD = '10.122.0.0/24';

type Kind = 'frr' | 'bird';

const configs: Record<Kind, string> = {
  frr: `router bgp 65002
 bgp router-id ${D}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor ${T} remote-as 65001
 neighbor ${T} timers connect 1
 address-family ipv4 unicast
  network ${PD}
 exit-address-family
!
debug bgp neighbor-events
`,
  bird: `router id ${D};
protocol device { }
${birdStatic(PD)}
protocol bgp t { local ${D} as 65002; neighbor ${T} as 65001; connect retry time 1;
  debug { states, events, packets };
  ipv4 { import all; export where source = RTS_STATIC; }; }
`,
};

/** Asks the daemon to refresh its routes from tern (`in`) or to re-send its own to tern (`out`). */
async function refresh(lab: BgpLab, kind: Kind, d: DaemonHandle, direction: 'in' | 'out'): Promise<void> {
  const dir = path.join(lab.dir, d.name);
  if (kind === 'frr')
    await execa('vtysh', ['--vty_socket', dir, '-c', `clear bgp ipv4 unicast ${T} soft in`]);
  else await execa('birdc', ['-s', path.join(dir, 'bird.ctl'), `reload ${direction}`, 't']);
}

/** tern log lines (JSON) with this message. */
async function ternLog(tern: TernHandle, msg: string): Promise<Record<string, unknown>[]> {
  return (await tern.log())
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

for (const kind of ['frr', 'bird'] as const) {
  describe(`route refresh with ${kind}`, () => {
    const lab = new BgpLab();
    let tern: TernHandle;
    let d: DaemonHandle;
    const ternConfig = (importPolicy?: unknown) => ({
      asn: 65001,
      routerId: T,
      // FRR 8.4 ignores a ROUTE-REFRESH received "before EoR", and sends its End-of-RIB only to
      // peers with the graceful restart capability: tern advertises it, as the agent always does.
      gracefulRestart: { restartTime: 60 },
      peers: [{ address: D, asn: 65002, connectRetryTime: 1, ...(importPolicy ? { importPolicy } : {}) }],
      originate: [PT],
    });

    beforeAll(async () => {
      await lab.init();
      const nsT = await lab.netns.add('t');
      const nsD = await lab.netns.add('d');
      await lab.lan([
        { ns: nsT, address: `${T}/24` },
        { ns: nsD, address: `${D}/24` },
      ]);
      tern = await lab.tern(nsT, 't', ternConfig());
      d = kind === 'frr' ? await lab.frr(nsD, 'd', configs.frr) : await lab.bird(nsD, 'd', configs.bird);
      await waitFor(
        `tern route at ${kind}`,
        async () => (await d.routes()).some((r) => r.prefix === PT),
        30_000,
      );
      await waitFor(
        `${kind} route at tern`,
        async () => (await tern.routes()).some((r) => r.prefix === PD),
        30_000,
      );
      const n = (await ternLog(tern, 'session established'))[0]?.negotiated as {
        enhancedRouteRefresh?: boolean;
      };
      expect(n.enhancedRouteRefresh).toBe(true);
    }, 60_000);

    afterAll(() => lab.cleanup(), 60_000);

    const failWithLogs = async (err: unknown) => {
      throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
    };

    it(`answers ${kind}'s refresh request with BoRR, its routes and EoRR, and ${kind} keeps them`, async () => {
      try {
        await refresh(lab, kind, d, 'in');
        const answered = await waitFor(
          'refresh answered',
          async () => (await ternLog(tern, 'route refresh request answered'))[0],
          15_000,
        );
        expect(answered).toMatchObject({ peer: D, afi: 1, enhanced: true });
        if (kind === 'frr') {
          // FRR logs the BoRR / EoRR it received and purges at EoRR what tern did not re-send.
          await waitFor('FRR saw EoRR', async () => /EoRR/.test(await d.log()), 15_000);
          expect(await d.log()).toMatch(/BoRR/);
        }
        await new Promise((r) => setTimeout(r, 1000));
        expect((await d.routes()).map((r) => r.prefix)).toContain(PT);
        expect((await d.peers())[0]?.established).toBe(true);
      } catch (err) {
        await failWithLogs(err);
      }
    }, 60_000);

    if (kind === 'bird')
      it(`marks ${kind}'s routes at its BoRR and keeps the re-sent ones at EoRR`, async () => {
        try {
          await refresh(lab, kind, d, 'out');
          const ended = await waitFor(
            'EoRR from the daemon',
            async () => (await ternLog(tern, 'route refresh ended')).find((l) => l.why === 'EoRR'),
            15_000,
          );
          expect(ended).toMatchObject({ peer: D, family: 4, purged: 0 });
          expect((await ternLog(tern, 'BoRR received'))[0]).toMatchObject({ peer: D, family: 4, marked: 1 });
          expect((await tern.routes()).map((r) => r.prefix)).toContain(PD);
          expect((await tern.status())[0]).toMatchObject({ state: 'Established', prefixesAccepted: 1 });
        } catch (err) {
          await failWithLogs(err);
        }
      }, 60_000);

    it(`asks ${kind} for a refresh when its import policy changes, and the routes follow the policy on the same session`, async () => {
      try {
        const reconfigure = async (importPolicy?: unknown) => {
          await writeFile(
            path.join(lab.dir, 't', 'tern-bgp.json'),
            JSON.stringify({ logLevel: 'debug', ...ternConfig(importPolicy), controlSocket: tern.socket }),
          );
          process.kill(tern.pid, 'SIGHUP');
        };
        const sessions = (await ternLog(tern, 'session established')).length;
        await reconfigure({ rules: [{ match: { prefixes: [{ prefix: PD }] }, action: 'reject' }] });
        await waitFor(
          `${PD} rejected`,
          async () => !(await tern.routes()).some((r) => r.prefix === PD),
          15_000,
        );
        await reconfigure();
        await waitFor(`${PD} back`, async () => (await tern.routes()).some((r) => r.prefix === PD), 15_000);
        expect((await ternLog(tern, 'configuration reloaded')).map((l) => l.updated)).toEqual([[D], [D]]);
        expect(await ternLog(tern, 'session established')).toHaveLength(sessions);
        expect((await tern.status())[0]).toMatchObject({ state: 'Established', prefixesAccepted: 1 });
      } catch (err) {
        await failWithLogs(err);
      }
    }, 60_000);
  });
}
