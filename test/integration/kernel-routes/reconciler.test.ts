// The route reconciler against a real kernel, in a network namespace (the reconciler runs in a child
// process started with `ip netns exec`, see harness-client.ts).
import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet, stopProcess, waitFor } from '../../support/netns.js';
import { Harness, buildHarness } from './harness-client.js';

interface IpRoute {
  dst: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
  type?: string;
}

const nets = new NetnsSet();
let ns = '';
const running = new Set<Harness>();
const monitors = new Set<ResultPromise>();

const POD = {
  v4: { dst: '10.60.0.5/32', dev: 'veth0' },
  v6: { dst: 'fd00:60::5/128', dev: 'veth0' },
};
const BLOCKS = [{ dst: '10.60.0.0/26' }, { dst: 'fd00:60::/122' }];
const BGP = [
  { dst: '10.61.0.0/26', via: '192.168.50.2' },
  { dst: 'fd00:61::/122', via: 'fd00:50::2' },
];

async function ip(...args: string[]): Promise<string> {
  return (await execa('ip', ['-n', ns, ...args])).stdout;
}

async function routes(): Promise<IpRoute[]> {
  const v4 = JSON.parse(await ip('-j', 'route', 'show')) as IpRoute[];
  const v6 = JSON.parse(await ip('-j', '-6', 'route', 'show')) as IpRoute[];
  return [...v4, ...v6];
}

const ours = (rs: IpRoute[]) => rs.filter((r) => ['90', '91', '92'].includes(r.protocol ?? ''));
const foreign = async () =>
  (await routes())
    .filter((r) => !['90', '91', '92'].includes(r.protocol ?? ''))
    .map((r) => JSON.stringify(r))
    .sort();
const find = async (dst: string) => (await routes()).find((r) => r.dst === dst.replace(/\/(32|128)$/, ''));

async function launch(resyncIntervalMs = 60_000): Promise<Harness> {
  const h = await Harness.launch(ns, { resyncIntervalMs });
  running.add(h);
  return h;
}

async function close(h: Harness): Promise<void> {
  await h.close();
  running.delete(h);
}

/** `ip monitor route` with timestamps, for watching what happens to the table during a step. */
function monitor(): { lines: () => string[]; stop: () => Promise<void> } {
  const proc = execa('ip', ['-n', ns, '-ts', 'monitor', 'route'], { reject: false, buffer: false });
  monitors.add(proc);
  const out: string[] = [];
  // The kernel's own `table local` routes (a veth's IPv6 link-local address, configured late on a
  // loaded machine) are not the main table the reconciler manages.
  proc.stdout?.on('data', (chunk: Buffer) =>
    out.push(
      ...chunk
        .toString()
        .split('\n')
        .filter((l) => l && !l.includes(' table local ')),
    ),
  );
  return {
    lines: () => out,
    stop: async () => {
      await stopProcess(proc.pid);
      monitors.delete(proc);
    },
  };
}

/** Milliseconds (with the microseconds) of an `ip -ts monitor` line: "[2025-01-01T10:00:00.123456] ...". */
function stampMs(line: string): number {
  const m = /^\[(.+?)(?:\.(\d+))?\]/.exec(line);
  if (!m) return NaN;
  return Date.parse(m[1]!) + Number(`0.${m[2] ?? '0'}`) * 1000;
}

let foreignBefore: string[] = [];

beforeAll(async () => {
  await buildHarness();
  ns = await nets.add('routes');
  await ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  await ip('link', 'add', 'veth2', 'type', 'veth', 'peer', 'name', 'veth3');
  for (const l of ['veth0', 'veth1', 'veth2', 'veth3']) await ip('link', 'set', l, 'up');
  await ip('addr', 'add', '192.168.50.1/24', 'dev', 'veth0');
  await ip('-6', 'addr', 'add', 'fd00:50::1/64', 'dev', 'veth0', 'nodad');
  // Routes of other programs, which must survive everything below.
  await ip('route', 'add', '10.77.0.0/24', 'via', '192.168.50.9', 'proto', 'static');
  await ip('route', 'add', '10.78.0.0/24', 'dev', 'veth0', 'proto', 'bird');
  await ip('route', 'add', 'blackhole', '10.79.0.0/24', 'proto', 'boot');
  await ip('-6', 'route', 'add', 'fd00:77::/64', 'via', 'fd00:50::9', 'proto', 'static');
  foreignBefore = await foreign();
}, 300_000);

afterEach(async () => {
  for (const m of monitors) await stopProcess(m.pid);
  monitors.clear();
  // A test that failed before closing its harness must not leave it reconciling under the next test.
  for (const h of running) await h.kill9().catch(() => undefined);
  running.clear();
});

afterAll(async () => {
  for (const h of running) await h.kill9().catch(() => undefined);
  await nets.cleanup();
});

describe('route reconciler in a network namespace', () => {
  it('installs pod, block and BGP routes for IPv4 and IPv6 with protocols 90, 91 and 92', async () => {
    const h = await launch();
    await h.call({ cmd: 'setRoutes', cls: 'pod', routes: [POD.v4, POD.v6] });
    await h.call({ cmd: 'setRoutes', cls: 'block', routes: BLOCKS });
    await h.call({ cmd: 'setRoutes', cls: 'bgp', routes: BGP, idle: true });

    expect(await find('10.60.0.5/32')).toMatchObject({ dev: 'veth0', protocol: '90', scope: 'link' });
    expect(await find('fd00:60::5/128')).toMatchObject({ dev: 'veth0', protocol: '90' });
    expect(await find('10.60.0.0/26')).toMatchObject({ type: 'blackhole', protocol: '91' });
    expect(await find('fd00:60::/122')).toMatchObject({ type: 'blackhole', protocol: '91' });
    expect(await find('10.61.0.0/26')).toMatchObject({ gateway: '192.168.50.2', protocol: '92' });
    expect(await find('fd00:61::/122')).toMatchObject({ gateway: 'fd00:50::2', protocol: '92' });
    expect(ours(await routes())).toHaveLength(6);
    expect(await foreign()).toEqual(foreignBefore);
    await close(h);
  });

  it('replaces a pod route when its veth changes and a BGP route when its next hop changes, in place', async () => {
    const h = await launch();
    const mon = monitor();
    await new Promise((r) => setTimeout(r, 200)); // let ip monitor subscribe
    await h.call({ cmd: 'setRoutes', cls: 'pod', routes: [{ ...POD.v4, dev: 'veth2' }, POD.v6] });
    await h.call({ cmd: 'setRoutes', cls: 'block', routes: BLOCKS });
    await h.call({
      cmd: 'setRoutes',
      cls: 'bgp',
      routes: [{ ...BGP[0], via: '192.168.50.3' }, BGP[1]],
      idle: true,
    });
    expect(await find('10.60.0.5/32')).toMatchObject({ dev: 'veth2', protocol: '90' });
    expect(await find('10.61.0.0/26')).toMatchObject({ gateway: '192.168.50.3', protocol: '92' });
    expect(await h.stats()).toMatchObject({ replaced: 2, added: 0, deleted: 0 });
    await new Promise((r) => setTimeout(r, 200));
    expect(mon.lines().filter((l) => l.includes('Deleted'))).toEqual([]);
    await mon.stop();
    await close(h);
  });

  it('restart without disruption: stop (and kill -9), start again: routes adopted, nothing deleted or rewritten', async () => {
    const before = ours(await routes());
    expect(before).toHaveLength(6);
    const mon = monitor();
    await new Promise((r) => setTimeout(r, 200));

    // Graceful stop, then a start that has not been told the desired state yet.
    let h = await launch();
    await h.call({ cmd: 'idle' });
    expect(await h.stats()).toMatchObject({ keptUntilSynced: 6, deleted: 0, installed: 6 });
    await close(h);
    // Crash.
    h = await launch();
    await h.kill9();
    running.delete(h);
    // Start and sync the same desired state: everything is adopted as it is.
    h = await launch();
    await h.call({ cmd: 'setRoutes', cls: 'pod', routes: [{ ...POD.v4, dev: 'veth2' }, POD.v6] });
    await h.call({ cmd: 'setRoutes', cls: 'block', routes: BLOCKS });
    await h.call({
      cmd: 'setRoutes',
      cls: 'bgp',
      routes: [{ ...BGP[0], via: '192.168.50.3' }, BGP[1]],
      idle: true,
    });
    expect(await h.stats()).toMatchObject({ added: 0, replaced: 0, deleted: 0, installed: 6 });
    await new Promise((r) => setTimeout(r, 200));
    expect(mon.lines()).toEqual([]);
    expect(ours(await routes())).toEqual(before);
    await mon.stop();
    await close(h);
  });

  it('restores a route deleted by hand from the notification, long before any periodic resync', async () => {
    const h = await launch(600_000);
    await h.call({ cmd: 'setRoutes', cls: 'block', routes: BLOCKS, idle: true });
    const mon = monitor();
    await new Promise((r) => setTimeout(r, 200));
    await ip('route', 'del', '10.60.0.0/26', 'proto', '91');
    await waitFor('blackhole restored', async () => (await find('10.60.0.0/26'))?.protocol === '91', 5000, 5);
    await ip('-6', 'route', 'del', 'fd00:60::/122', 'proto', '91');
    await waitFor(
      'IPv6 blackhole restored',
      async () => (await find('fd00:60::/122'))?.protocol === '91',
      5000,
      5,
    );
    await new Promise((r) => setTimeout(r, 100));
    const stamps = mon
      .lines()
      .filter((l) => l.includes('10.60.0.0/26'))
      .map((l) => ({ deleted: l.includes('Deleted'), at: stampMs(l) }));
    const del = stamps.find((s) => s.deleted);
    const back = stamps.find((s) => !s.deleted && del && s.at >= del.at);
    expect(del && back).toBeTruthy();
    console.log(
      `hand-deleted route restored ${(back!.at - del!.at).toFixed(2)} ms after its deletion (ip monitor timestamps)`,
    );
    expect((await h.stats()).driftRepaired).toBe(2);
    expect((await h.stats()).resyncs).toBe(1);
    await mon.stop();
    await close(h);
  });

  it('removes routes no longer desired — only ours, never the foreign ones', async () => {
    const h = await launch();
    await h.call({ cmd: 'setRoutes', cls: 'pod', routes: [] });
    await h.call({ cmd: 'setRoutes', cls: 'block', routes: [BLOCKS[1]] });
    await h.call({ cmd: 'setRoutes', cls: 'bgp', routes: [], idle: true });
    expect(ours(await routes()).map((r) => r.dst)).toEqual(['fd00:60::/122']);
    expect(await foreign()).toEqual(foreignBefore);
    await close(h);
  });

  it('reinstalls at start the routes deleted while the agent was down', async () => {
    await ip('-6', 'route', 'del', 'fd00:60::/122', 'proto', '91');
    const h = await launch();
    await h.call({ cmd: 'setRoutes', cls: 'block', routes: [BLOCKS[1]], idle: true });
    expect(await find('fd00:60::/122')).toMatchObject({ type: 'blackhole', protocol: '91' });
    await close(h);
  });

  it('holds a pod route whose veth does not exist yet without retrying in a loop, and installs it when it appears', async () => {
    const h = await launch();
    await h.call({
      cmd: 'setRoutes',
      cls: 'pod',
      routes: [{ dst: '10.60.0.9/32', dev: 'ternlate0' }],
      idle: true,
    });
    const held = await h.stats();
    expect(held.waiting).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect((await h.stats()).batches).toBe(held.batches);
    expect(await find('10.60.0.9/32')).toBeUndefined();

    await ip('link', 'add', 'ternlate0', 'type', 'veth', 'peer', 'name', 'ternlate1');
    await ip('link', 'set', 'ternlate0', 'up');
    await waitFor(
      'pod route via the new veth',
      async () => (await find('10.60.0.9/32'))?.dev === 'ternlate0',
      5000,
      20,
    );
    expect((await h.stats()).waiting).toBe(0);

    // The veth goes away (pod deleted before its route): the kernel drops the route; it waits again.
    await ip('link', 'del', 'ternlate0');
    await waitFor('route waiting again', async () => (await h.stats()).waiting === 1, 5000, 20);
    await h.call({ cmd: 'setRoutes', cls: 'pod', routes: [], idle: true });
    await close(h);
  });

  it('never overwrites a foreign route at a destination it wants, and takes the destination once it is free', async () => {
    await ip('route', 'add', '10.60.0.20/32', 'via', '192.168.50.9', 'proto', 'static');
    const h = await launch();
    await h.call({ cmd: 'upsert', cls: 'pod', route: { dst: '10.60.0.20/32', dev: 'veth0' }, idle: true });
    expect(await find('10.60.0.20/32')).toMatchObject({ gateway: '192.168.50.9', protocol: 'static' });
    expect((await h.stats()).conflicts).toBe(1);
    await ip('route', 'del', '10.60.0.20/32', 'proto', 'static');
    await waitFor(
      'our route after the foreign one left',
      async () => (await find('10.60.0.20/32'))?.protocol === '90',
      5000,
      20,
    );
    await h.call({ cmd: 'setRoutes', cls: 'pod', routes: [], idle: true });
    expect(await find('10.60.0.20/32')).toBeUndefined();
    expect(await foreign()).toEqual(foreignBefore);
    await close(h);
  });

  it('programs and removes 3000 routes in bulk (notifications paused) and still sees drift afterwards', async () => {
    const h = await launch();
    const many = Array.from({ length: 3000 }, (_, i) => ({
      dst: `10.62.${i >> 8}.${i & 255}/32`,
      dev: 'veth0',
    }));
    await h.call({ cmd: 'setRoutes', cls: 'pod', routes: many, idle: true });
    expect(ours(await routes()).filter((r) => r.protocol === '90')).toHaveLength(3000);
    await new Promise((r) => setTimeout(r, 1500)); // the post-bulk table read
    await ip('route', 'del', '10.62.0.7/32', 'proto', '90');
    await waitFor(
      'route restored after bulk',
      async () => (await find('10.62.0.7/32'))?.protocol === '90',
      5000,
      20,
    );
    await h.call({ cmd: 'setRoutes', cls: 'pod', routes: [], idle: true });
    expect(ours(await routes()).filter((r) => r.protocol === '90')).toHaveLength(0);
    expect((await h.stats()).failed).toBe(0);
    expect(await foreign()).toEqual(foreignBefore);
    await close(h);
  });
  it('survives a foreign burst of route changes beyond its notification buffer, counts the overrun and resyncs', async () => {
    const h = await launch();
    await h.call({ cmd: 'setRoutes', cls: 'block', routes: BLOCKS, idle: true });
    const burst = (verb: string) =>
      Array.from(
        { length: 30_000 },
        (_, i) => `route ${verb} 10.201.${i >> 8}.${i & 255}/32 dev veth0 proto static`,
      )
        .concat('')
        .join('\n');
    // The harness is stopped while the burst lands, so its notification queue overflows for
    // certain (a reader that keeps up would make this test prove nothing).
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(h.pid!, sig);
      } catch {
        // already gone: the assertions below say so
      }
    };
    signal('SIGSTOP');
    try {
      await execa('ip', ['-n', ns, '-batch', '-'], { input: burst('add') });
      signal('SIGCONT');
      await waitFor('the overrun counted', async () => (await h.stats()).overruns > 0, 20_000, 50);
      // Still reconciling after it: a route deleted by hand comes back.
      await ip('route', 'del', '10.60.0.0/26', 'proto', '91');
      await waitFor(
        'blackhole restored',
        async () => (await find('10.60.0.0/26'))?.protocol === '91',
        10_000,
        20,
      );
    } finally {
      signal('SIGCONT');
      await execa('ip', ['-n', ns, '-batch', '-'], { input: burst('del'), reject: false });
    }
    expect((await h.stats()).failed).toBe(0);
    expect(await foreign()).toEqual(foreignBefore);
    await close(h);
  }, 120_000);
});
