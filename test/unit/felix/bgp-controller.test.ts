// BgpController against a MemoryDatastore, a recording fake speaker and the real route
// reconciler on an in-memory kernel: sessions follow Nodes / BGPPeers / BGPConfiguration and
// change only where they must; announcements are the node's aggregated blocks; learned best
// paths become `bgp` routes.
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { BestPathChange, PeerOptions, PeerStatus, SpeakerOptions } from '../../../bgp/index.js';
import { MemoryDatastore } from '../../../datastore/memory.js';
import { BgpController, ownRoutesOnly, routerIdOf, type Speaker } from '../../../felix/bgp-controller.js';
import { ClusterView } from '../../../felix/cluster-view.js';
import { RouteReconciler } from '../../../kernel/routes/reconciler.js';
import { NODE_ANNOTATIONS, type AnyResource, type Node } from '../../../model/index.js';
import { FakeRouteKernel } from '../kernel/fake-route-kernel.js';

type Call = [string, ...unknown[]];

class FakeSpeaker
  extends EventEmitter<{
    bestPathChanged: [BestPathChange];
    peerStateChanged: [PeerStatus];
    deferralEnded: [];
  }>
  implements Speaker
{
  readonly calls: Call[] = [];
  readonly peerOptions = new Map<string, PeerOptions>();
  constructor(readonly options: SpeakerOptions) {
    super();
  }
  async start() {
    this.calls.push(['start']);
  }
  async stop() {
    this.calls.push(['stop']);
  }
  addPeer(o: PeerOptions) {
    this.calls.push(['addPeer', o.address]);
    this.peerOptions.set(o.address, o);
  }
  removePeer(address: string) {
    this.calls.push(['removePeer', address]);
    this.peerOptions.delete(address);
  }
  updatePeer(o: PeerOptions) {
    this.calls.push(['updatePeer', o.address]);
    this.peerOptions.set(o.address, o);
  }
  originate(prefix: string, attrs?: { communities?: readonly string[] }) {
    this.calls.push(['originate', prefix, attrs?.communities]);
  }
  withdraw(prefix: string) {
    this.calls.push(['withdraw', prefix]);
  }
  peers(): PeerStatus[] {
    return [...this.peerOptions.values()].map((o) => ({
      address: o.address,
      asn: o.asn,
      type: o.asn === this.options.asn ? 'ibgp' : 'ebgp',
      state: 'Established',
      since: new Date(0).toISOString(),
      passive: false,
      routeReflectorClient: !!o.routeReflectorClient,
      prefixesReceived: 0,
      prefixesAccepted: 0,
      prefixesAdvertised: 0,
    }));
  }
  rib() {
    return [];
  }
  /** Calls since the last take(). */
  take(): Call[] {
    return this.calls.splice(0);
  }
}

const nodeObj = (
  name: string,
  ipv4?: string,
  extra: { ipv6?: string; asn?: number; labels?: Record<string, string> } = {},
): Node => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name,
    labels: extra.labels ?? {},
    annotations: {
      ...(ipv4 ? { [NODE_ANNOTATIONS.bgpIPv4]: ipv4 } : {}),
      ...(extra.ipv6 ? { [NODE_ANNOTATIONS.bgpIPv6]: extra.ipv6 } : {}),
      ...(extra.asn ? { [NODE_ANNOTATIONS.asNumber]: String(extra.asn) } : {}),
    },
  },
});
const block = (cidr: string, affinity: string): AnyResource => ({
  apiVersion: 'tern.network/v1',
  kind: 'IPAMBlock',
  metadata: { name: cidr.replace(/[./]/g, '-') },
  spec: { cidr, pool: 'p', affinity, allocations: {} },
});
const bgpPeer = (name: string, spec: Record<string, unknown>): AnyResource =>
  ({ apiVersion: 'tern.network/v1', kind: 'BGPPeer', metadata: { name }, spec }) as AnyResource;

/** Dotted quad of a 4-byte address buffer. */
const ip = (b: Buffer) => [...b].join('.');

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  {
    self = 'a',
    selfIPv4,
    selfIPv6,
    initialSyncMs = 60_000,
    gracefulRestartSeconds,
    restarting,
  }: {
    self?: string;
    selfIPv4?: string;
    selfIPv6?: string;
    initialSyncMs?: number;
    gracefulRestartSeconds?: number;
    restarting?: boolean;
  } = {
    selfIPv4: '10.0.0.1',
  },
) {
  const ds = new MemoryDatastore();
  const kernel = new FakeRouteKernel();
  const routes = new RouteReconciler({ kernel, resyncIntervalMs: 0 });
  await routes.start();
  const view = new ClusterView(ds);
  await view.start();
  const speakers: FakeSpeaker[] = [];
  const controller = new BgpController({
    view,
    routes,
    nodeName: self,
    ...(selfIPv4 ? { nodeIPv4: selfIPv4 } : {}),
    ...(selfIPv6 ? { nodeIPv6: selfIPv6 } : {}),
    listenPort: 179,
    logger: pino({ level: 'silent' }),
    initialSyncMs,
    ...(gracefulRestartSeconds !== undefined ? { gracefulRestartSeconds } : {}),
    ...(restarting !== undefined ? { restarting } : {}),
    createSpeaker: (o) => {
      const s = new FakeSpeaker(o);
      speakers.push(s);
      return s;
    },
  });
  view.onChange(() => void controller.reconcile());
  cleanups.push(async () => {
    await controller.stop();
    await view.stop();
    await routes.stop();
  });
  /** Writes objects and waits until the controller has reconciled them. */
  const write = async (...objs: AnyResource[]) => {
    for (const o of objs) {
      const existing = await ds.get(o.kind, { name: o.metadata.name });
      if (existing)
        await ds.update({
          ...o,
          metadata: { ...o.metadata, resourceVersion: existing.metadata.resourceVersion },
        } as AnyResource);
      else await ds.create(o);
    }
    await new Promise((r) => setTimeout(r, 5));
    await controller.reconcile();
  };
  const remove = async (kind: AnyResource['kind'], name: string) => {
    await ds.delete(kind, { name });
    await new Promise((r) => setTimeout(r, 5));
    await controller.reconcile();
  };
  return { ds, kernel, routes, view, controller, speakers, write, remove };
}

describe('BgpController', () => {
  it('full mesh: one session per other node; a node added or removed touches only its own session', async () => {
    const t = await setup();
    await t.write(nodeObj('a', '10.0.0.1'), nodeObj('b', '10.0.0.2'), nodeObj('c', '10.0.0.3'));
    const s = t.speakers[0]!;
    expect(s.options).toMatchObject({ asn: 64512, routerId: '10.0.0.1' });
    expect(s.take().filter((c) => c[0] === 'addPeer')).toEqual([
      ['addPeer', '10.0.0.2'],
      ['addPeer', '10.0.0.3'],
    ]);

    await t.write(nodeObj('d', '10.0.0.4'));
    expect(s.take().filter((c) => c[0].endsWith('Peer'))).toEqual([['addPeer', '10.0.0.4']]);
    await t.remove('Node', 'c');
    expect(s.take().filter((c) => c[0].endsWith('Peer'))).toEqual([['removePeer', '10.0.0.3']]);
    expect(t.speakers).toHaveLength(1);
  });

  it('a BGPPeer added / removed live adds / removes exactly its session, with the own-routes-only export for eBGP', async () => {
    const t = await setup();
    await t.write(nodeObj('a', '10.0.0.1', { labels: { rack: 'r1' } }), nodeObj('b', '10.0.0.2'));
    const s = t.speakers[0]!;
    s.take();
    await t.write(
      bgpPeer('tor', {
        peerIP: '10.0.0.254',
        asNumber: 65001,
        nodeSelector: { matchLabels: { rack: 'r1' } },
      }),
    );
    expect(s.take().filter((c) => c[0].endsWith('Peer'))).toEqual([['addPeer', '10.0.0.254']]);
    const marker = `64512:${0x0a000001}:1`;
    expect(s.peerOptions.get('10.0.0.254')?.exportPolicy).toEqual(ownRoutesOnly(marker));
    expect(s.peerOptions.get('10.0.0.2')?.exportPolicy).toBeUndefined();

    await t.write(
      bgpPeer('other-rack', {
        peerIP: '10.0.0.253',
        asNumber: 65002,
        nodeSelector: { matchLabels: { rack: 'r2' } },
      }),
    );
    expect(s.take().filter((c) => c[0].endsWith('Peer'))).toEqual([]);
    await t.remove('BGPPeer', 'tor');
    expect(s.take().filter((c) => c[0].endsWith('Peer'))).toEqual([['removePeer', '10.0.0.254']]);
  });

  it("a BGPPeer's password, TTL security and BFD settings reach the speaker's session options", async () => {
    const t = await setup();
    await t.write(nodeObj('a', '10.0.0.1'));
    const s = t.speakers[0]!;
    await t.write(
      bgpPeer('tor', {
        peerIP: '10.0.0.254',
        asNumber: 65001,
        password: 'fabric-secret',
        ttlSecurity: 1,
        bfd: { desiredMinTxMs: 100, requiredMinRxMs: 100, multiplier: 3 },
      }),
    );
    expect(s.peerOptions.get('10.0.0.254')).toMatchObject({
      password: 'fabric-secret',
      ttlSecurity: 1,
      bfd: { desiredMinTxMs: 100, requiredMinRxMs: 100, multiplier: 3 },
    });
  });

  it('announces its own blocks aggregated, tagged with its marker; a new block adds before the old prefix is withdrawn', async () => {
    const t = await setup();
    await t.write(nodeObj('a', '10.0.0.1'), block('10.244.0.0/26', 'a'), block('10.244.1.0/26', 'b'));
    const s = t.speakers[0]!;
    const marker = [`64512:${0x0a000001}:1`];
    expect(s.take().filter((c) => c[0] === 'originate' || c[0] === 'withdraw')).toEqual([
      ['originate', '10.244.0.0/26', marker],
    ]);
    await t.write(block('10.244.0.64/26', 'a'));
    expect(s.take().filter((c) => c[0] === 'originate' || c[0] === 'withdraw')).toEqual([
      ['originate', '10.244.0.0/25', marker],
      ['withdraw', '10.244.0.0/26'],
    ]);
    expect(t.controller.originatedPrefixes()).toEqual(['10.244.0.0/25']);
  });

  it('learned best paths become bgp-class routes via their next hop; a withdrawal removes one once BGP is synced', async () => {
    const t = await setup({ selfIPv4: '10.0.0.1', initialSyncMs: 300 });
    await t.write(nodeObj('a', '10.0.0.1'), nodeObj('b', '10.0.0.2'));
    const s = t.speakers[0]!;
    const learned = (prefix: string, nextHop: string) =>
      s.emit('bestPathChanged', {
        prefix,
        best: { nextHop, source: 'ibgp' } as unknown as BestPathChange['best'],
      });
    learned('10.244.1.0/26', '10.0.0.2');
    learned('10.244.9.0/26', '10.0.0.1');
    await t.routes.whenIdle();
    const bgpRoutes = () =>
      [...t.kernel.routes.values()]
        .filter((r) => r.protocol === 92)
        .map((r) => `${ip(r.dst)}/${r.dstLen} via ${r.gateway ? ip(r.gateway) : '-'}`);
    expect(bgpRoutes()).toEqual(['10.244.1.0/26 via 10.0.0.2']);
    s.emit('bestPathChanged', { prefix: '10.244.1.0/26' });
    await t.routes.whenIdle();
    // Until the sessions have had their chance to resend (initial sync), a restart's adopted
    // learned routes are kept: the withdrawal takes effect once the class is synced.
    expect(bgpRoutes()).toEqual(['10.244.1.0/26 via 10.0.0.2']);
    await new Promise((r) => setTimeout(r, 400));
    await t.routes.whenIdle();
    expect(bgpRoutes()).toEqual([]);
  });

  it('an AS change restarts the speaker with the new AS and sets up the sessions again', async () => {
    const t = await setup();
    await t.write(nodeObj('a', '10.0.0.1'), nodeObj('b', '10.0.0.2'));
    await t.write({
      apiVersion: 'tern.network/v1',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { asNumber: 65010 },
    } as AnyResource);
    expect(t.speakers.map((x) => x.options.asn)).toEqual([64512, 65010]);
    expect(t.speakers[0]!.calls.at(-1)).toEqual(['stop']);
    expect(t.speakers[1]!.peerOptions.get('10.0.0.2')?.asn).toBe(65010);
  });

  it('graceful restart: restart time and forwarding state from the agent config, BGPConfiguration overrides, 0 = off', async () => {
    const t = await setup({ selfIPv4: '10.0.0.1', gracefulRestartSeconds: 120 });
    await t.write(nodeObj('a', '10.0.0.1'));
    expect(t.speakers[0]!.options.gracefulRestart).toEqual({
      restartTime: 120,
      forwardingState: true,
      restarting: false,
    });
    await t.write({
      apiVersion: 'tern.network/v1',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { gracefulRestartTime: 0 },
    } as AnyResource);
    expect(t.speakers.map((x) => x.options.gracefulRestart)).toEqual([
      { restartTime: 120, forwardingState: true, restarting: false },
      false,
    ]);
  });

  it('after a restart, adopted learned routes stay until the speaker has every End-of-RIB; a later speaker is not a restart', async () => {
    const t = await setup({ selfIPv4: '10.0.0.1', gracefulRestartSeconds: 120, restarting: true });
    await t.write(nodeObj('a', '10.0.0.1'), nodeObj('b', '10.0.0.2'));
    const s = t.speakers[0]!;
    expect(s.options.gracefulRestart).toMatchObject({ restarting: true });
    s.emit('bestPathChanged', {
      prefix: '10.244.1.0/26',
      best: { nextHop: '10.0.0.2', source: 'ibgp' } as unknown as BestPathChange['best'],
    });
    await t.routes.whenIdle();
    s.emit('bestPathChanged', { prefix: '10.244.1.0/26' });
    await t.routes.whenIdle();
    expect(t.routes.stats().keptUntilSynced).toBe(1);
    s.emit('deferralEnded');
    await t.routes.whenIdle();
    expect(t.routes.stats().keptUntilSynced).toBe(0);
    expect(t.routes.stats().installed).toBe(0);

    await t.write({
      apiVersion: 'tern.network/v1',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { asNumber: 65010 },
    } as AnyResource);
    expect(t.speakers[1]!.options.gracefulRestart).toMatchObject({ restarting: false });
  });

  it('concurrent reconciles at start build one speaker', async () => {
    const t = await setup();
    await t.ds.create(nodeObj('a', '10.0.0.1'));
    await Promise.all([t.controller.reconcile(), t.controller.reconcile(), t.controller.reconcile()]);
    expect(t.speakers).toHaveLength(1);
  });

  it('IPv6-only nodes: sessions over IPv6, distinct router IDs derived from the node name', async () => {
    const t = await setup({ selfIPv6: 'fd00::1' });
    await t.write(
      nodeObj('a', undefined, { ipv6: 'fd00::1' }),
      nodeObj('b', undefined, { ipv6: 'fd00::2' }),
      nodeObj('c', '10.0.0.3'),
    );
    const s = t.speakers[0]!;
    expect([...s.peerOptions.keys()]).toEqual(['fd00::2']);
    expect(s.options.routerId).toBe(routerIdOf('a', undefined));
    expect(routerIdOf('a', undefined)).not.toBe(routerIdOf('b', undefined));
    expect(routerIdOf('a', undefined)).not.toMatch(/^0\./);
    expect(routerIdOf('a', '10.0.0.1')).toBe('10.0.0.1');
  });

  it('a per-node AS annotation makes sessions between the two ASes eBGP with the own-routes-only export', async () => {
    const t = await setup();
    await t.write(
      nodeObj('a', '10.0.0.1'),
      nodeObj('b', '10.0.0.2', { asn: 64600 }),
      nodeObj('c', '10.0.0.3'),
    );
    const s = t.speakers[0]!;
    expect(s.peerOptions.get('10.0.0.2')).toMatchObject({
      asn: 64600,
      exportPolicy: ownRoutesOnly(`64512:${0x0a000001}:1`),
    });
    expect(s.peerOptions.get('10.0.0.3')?.exportPolicy).toBeUndefined();
    expect(t.controller.peerStatuses().map((p) => [p.address, p.type, p.source])).toEqual([
      ['10.0.0.2', 'ebgp', 'node:b'],
      ['10.0.0.3', 'ibgp', 'node:c'],
    ]);
  });
});
