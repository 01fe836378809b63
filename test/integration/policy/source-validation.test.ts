// Source validation on real namespaces: a pod in a denied namespace forges the source address of
// a pod the policy allows (on this node, on a second and on a third node) with raw frames, and the
// packets never reach the destination pod; with tern's raw jump removed the same packets do (so
// the hole is real and the sniffer sees what arrives), and the drift check puts the jump back.
// Unforged traffic of both families, neighbour discovery and DAD pass; a stable address validates
// once its route points at the pod; a Multus-style secondary interface is covered alike.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hostVethName, type NetworkPolicy } from '../../../model/index.js';
import type { PolicyEngine, SpoofDrops } from '../../../policy/index.js';
import { arrivals, linkMac, type ForgedPacket } from '../../support/forged-packets.js';
import { NetnsSet } from '../../support/netns.js';
import { PolicyLab, Reachability, type LabPod } from '../../support/policy-lab.js';

let lab: PolicyLab;
let engine: PolicyEngine;
const extra = new NetnsSet();

// Pods of namespace x on two other nodes, reached over the uplink as BGP would route them.
const REMOTE = [
  {
    name: 'r2',
    node: 'node2',
    ip4: '10.43.1.5',
    ip6: 'fd00:43:1::5',
    via4: '10.42.254.2',
    via6: 'fd00:42:254::2',
  },
  {
    name: 'r3',
    node: 'node3',
    ip4: '10.44.1.5',
    ip6: 'fd00:44:1::5',
    via4: '10.42.254.3',
    via6: 'fd00:42:254::3',
  },
];
const NODE_IP4 = '10.42.255.1'; // policy-lab puts it on the node's lo
const NODE_IP6 = 'fd00:42:ff::1';

const onlyFromX: NetworkPolicy = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { namespace: 'z', name: 'only-from-x' },
  spec: {
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } } }],
      },
    ],
  },
};

const nodeIp = (args: string[]) => execa('ip', ['-n', lab.nodeNs, ...args]);
const raw = (family: 4 | 6, args: string[]) =>
  lab.nodeExec(family === 4 ? 'iptables' : 'ip6tables', ['-t', 'raw', ...args]);

async function forged(from: LabPod, to: LabPod, src: string, proto: 'udp' | 'tcp', family: 4 | 6) {
  const packet: ForgedPacket = {
    from: { netns: from.netns, ifname: 'eth0', gatewayMac: await linkMac(lab.nodeNs, from.veth) },
    to: { netns: to.netns, ifname: 'eth0' },
    src,
    dst: family === 4 ? to.ip4 : to.ip6,
    proto,
    dport: 80,
  };
  return arrivals(packet);
}

const dropped = async (reason: SpoofDrops['reason'], family: 4 | 6) =>
  (await engine.spoofDrops()).find((d) => d.reason === reason && d.family === family)?.packets ?? 0;

beforeAll(async () => {
  lab = await PolicyLab.create({ namespaces: ['x', 'y', 'z'], pods: ['a', 'b'] });
  const tor = await extra.add('sv-tor');
  await extra.link(lab.nodeNs, 'uplink0', '10.42.254.1/24', tor, 'eth0', '10.42.254.2/24');
  await nodeIp(['-6', 'addr', 'add', 'fd00:42:254::1/64', 'dev', 'uplink0', 'nodad']);
  await nodeIp(['-6', 'addr', 'add', `${NODE_IP6}/128`, 'dev', 'lo']);
  for (const r of REMOTE) {
    await nodeIp(['route', 'add', `${r.ip4}/32`, 'via', r.via4, 'dev', 'uplink0']);
    await nodeIp(['-6', 'route', 'add', `${r.ip6}/128`, 'via', r.via6, 'dev', 'uplink0']);
  }
  engine = lab.newEngine();
  for (const r of REMOTE) {
    engine.upsertPod({
      namespace: 'x',
      name: r.name,
      labels: { pod: r.name },
      ips: [r.ip4, r.ip6],
      node: r.node,
      ports: [],
      hostInterfaces: [],
    });
  }
  expect(engine.upsertPolicy(onlyFromX)).toEqual([]);
  await engine.sync();
  await engine.installSourceValidation();
}, 120_000);

afterAll(async () => {
  await engine?.uninstall();
  await lab?.cleanup();
  await extra.cleanup();
});

describe('source validation', () => {
  test('forged UDP and TCP SYNs from a denied namespace never arrive, whichever node the forged source is on; without the raw jump they do, and the drift check restores it', async () => {
    const y = lab.pod('y/a');
    const z = lab.pod('z/a');
    const x = lab.pod('x/a');
    const cases = ([4, 6] as const).flatMap((family) =>
      [
        { where: 'same node', src: family === 4 ? x.ip4 : x.ip6 },
        ...REMOTE.map((r) => ({ where: r.node, src: family === 4 ? r.ip4 : r.ip6 })),
      ].flatMap((c) => (['udp', 'tcp'] as const).map((proto) => ({ ...c, proto, family }))),
    );
    const run = () =>
      Promise.all(
        cases.map(
          async (c) =>
            [
              `IPv${c.family} ${c.proto} as ${c.where}`,
              await forged(y, z, c.src, c.proto, c.family),
            ] as const,
        ),
      );

    const before = { 4: await dropped('not-own', 4), 6: await dropped('not-own', 6) };
    expect((await run()).filter(([, n]) => n > 0)).toEqual([]);
    // Every forged frame (3 per case) was counted as a drop in its family.
    expect(await dropped('not-own', 4)).toBeGreaterThanOrEqual(before[4] + 18);
    expect(await dropped('not-own', 6)).toBeGreaterThanOrEqual(before[6] + 18);

    // Removed by hand (as a careless admin might), the hole is there: policy alone lets them in.
    for (const f of [4, 6] as const) await raw(f, ['-D', 'PREROUTING', '-j', 'tern-PREROUTING']);
    expect((await run()).filter(([, n]) => n === 0)).toEqual([]);

    expect(await engine.checkDrift()).toEqual([
      'IPv4 raw jump -A PREROUTING -j tern-PREROUTING missing',
      'IPv6 raw jump -A PREROUTING -j tern-PREROUTING missing',
    ]);
    expect(await engine.checkDrift()).toEqual([]);
    expect((await run()).filter(([, n]) => n > 0)).toEqual([]);
  }, 120_000);

  test("the node's address, 169.254.1.1 or another pod's address is dropped even towards a pod no policy selects, counted by reason", async () => {
    const y = lab.pod('y/a');
    const open = lab.pod('x/b'); // namespace x has no policy
    const other = lab.pod('y/b');
    const node = { 4: await dropped('node-address', 4), 6: await dropped('node-address', 6) };
    const notOwn = { 4: await dropped('not-own', 4), 6: await dropped('not-own', 6) };
    const got = await Promise.all([
      forged(y, open, NODE_IP4, 'udp', 4),
      forged(y, open, '169.254.1.1', 'udp', 4),
      forged(y, open, other.ip4, 'tcp', 4),
      forged(y, open, NODE_IP6, 'udp', 6),
      forged(y, open, other.ip6, 'tcp', 6),
    ]);
    expect(got).toEqual([0, 0, 0, 0, 0]);
    expect(await dropped('node-address', 4)).toBeGreaterThanOrEqual(node[4] + 3);
    expect(await dropped('node-address', 6)).toBeGreaterThanOrEqual(node[6] + 3);
    expect(await dropped('not-own', 4)).toBeGreaterThanOrEqual(notOwn[4] + 6);
    expect(await dropped('not-own', 6)).toBeGreaterThanOrEqual(notOwn[6] + 3);
    // The pod's own addresses, sent the same way, arrive: the check is on the source, not the tool.
    expect(await forged(y, open, y.ip4, 'udp', 4)).toBeGreaterThan(0);
    expect(await forged(y, open, y.ip6, 'tcp', 6)).toBeGreaterThan(0);
  }, 60_000);

  test('unforged traffic is unchanged: the reachability matrix of both families and protocols', async () => {
    const keys = lab.pods.map((p) => p.key);
    const reach = new Reachability(keys, true)
      .expect({}, { namespace: 'z' }, false)
      .expect({ namespace: 'x' }, { namespace: 'z' }, true);
    for (const [proto, family] of [
      ['TCP', 4],
      ['UDP', 4],
      ['TCP', 6],
      ['UDP', 6],
    ] as const) {
      const { wrong, grid } = reach.compare(await lab.matrix(80, proto, family));
      expect(wrong, `${proto} IPv${family}\n${grid}`).toEqual([]);
    }
  }, 120_000);

  test('neighbour discovery from a link-local source and DAD from the unspecified source pass validation', async () => {
    const pod = lab.pod('y/b');
    // Counting rules after tern's jump: they see only what source validation let through.
    const counters = [
      ['-s', '::/128', '-p', 'ipv6-icmp', '-m', 'icmp6', '--icmpv6-type', '135'],
      ['-s', 'fe80::/10', '-p', 'ipv6-icmp', '-m', 'icmp6', '--icmpv6-type', '135'],
    ];
    for (const c of counters) await raw(6, ['-A', 'PREROUTING', '-i', pod.veth, ...c, '-j', 'ACCEPT']);
    const count = async () => {
      const out = (await raw(6, ['-L', 'PREROUTING', '-v', '-x', '-n'])).stdout;
      return out
        .split('\n')
        .filter((l) => l.includes(pod.veth) && l.includes('ACCEPT'))
        .map((l) => Number(l.trim().split(/\s+/)[0]));
    };
    try {
      const podIp = (args: string[]) => execa('ip', ['-n', pod.netns, ...args]);
      await podIp(['-6', 'neigh', 'flush', 'dev', 'eth0']);
      // DAD: a new tentative address makes the pod send NS from ::.
      await execa('ip', ['netns', 'exec', pod.netns, 'sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=1']);
      await podIp(['-6', 'addr', 'add', 'fd00:42:77::1/128', 'dev', 'eth0']);
      const hostAddrs = JSON.parse((await nodeIp(['-j', '-6', 'addr', 'show', 'dev', pod.veth])).stdout) as {
        addr_info: { local: string; scope: string }[];
      }[];
      const gateway = hostAddrs[0]?.addr_info.find((a) => a.scope === 'link')?.local;
      const deadline = Date.now() + 10_000;
      let seen = await count();

      while ((seen[0] === 0 || seen[1] === 0) && Date.now() < deadline) {
        // Pinging the gateway's link-local resolves it with an NS from the pod's link-local.
        await podIp(['-6', 'neigh', 'flush', 'dev', 'eth0']);
        await execa(
          'ip',
          ['netns', 'exec', pod.netns, 'ping', '-6', '-c', '1', '-W', '1', `${gateway}%eth0`],
          {
            reject: false,
          },
        );
        seen = await count();
      }
      expect(seen[0], 'DAD NS from ::').toBeGreaterThan(0);
      const addrs = JSON.parse((await podIp(['-j', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout) as {
        addr_info: { local: string; scope: string }[];
      }[];
      const ll = addrs[0]?.addr_info.find((a) => a.scope === 'link')?.local;
      expect(ll, 'the pod has a link-local address').toBeDefined();
      expect(seen[1], `NS from ${ll}`).toBeGreaterThan(0);
      // And the link-local exchange itself (echo and reply) goes through.
      const pinged = await execa(
        'ip',
        ['netns', 'exec', pod.netns, 'ping', '-6', '-c', '1', '-W', '2', `${gateway}%eth0`],
        { reject: false },
      );
      expect(pinged.exitCode, `ping ${gateway}%eth0`).toBe(0);
    } finally {
      for (const c of counters) await raw(6, ['-D', 'PREROUTING', '-i', pod.veth, ...c, '-j', 'ACCEPT']);
      await execa('ip', ['-n', pod.netns, '-6', 'addr', 'del', 'fd00:42:77::1/128', 'dev', 'eth0'], {
        reject: false,
      });
    }
  }, 60_000);

  test('an address validates exactly while its route points at the pod (a stable address moving here), on a secondary interface too', async () => {
    const pod = lab.pod('y/b');
    const open = lab.pod('x/b');
    // A Multus-style secondary attachment, named as tern's CNI names it.
    const veth = hostVethName(pod.namespace, pod.name, 'net1');
    await nodeIp(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'net1', 'netns', pod.netns]);
    await nodeIp(['link', 'set', veth, 'up']);
    await execa('ip', ['-n', pod.netns, 'link', 'set', 'net1', 'up']);
    const mac = await linkMac(lab.nodeNs, veth);
    const from = { netns: pod.netns, ifname: 'net1', gatewayMac: mac };
    const send = (src: string, family: 4 | 6) =>
      arrivals({
        from,
        to: { netns: open.netns, ifname: 'eth0' },
        src,
        dst: family === 4 ? open.ip4 : open.ip6,
        proto: 'udp',
        dport: 80,
      });
    const moved = { 4: '10.42.9.9', 6: 'fd00:42:9::9' };
    try {
      // Not (yet) this attachment's: dropped, whichever interface of the pod sends it.
      expect(await send(moved[4], 4)).toBe(0);
      expect(await send(moved[6], 6)).toBe(0);
      expect(await send(pod.ip4, 4)).toBe(0); // eth0's address is not net1's
      // The route arrives (CNI ADD of the moved address): valid from that moment.
      await nodeIp(['route', 'add', `${moved[4]}/32`, 'dev', veth]);
      await nodeIp(['-6', 'route', 'add', `${moved[6]}/128`, 'dev', veth]);
      expect(await send(moved[4], 4)).toBeGreaterThan(0);
      expect(await send(moved[6], 6)).toBeGreaterThan(0);
      // DEL: the veth and its routes go, and so does the address's validity.
      await nodeIp(['route', 'del', `${moved[4]}/32`, 'dev', veth]);
      await nodeIp(['-6', 'route', 'del', `${moved[6]}/128`, 'dev', veth]);
      expect(await send(moved[4], 4)).toBe(0);
      expect(await send(moved[6], 6)).toBe(0);
    } finally {
      await nodeIp(['link', 'del', veth]).catch(() => undefined);
    }
  }, 60_000);

  test('uninstall removes the raw chains and the jump, and nothing else of the raw table', async () => {
    await raw(4, ['-A', 'PREROUTING', '-p', 'udp', '--dport', '9', '-j', 'ACCEPT']);
    await engine.uninstall();
    for (const f of [4, 6] as const) {
      const saved = (await lab.nodeExec(f === 4 ? 'iptables-save' : 'ip6tables-save', ['-t', 'raw'])).stdout;
      expect(saved).not.toContain('tern-');
    }
    expect((await lab.nodeExec('iptables-save', ['-t', 'raw'])).stdout).toContain(
      '-A PREROUTING -p udp -m udp --dport 9 -j ACCEPT',
    );
    expect(await engine.spoofDrops()).toEqual([]);
  }, 60_000);
});
