// The CNI data path installs a pod's /32 itself (protocol 90), so the reconciler's own add
// can meet an identical route of ours it has not been told about yet.
import { afterEach, expect, it } from 'vitest';
import { RTN, RT_SCOPE, type KernelRoute } from '../../../felix/netlink/codec.js';
import { RouteReconciler } from '../../../felix/routes/reconciler.js';
import { FakeRouteKernel } from './fake-route-kernel.js';

const podRoute: KernelRoute = {
  family: 4,
  dst: Buffer.from([10, 0, 0, 5]),
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
};

let reconciler: RouteReconciler | undefined;
afterEach(async () => {
  await reconciler?.stop();
});

it('an identical route of ours it had not seen yet is adopted as ours, not recorded as a foreign conflict', async () => {
  const kernel = new FakeRouteKernel();
  kernel.links.set(5, { index: 5, name: 'ternaaaaaaaaaaa', up: true });
  reconciler = new RouteReconciler({ kernel, resyncIntervalMs: 0 });
  await reconciler.start();
  kernel.setRouteEvents(false); // the CNI's route notification is still on its way
  kernel.put({ ...podRoute });
  reconciler.upsert('pod', { dst: '10.0.0.5/32', dev: 'ternaaaaaaaaaaa' });
  await reconciler.whenIdle();
  expect(kernel.applied.flat().map((q) => q.op)).toEqual(['add']); // answered EEXIST
  const deadline = Date.now() + 3000;
  while (reconciler.stats().installed !== 1 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  await reconciler.whenIdle();
  expect(reconciler.stats()).toMatchObject({ installed: 1, conflicts: 0 });
  // It is managed as ours from then on: no longer desired, it is deleted.
  reconciler.setRoutes('pod', []);
  await reconciler.whenIdle();
  expect(kernel.routes.size).toBe(0);
});
