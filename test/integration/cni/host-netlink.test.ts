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
import { HostNetlink } from './cni/dataplane/host-netlink.js';
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

describe('HostNetlink under concurrent operations', () => {
  const netns = new NetnsSet();
  let ns: string;

  beforeAll(async () => {
    await buildCni();
    await writeFile(join(BUILD_DIR, 'host-netlink-concurrency.mjs'), script);
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
});
