// The reconciler's behaviour over time against an in-memory kernel: adoption without flushing,
// deferred deletion until synced, batching, drift repair, missing interfaces, foreign routes.
import { afterEach, describe, expect, it } from 'vitest';
import { RTN, RT_SCOPE, type KernelRoute } from '../../../kernel/netlink/codec.js';
import { RouteReconciler } from '../../../kernel/routes/reconciler.js';
import { FakeRouteKernel } from './fake-route-kernel.js';

const v4 = (a: number, b: number, c: number, d: number) => Buffer.from([a, b, c, d]);
const route = (patch: Partial<KernelRoute>): KernelRoute => ({
  family: 4,
  dst: v4(10, 0, 0, 5),
  dstLen: 32,
  table: 254,
  protocol: 90,
  scope: RT_SCOPE.LINK,
  type: RTN.UNICAST,
  tos: 0,
  flags: 0,
  oif: 5,
  gateway: undefined,
  priority: 0,
  ...patch,
});
const tick = () => new Promise((r) => setImmediate(r));

let current: RouteReconciler | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

function setup(prepare?: (k: FakeRouteKernel) => void) {
  const kernel = new FakeRouteKernel();
  kernel.links.set(5, { index: 5, name: 'ternaaaaaaaaaaa', up: true });
  prepare?.(kernel);
  const r = new RouteReconciler({ kernel, resyncIntervalMs: 0 });
  current = r;
  return { kernel, r };
}

describe('RouteReconciler', () => {
  it('adopts matching routes on start without sending a single request', async () => {
    const { kernel, r } = setup((k) => k.routes.set('a', route({})));
    r.setRoutes('pod', [{ dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' }]);
    await r.start();
    await r.whenIdle();
    expect(kernel.requestCount()).toBe(0);
    expect(r.stats().installed).toBe(1);
  });

  it('keeps stale routes of ours after a restart until the class is synced, then deletes only those', async () => {
    const { kernel, r } = setup((k) => {
      k.routes.set('stale', route({ dst: v4(10, 0, 0, 9) }));
      k.routes.set(
        'block',
        route({ dst: v4(10, 0, 0, 0), dstLen: 26, protocol: 91, type: RTN.BLACKHOLE, oif: 0 }),
      );
    });
    await r.start();
    r.upsert('pod', { dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' });
    await r.whenIdle();
    expect(kernel.applied.flat().map((q) => q.op)).toEqual(['add']);
    expect(r.stats().keptUntilSynced).toBe(2);
    r.markSynced('pod');
    await r.whenIdle();
    const deletes = kernel.applied.flat().filter((q) => q.op === 'delete');
    expect(deletes.map((q) => q.route.dst)).toEqual([v4(10, 0, 0, 9)]);
    expect([...kernel.routes.values()].some((x) => x.protocol === 91)).toBe(true);
  });

  it('reports the routes of ours the kernel holds (adopted and programmed) as ip -j route does, foreign ones left out', async () => {
    const { r } = setup((k) => {
      k.routes.set(
        'block',
        route({ dst: v4(10, 0, 0, 0), dstLen: 26, protocol: 91, type: RTN.BLACKHOLE, oif: 0 }),
      );
      k.routes.set('foreign', route({ dst: v4(10, 9, 9, 0), dstLen: 24, protocol: 4 }));
    });
    await r.start();
    r.upsert('pod', { dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' });
    r.upsert('bgp', { dst: '10.1.0.0/26', via: '10.0.0.1' });
    await r.whenIdle();
    const byDst = new Map(r.installed().map((x) => [x.dst, x]));
    expect([...byDst.keys()].sort()).toEqual(['10.0.0.0/26', '10.0.0.5', '10.1.0.0/26']);
    expect(byDst.get('10.0.0.0/26')).toEqual({
      dst: '10.0.0.0/26',
      type: 'blackhole',
      protocol: '91',
      class: 'block',
    });
    expect(byDst.get('10.0.0.5')).toEqual({
      dst: '10.0.0.5',
      dev: 'ternaaaaaaaaaaa',
      protocol: '90',
      class: 'pod',
    });
    expect(byDst.get('10.1.0.0/26')).toMatchObject({ gateway: '10.0.0.1', protocol: '92', class: 'bgp' });
  });

  it('sends a thousand changes made in one turn as one batch', async () => {
    const { kernel, r } = setup();
    await r.start();
    for (let i = 0; i < 1000; i++)
      r.upsert('pod', { dst: `10.0.${i >> 8}.${i & 255}/32`, dev: 'ternaaaaaaaaaaa' });
    await r.whenIdle();
    expect(kernel.applied.length).toBe(1);
    expect(kernel.applied[0]!.length).toBe(1000);
  });

  it('applies a large batch with route notifications paused, resumes them, and re-reads the table afterwards', async () => {
    const { kernel, r } = setup();
    await r.start();
    const dumpsBefore = r.stats().resyncs;
    for (let i = 0; i < 2000; i++)
      r.upsert('pod', { dst: `10.1.${i >> 8}.${i & 255}/32`, dev: 'ternaaaaaaaaaaa' });
    await r.whenIdle();
    expect(kernel.eventsDuringApply).toEqual([false]);
    expect(kernel.routeEventToggles).toEqual([false, true]);
    expect(kernel.routes.size).toBe(2000);
    await new Promise((res) => setTimeout(res, 700));
    await r.whenIdle();
    expect(r.stats().resyncs).toBe(dumpsBefore + 1);
    expect(r.stats().driftRepaired).toBe(0);
  });

  it('restores a route deleted behind its back, from the notification alone', async () => {
    const { kernel, r } = setup();
    await r.start();
    r.setRoutes('block', [{ dst: '10.0.0.0/26' }]);
    await r.whenIdle();
    const [key] = kernel.routes.keys();
    kernel.del(key!);
    await tick();
    await r.whenIdle();
    expect(kernel.routes.size).toBe(1);
    expect(r.stats().driftRepaired).toBe(1);
  });

  it('never sends a request for a destination held by a foreign route, and takes it once that route goes', async () => {
    const foreign = route({ protocol: 4, dst: v4(10, 0, 0, 5) });
    const { kernel, r } = setup((k) => k.routes.set(k.keyOf(foreign), foreign));
    r.setRoutes('pod', [{ dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' }]);
    await r.start();
    await r.whenIdle();
    expect(kernel.requestCount()).toBe(0);
    expect(r.stats().conflicts).toBe(1);
    kernel.del(kernel.keyOf(foreign));
    await tick();
    await r.whenIdle();
    expect(kernel.applied.flat().map((q) => [q.op, q.route.protocol])).toEqual([['add', 90]]);
  });

  it('adopts an identical route of ours it had not seen yet (the CNI installs pod routes itself) instead of taking it for a foreign one', async () => {
    const { kernel, r } = setup();
    await r.start();
    kernel.setRouteEvents(false); // the CNI's route notification is still on its way
    kernel.put(route({}));
    r.upsert('pod', { dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' });
    await r.whenIdle();
    expect(kernel.applied.flat().map((q) => q.op)).toEqual(['add']); // answered EEXIST
    const deadline = Date.now() + 3000;
    while (r.stats().installed !== 1 && Date.now() < deadline) await new Promise((w) => setTimeout(w, 20));
    await r.whenIdle();
    expect(r.stats()).toMatchObject({ installed: 1, conflicts: 0 });
    r.setRoutes('pod', []); // managed as ours from then on: no longer desired, it is deleted
    await r.whenIdle();
    expect(kernel.routes.size).toBe(0);
  });

  it('holds a pod route while its interface is missing and installs it when the link appears', async () => {
    const { kernel, r } = setup();
    await r.start();
    r.upsert('pod', { dst: '10.0.0.7/32', dev: 'ternbbbbbbbbbbb' });
    await r.whenIdle();
    expect(kernel.requestCount()).toBe(0);
    expect(r.stats().waiting).toBe(1);
    kernel.addLink({ index: 9, name: 'ternbbbbbbbbbbb', up: true });
    await tick();
    await r.whenIdle();
    expect(kernel.applied.flat().map((q) => [q.op, q.route.oif])).toEqual([['add', 9]]);
    expect(r.stats().waiting).toBe(0);
  });

  it('treats ENODEV from the kernel as not ready yet instead of retrying in a loop', async () => {
    const { kernel, r } = setup();
    kernel.refuse = () => 19;
    await r.start();
    r.upsert('pod', { dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' });
    await r.whenIdle();
    for (let i = 0; i < 5; i++) await tick();
    await r.whenIdle();
    expect(kernel.requestCount()).toBe(1);
    expect(r.stats()).toMatchObject({ waiting: 1, failed: 0 });
  });

  it('a periodic resync re-reads the kernel and repairs a change it was not told about', async () => {
    const { kernel, r } = setup();
    await r.start();
    r.setRoutes('bgp', [{ dst: '10.1.0.0/26', via: '192.168.0.2' }]);
    await r.whenIdle();
    const [key] = kernel.routes.keys();
    kernel.routes.set(key!, { ...kernel.routes.get(key!)!, gateway: v4(192, 168, 0, 9) }); // silent change
    await r.resync();
    expect(kernel.applied.flat().map((q) => q.op)).toEqual(['add', 'replace']);
    expect(kernel.routes.get(key!)!.gateway).toEqual(v4(192, 168, 0, 2));
  });

  it('stop leaves every route in the kernel', async () => {
    const { kernel, r } = setup();
    await r.start();
    r.setRoutes('pod', [{ dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' }]);
    r.setRoutes('block', [{ dst: '10.0.0.0/26' }]);
    await r.whenIdle();
    const before = kernel.requestCount();
    await r.stop();
    expect(kernel.requestCount()).toBe(before);
    expect(kernel.routes.size).toBe(2);
    expect(kernel.closed).toBe(true);
  });

  it('setRoutes validates every route before changing anything', async () => {
    const { r } = setup();
    r.setRoutes('pod', [{ dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' }]);
    expect(() =>
      r.setRoutes('pod', [
        { dst: '10.0.0.6/32', dev: 'ternaaaaaaaaaaa' },
        { dst: 'x', dev: 'y' },
      ]),
    ).toThrow(/dst/);
    expect(r.desiredRoutes('pod')).toEqual(['10.0.0.5/32']);
  });
});
