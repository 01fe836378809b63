// IPv6 unicast (RFC 4760 / 2545) between tern-bgp and a third-party daemon D on one LAN, both
// directions, over two transports:
//  - IPv6 session: IPv6 routes in MP_REACH with global (+ link-local, the daemon permitting)
//    next hops, then withdrawn with MP_UNREACH;
//  - IPv4 session carrying both families (a dual-stack node's announcements): tern's IPv6 next
//    hop is the IPv6 address of the session's interface (next-hop-self for IPv6 over IPv4).
// FRR runs with zebra: without it bgpd drops routes with a link-local next hop (no interface).
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BgpLab,
  birdStatic,
  type DaemonHandle,
  type LearnedRoute,
  type TernHandle,
} from '../../support/bgp-daemons.js';
import { waitFor } from '../../support/netns.js';

export type Ipv6DaemonKind = 'bird' | 'frr' | 'gobgp';
type Transport = 4 | 6;

const T4 = '10.77.0.1';
const D4 = '10.77.0.2';
const T6 = 'fd00:77::1';
const D6 = 'fd00:77::2';
const TERN_V6 = 'fd00:101::/64';
const TERN_V4 = '10.101.0.0/24';
const D_V6 = 'fd00:102::/64';
const D_V4 = '10.102.0.0/24';

const prefixesOf = (transport: Transport, v6: string, v4: string) => (transport === 4 ? [v6, v4] : [v6]);

function birdConfig(transport: Transport): string {
  const [local, peer] = transport === 4 ? [D4, T4] : [D6, T6];
  const v4 = transport === 4 ? 'ipv4 { import all; export where source = RTS_STATIC; };' : '';
  return `router id ${D4};
protocol device { }
${prefixesOf(transport, D_V6, D_V4)
  .map((p) => birdStatic(p))
  .join('')}
protocol bgp t { local ${local} as 65002; neighbor ${peer} as 65001; connect retry time 1;
  ${v4} ipv6 { import all; export where source = RTS_STATIC; }; }
`;
}

function frrConfig(transport: Transport): string {
  const peer = transport === 4 ? T4 : T6;
  return `router bgp 65002
 bgp router-id ${D4}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor ${peer} remote-as 65001
 neighbor ${peer} timers connect 1
 address-family ipv4 unicast
${transport === 4 ? `  network ${D_V4}\n` : `  no neighbor ${peer} activate\n`} exit-address-family
 address-family ipv6 unicast
  network ${D_V6}
  neighbor ${peer} activate
 exit-address-family
!
`;
}

function gobgpConfig(transport: Transport): string {
  const peer = transport === 4 ? T4 : T6;
  const family = (name: string) => `  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "${name}"
`;
  return `[global.config]
  as = 65002
  router-id = "${D4}"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${peer}"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
${transport === 4 ? family('ipv4-unicast') : ''}${family('ipv6-unicast')}`;
}

async function startDaemon(lab: BgpLab, kind: Ipv6DaemonKind, ns: string, transport: Transport) {
  const name = `d${transport}`;
  if (kind === 'bird') return lab.bird(ns, name, birdConfig(transport));
  if (kind === 'frr') return lab.frr(ns, name, frrConfig(transport), [], { zebra: true });
  const d = await lab.gobgp(ns, name, gobgpConfig(transport));
  for (const p of prefixesOf(transport, D_V6, D_V4)) await d.originate(p);
  return d;
}

const find = async (h: DaemonHandle, prefix: string) => (await h.routes()).find((r) => r.prefix === prefix);

/** The link-local address of `dev` in `ns`, once duplicate address detection is over. */
async function linkLocalOf(ns: string, dev: string): Promise<string> {
  return waitFor(
    `${dev} link-local address`,
    async () => {
      const out = (await execa('ip', ['-n', ns, '-6', 'addr', 'show', 'dev', dev, 'scope', 'link'])).stdout;
      if (/tentative/.test(out)) return undefined;
      return /inet6 (fe80::[0-9a-f:]+)\//.exec(out)?.[1];
    },
    10_000,
    100,
  );
}

export function describeIpv6Interop(kind: Ipv6DaemonKind): void {
  describe(`tern-bgp ↔ ${kind}: IPv6 unicast`, () => {
    const lab = new BgpLab();
    let nsT = '';
    let nsD = '';
    let llT = '';
    let llD = '';

    beforeAll(async () => {
      await lab.init();
      nsT = await lab.netns.add('t');
      nsD = await lab.netns.add('d');
      await lab.lan([
        { ns: nsT, address: `${T4}/24` },
        { ns: nsD, address: `${D4}/24` },
      ]);
      for (const [ns, a] of [
        [nsT, T6],
        [nsD, D6],
      ] as const)
        await execa('ip', ['-n', ns, 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad']);
      // Speakers read their link-local address when a session comes up: wait until it is usable.
      llT = await linkLocalOf(nsT, 'eth0');
      llD = await linkLocalOf(nsD, 'eth0');
    }, 60_000);

    afterAll(() => lab.cleanup(), 60_000);

    async function run(transport: Transport, check: (r: Exchange) => void | Promise<void>) {
      const [dAddr, name] = transport === 4 ? [D4, 't4'] : [D6, 't6'];
      let tern: TernHandle | undefined;
      let d: DaemonHandle | undefined;
      try {
        tern = await lab.tern(nsT, name, {
          asn: 65001,
          routerId: T4,
          peers: [{ address: dAddr, asn: 65002, connectRetryTime: 1 }],
          originate: prefixesOf(transport, TERN_V6, TERN_V4),
        });
        d = await startDaemon(lab, kind, nsD, transport);
        const t = tern;
        const dh = d;
        await waitFor('session', async () => (await t.status())[0]?.state === 'Established', 30_000, 250);
        const wanted = prefixesOf(transport, D_V6, D_V4);
        const atTern = await waitFor(
          `${kind} routes at tern`,
          async () => {
            const routes = await t.routes();
            return wanted.every((p) => routes.some((r) => r.prefix === p)) ? routes : undefined;
          },
          30_000,
          250,
        );
        const ternWanted = prefixesOf(transport, TERN_V6, TERN_V4);
        const atD = await waitFor(
          `tern routes at ${kind}`,
          async () => {
            const routes = await dh.routes();
            return ternWanted.every((p) => routes.some((r) => r.prefix === p)) ? routes : undefined;
          },
          30_000,
          250,
        );
        const pick = (rs: LearnedRoute[], p: string) => rs.find((r) => r.prefix === p)!;
        await check({
          atTern: (p) => pick(atTern, p),
          atD: (p) => pick(atD, p),
        });
        await t.withdraw(TERN_V6);
        await waitFor(`withdrawal at ${kind}`, async () => !(await find(dh, TERN_V6)), 15_000, 250);
        await dh.withdraw(D_V6);
        await waitFor('withdrawal at tern', async () => !(await find(t, D_V6)), 15_000, 250);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
      } finally {
        await d?.stop();
        await tern?.stop();
      }
    }

    it(`exchanges IPv6 routes over an IPv6 session with global${kind === 'gobgp' ? '' : ' + link-local'} next hops, and withdraws them`, async () => {
      await run(6, ({ atTern, atD }) => {
        expect(atTern(D_V6)).toMatchObject({ nextHop: D6, asPath: [65002] });
        expect(atD(TERN_V6)).toMatchObject({ nextHop: T6, asPath: [65001] });
        // tern sends its link-local address next to the global one to an on-link peer (32-byte
        // next hop); FRR and BIRD do the same (GoBGP sends the global one only).
        if (kind === 'frr') {
          expect(atD(TERN_V6).linkLocalNextHop).toBe(llT);
          expect(atTern(D_V6).linkLocalNextHop).toBe(llD);
        }
        if (kind === 'bird') expect(atTern(D_V6).linkLocalNextHop).toBe(llD);
      });
    }, 90_000);

    it('carries IPv4 and IPv6 routes on one IPv4 session, IPv6 next hop from the interface (next-hop-self)', async () => {
      await run(4, ({ atTern, atD }) => {
        expect(atD(TERN_V4)).toMatchObject({ nextHop: T4, asPath: [65001] });
        expect(atD(TERN_V6)).toMatchObject({ nextHop: T6, asPath: [65001] });
        expect(atTern(D_V4)).toMatchObject({ nextHop: D4, asPath: [65002] });
        expect(atTern(D_V6).asPath).toEqual([65002]);
        expect(atTern(D_V6).nextHop).toMatch(/:/);
      });
    }, 90_000);
  });
}

interface Exchange {
  atTern(prefix: string): LearnedRoute;
  atD(prefix: string): LearnedRoute;
}
