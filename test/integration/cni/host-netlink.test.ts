// The host side of the CNI data path shares one rtnetlink socket between concurrent ADD / DEL /
// CHECK operations. A route dump spans many datagrams; another operation's request must not cut
// it short. Runs HostNetlink inside a namespace of ours with a table big enough for a long dump.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_DIR, buildCni } from './harness.js';
import { NetnsSet } from '../../support/netns.js';

const ROUTES = 600;
const CONCURRENT = 40;

const script = `
import { HostNetlink } from './kernel/netlink/host-netlink.js';
const [routes, concurrent] = process.argv.slice(2).map(Number);
const nl = new HostNetlink();
const index = await nl.ifindex('hv0');
const ops = [];
for (let i = 0; i < concurrent; i++) {
  const ip = { family: 4, value: BigInt(0x0a5a0000 + 0x100 + i) };
  ops.push(nl.routesTo({ family: 4, value: BigInt(0x0a590000 + i) }).then((r) => r.length));
  // A pod attachment: up + alias, a neighbour and a route, sent back to back.
  ops.push(nl.attachPod(index, 'tern-test ' + i, [{ ip, mac: '02:00:00:00:00:01' }]).then(() => 0));
  ops.push(nl.replacePodRoute(ip, index).then(() => 0));
  ops.push(nl.routesVia(index).then((r) => r.length));
}
const results = await Promise.allSettled(ops);
nl.close();
const failures = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
const viaCounts = results.filter((_, i) => i % 4 === 3 && results[i].status === 'fulfilled').map((r) => r.value);
console.log(JSON.stringify({ failures, found: results[0].value, minVia: Math.min(...viaCounts) }));
`;

const VETHS = 20;

// Deletes VETHS veths at once while the event loop keeps counting its turns, then the same names
// again (already gone), then asks the kernel to delete lo (refused).
const deleteScript = `
import { HostNetlink, delLinkMessage } from './kernel/netlink/host-netlink.js';
import { netlinkRequest } from './native/netlink.js';
const count = Number(process.argv[2]);
const nl = new HostNetlink();
const names = Array.from({ length: count }, (_, i) => 'dv' + i);
let turns = 0;
let counting = true;
const tick = () => { turns++; if (counting) setImmediate(tick); };
setImmediate(tick);
const first = await Promise.allSettled(names.map((n) => nl.deleteLink(n)));
counting = false;
const again = await Promise.allSettled(names.map((n) => nl.deleteLink(n)));
const lo = await netlinkRequest(delLinkMessage(1)).then(() => undefined, (e) => ({ code: e.code, message: e.message }));
nl.close();
const failures = [...first, ...again].filter((r) => r.status === 'rejected').map((r) => String(r.reason));
console.log(JSON.stringify({ failures, turns, lo }));
`;

describe('HostNetlink under concurrent operations', () => {
  const netns = new NetnsSet();
  let ns: string;

  beforeAll(async () => {
    await buildCni();
    await writeFile(join(BUILD_DIR, 'host-netlink-concurrency.mjs'), script);
    await writeFile(join(BUILD_DIR, 'host-netlink-delete.mjs'), deleteScript);
    ns = await netns.add('hnl');
    await netns.exec(ns, 'ip', ['link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'hv1']);
    await netns.exec(ns, 'ip', ['link', 'set', 'hv0', 'up']);
    const batch = Array.from(
      { length: ROUTES },
      (_, i) => `route add 10.89.${i >> 8}.${i & 0xff}/32 dev hv0 proto 90 scope link`,
    ).join('\n');
    await writeFile(join(BUILD_DIR, `routes-${netns.suffix}.batch`), `${batch}\n`);
    await netns.exec(ns, 'ip', ['-batch', join(BUILD_DIR, `routes-${netns.suffix}.batch`)]);
  }, 300_000);

  afterAll(() => netns.cleanup());

  it('dumps a long route table complete while link, route and other dump requests run beside it', async () => {
    const r = await netns.exec(ns, 'node', [
      join(BUILD_DIR, 'host-netlink-concurrency.mjs'),
      String(ROUTES),
      String(CONCURRENT),
    ]);
    const out = JSON.parse(r.stdout) as { failures: string[]; found: number; minVia: number };
    expect(out.failures).toEqual([]);
    expect(out.found).toBe(1);
    // Every dump saw at least the routes made before it started: none was cut short.
    expect(out.minVia).toBeGreaterThanOrEqual(ROUTES);
    const installed = await netns.exec(ns, 'ip', ['route', 'show', 'proto', '90']);
    expect(installed.stdout.trim().split('\n')).toHaveLength(ROUTES + CONCURRENT);
  }, 120_000);

  it('deletes links off the JS thread: the event loop keeps turning meanwhile; gone links and refusals are reported', async () => {
    for (let i = 0; i < VETHS; i++) {
      await netns.exec(ns, 'ip', ['link', 'add', `dv${i}`, 'type', 'veth', 'peer', 'name', `dp${i}`]);
    }
    const r = await netns.exec(ns, 'node', [join(BUILD_DIR, 'host-netlink-delete.mjs'), String(VETHS)]);
    const out = JSON.parse(r.stdout) as {
      failures: string[];
      turns: number;
      lo?: { code: string; message: string };
    };
    expect(out.failures).toEqual([]);
    const left = await netns.exec(ns, 'ip', ['-o', 'link', 'show']);
    expect(left.stdout).not.toMatch(/\bd[vp]\d+/);
    // The kernel spends milliseconds of RCU waits on each deletion, inside the request: had they
    // run on the JS thread, the loop could not have turned while they were in flight.
    expect(out.turns).toBeGreaterThan(VETHS);
    expect(out.lo?.code).toBe('EOPNOTSUPP');
    expect(out.lo?.message).toMatch(/^request: EOPNOTSUPP/);
  }, 120_000);
});
