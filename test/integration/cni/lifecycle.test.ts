// DEL in every state of decay (checklist F35–F40), Multus attachments, GC (I47–I48), stale host
// leftovers (D23), and 50 concurrent ADDs then DELs (D25).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostVethName } from '../../../model/routing.js';
import { CniLab, k8sArgs, podIp, type TernOutput } from './harness.js';

const lab = new CniLab({ pools: ['main=10.40.0.0/24,26', 'conc=10.41.0.0/26,26'] });
beforeAll(() => lab.start(), 180_000);
afterAll(() => lab.cleanup());

let seq = 0;
interface Pod {
  id: string;
  name: string;
  ns: { name: string; path: string };
  veth: string;
  add: TernOutput;
  ip: string;
}

async function addPod(conf: Record<string, unknown> = {}, ifname = 'eth0', existing?: Pod): Promise<Pod> {
  const n = ++seq;
  const id = existing?.id ?? `c${n}`;
  const name = existing?.name ?? `p${n}`;
  const ns = existing?.ns ?? (await lab.pod(`p${n}`));
  const add = await lab.tern({
    command: 'ADD',
    containerId: id,
    netns: ns.path,
    ifname,
    args: k8sArgs('life', name),
    conf,
  });
  if (add.code) throw new Error(`ADD failed: ${add.stdout}`);
  return { id, name, ns, veth: hostVethName('life', name, ifname), add, ip: podIp(add) };
}

const del = (
  p: Pick<Pod, 'id' | 'name'>,
  opts: { netns?: string; prevResult?: unknown; ifname?: string; conf?: object } = {},
) =>
  lab.tern({
    command: 'DEL',
    containerId: p.id,
    netns: opts.netns ?? '',
    ifname: opts.ifname ?? 'eth0',
    args: k8sArgs('life', p.name),
    conf: { ...opts.conf, ...(opts.prevResult ? { prevResult: opts.prevResult } : {}) },
  });

/** Nothing of the pod is left on the node, and its address is free (another container can take it). */
async function expectGone(p: Pod): Promise<void> {
  const r = await lab.residue();
  expect(r.veths).not.toContain(p.veth);
  expect(r.routes.join('\n')).not.toContain(`${p.ip} `);
  const probe = { id: `probe${++seq}`, name: `probe${seq}` };
  const ns = await lab.pod(`probe${seq}`);
  const add = await lab.tern({
    command: 'ADD',
    containerId: probe.id,
    netns: ns.path,
    args: k8sArgs('life', probe.name),
    conf: { runtimeConfig: { ips: [p.ip] } },
  });
  expect(add.code, `address ${p.ip} should be free: ${add.stdout}`).toBe(0);
  expect((await del(probe)).code).toBe(0);
}

describe('DEL matrix: exit 0 and no residue', () => {
  const cases: [string, (p: Pod) => Promise<{ netns: string; prevResult?: unknown }>][] = [
    ['CNI_NETNS="" with prevResult', async (p) => ({ netns: '', prevResult: p.add.json })],
    ['CNI_NETNS="" without prevResult (containerd second DEL, ctr)', async () => ({ netns: '' })],
    [
      'CNI_NETNS path that no longer exists',
      async (p) => {
        await lab.netns.exec(p.ns.name, 'true', []);
        await lab.ip(['link', 'del', 'eth0'], p.ns.name);
        await import('execa').then(({ execa }) => execa('ip', ['netns', 'del', p.ns.name]));
        return { netns: p.ns.path };
      },
    ],
    [
      'netns exists, container interface gone',
      async (p) => {
        await lab.ip(['link', 'del', 'eth0'], p.ns.name);
        return { netns: p.ns.path, prevResult: p.add.json };
      },
    ],
    [
      'host veth gone',
      async (p) => {
        await lab.ip(['link', 'del', p.veth]);
        return { netns: p.ns.path };
      },
    ],
    [
      'host route gone',
      async (p) => {
        await lab.ip(['route', 'del', `${p.ip}/32`]);
        return { netns: p.ns.path, prevResult: p.add.json };
      },
    ],
  ];

  it.each(cases)('%s', async (_what, mutate) => {
    const p = await addPod();
    const r = await del(p, await mutate(p));
    expect([r.code, r.stdout]).toEqual([0, '']);
    await expectGone(p);
  });

  it('repeated DEL (IPAM reservation already released) succeeds', async () => {
    const p = await addPod();
    expect((await del(p, { netns: p.ns.path })).code).toBe(0);
    expect((await del(p, { netns: p.ns.path, prevResult: p.add.json })).code).toBe(0);
    await expectGone(p);
  });

  it('DEL with no prior ADD succeeds', async () => {
    expect((await del({ id: 'never', name: 'never' })).code).toBe(0);
  });

  it('DEL after a failed ADD succeeds and leaves nothing', async () => {
    const ns = await lab.pod('failed');
    await lab.ip(['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'x0'], ns.name);
    const before = await lab.residue();
    const add = await lab.tern({
      command: 'ADD',
      containerId: 'cf',
      netns: ns.path,
      args: k8sArgs('life', 'failed'),
    });
    expect(add.code).not.toBe(0);
    expect((await del({ id: 'cf', name: 'failed' }, { netns: ns.path })).code).toBe(0);
    expect(await lab.residue()).toEqual(before);
  });

  it('DEL of an old sandbox ID leaves the new sandbox of the same pod alone', async () => {
    const old = await addPod();
    const fresh = await addPod({}, 'eth0', { ...old, id: `${old.id}-new`, ns: await lab.pod(`new${seq}`) });
    expect((await del(old)).code).toBe(0);
    expect((await lab.residue()).veths).toContain(fresh.veth);
    expect((await lab.inNode('ping', ['-c1', '-W2', fresh.ip], false)).exitCode).toBe(0);
    expect((await del(fresh)).code).toBe(0);
  });
});

describe('attachments', () => {
  it('ADD replaces a stale host veth of the same attachment left by a crash', async () => {
    const ns = await lab.pod('stale');
    const veth = hostVethName('life', 'stale', 'eth0');
    await lab.ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'stalepeer']);
    const add = await lab.tern({
      command: 'ADD',
      containerId: 'cs',
      netns: ns.path,
      args: k8sArgs('life', 'stale'),
    });
    expect(add.code).toBe(0);
    expect((await lab.inNode('ping', ['-c1', '-W2', podIp(add)], false)).exitCode).toBe(0);
    expect((await del({ id: 'cs', name: 'stale' })).code).toBe(0);
  });

  it('ADD replaces an existing non-pod host route to its address (e.g. a BGP route of a moved stable address)', async () => {
    const ns = await lab.pod('moved');
    await lab.ip(['route', 'add', '10.40.0.200/32', 'via', '10.254.0.2', 'proto', '92']);
    const add = await lab.tern({
      command: 'ADD',
      containerId: 'cmoved',
      netns: ns.path,
      args: k8sArgs('life', 'moved'),
      conf: { runtimeConfig: { ips: ['10.40.0.200'] } },
    });
    expect(add.code, add.stdout).toBe(0);
    const route = (await lab.ip(['route', 'show', '10.40.0.200/32'])).stdout;
    expect(route).toContain(`dev ${hostVethName('life', 'moved', 'eth0')} proto 90`);
    expect((await del({ id: 'cmoved', name: 'moved' })).code).toBe(0);
  });

  it('ADD fails (code 103) and leaves nothing when another pod route (proto 90) owns its address', async () => {
    const ns = await lab.pod('clash');
    await lab.ip(['route', 'add', '10.40.0.201/32', 'dev', 'up0', 'proto', '90']);
    try {
      const before = await lab.residue();
      const add = await lab.tern({
        command: 'ADD',
        containerId: 'cclash',
        netns: ns.path,
        args: k8sArgs('life', 'clash'),
        conf: { runtimeConfig: { ips: ['10.40.0.201'] } },
      });
      expect(add.json).toMatchObject({ code: 103 });
      expect(String(add.json?.msg)).toContain('already routed');
      expect(await lab.residue()).toEqual(before);
    } finally {
      await lab.ip(['route', 'del', '10.40.0.201/32']);
    }
  });

  it('Multus: eth0 and net1 of two tern networks in one pod, each reachable; DEL of net1 keeps eth0', async () => {
    const eth0 = await addPod();
    const net1 = await addPod({ name: 'tern-b' }, 'net1', eth0);
    expect(net1.ip).not.toBe(eth0.ip);
    expect(net1.veth).not.toBe(eth0.veth);
    for (const ip of [eth0.ip, net1.ip])
      expect((await lab.inNode('ping', ['-c1', '-W2', ip], false)).exitCode).toBe(0);
    // The secondary attachment does not take over the pod's default route.
    expect((await lab.ip(['-4', 'route', 'show', 'default'], eth0.ns.name)).stdout.trim()).toBe(
      'default via 169.254.1.1 dev eth0',
    );
    expect(net1.add.json?.routes).toEqual([]);
    expect((await del(net1, { ifname: 'net1', conf: { name: 'tern-b' } })).code).toBe(0);
    expect((await lab.ip(['link', 'show'], eth0.ns.name)).stdout).not.toContain('net1');
    expect((await lab.inNode('ping', ['-c1', '-W2', eth0.ip], false)).exitCode).toBe(0);
    expect((await del(eth0)).code).toBe(0);
  });

  it('GC removes every attachment of this network not in cni.dev/valid-attachments, and keeps the rest', async () => {
    const keep = await addPod();
    const drop1 = await addPod();
    const drop2 = await addPod();
    const other = await addPod({ name: 'tern-other' });
    const gc = await lab.tern({
      command: 'GC',
      ifname: '',
      conf: { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: keep.id, ifname: 'eth0' }] },
    });
    expect([gc.code, gc.stdout]).toEqual([0, '']);
    await expectGone(drop1);
    await expectGone(drop2);
    const left = (await lab.residue()).veths;
    expect(left).toContain(keep.veth);
    expect(left).toContain(other.veth);
    expect((await lab.inNode('ping', ['-c1', '-W2', keep.ip], false)).exitCode).toBe(0);
    for (const p of [keep, other])
      expect((await del(p, { conf: p === other ? { name: 'tern-other' } : {} })).code).toBe(0);
  });
});

describe('concurrency', () => {
  it('50 concurrent ADDs get 50 distinct addresses; 50 concurrent DELs leave no veth, route or allocation', async () => {
    const conf = { ipam: { ipv4Pools: ['conc'] } };
    const nss = await Promise.all(Array.from({ length: 64 }, (_, i) => lab.pod(`k${i}`)));
    const before = await lab.residue();
    const adds = await Promise.all(
      nss.slice(0, 50).map((ns, i) =>
        lab.tern({
          command: 'ADD',
          containerId: `k${i}`,
          netns: ns.path,
          args: k8sArgs('conc', `k${i}`),
          conf,
        }),
      ),
    );
    expect(adds.filter((a) => a.code !== 0).map((a) => a.stdout)).toEqual([]);
    const ips = adds.map((a) => podIp(a));
    expect(new Set(ips).size).toBe(50);
    expect((await lab.residue()).veths.length).toBe(before.veths.length + 50);
    const dels = await Promise.all(
      nss.slice(0, 50).map((ns, i) =>
        lab.tern({
          command: 'DEL',
          containerId: `k${i}`,
          netns: ns.path,
          args: k8sArgs('conc', `k${i}`),
          conf,
        }),
      ),
    );
    expect(dels.map((d) => d.code)).toEqual(dels.map(() => 0));
    expect(await lab.residue()).toEqual(before);
    // No leaked allocation: the 64-address pool hands out all 64 again.
    const refill = await Promise.all(
      nss.map((ns, i) =>
        lab.tern({
          command: 'ADD',
          containerId: `r${i}`,
          netns: ns.path,
          args: k8sArgs('conc', `r${i}`),
          conf,
        }),
      ),
    );
    expect(refill.filter((a) => a.code !== 0).map((a) => a.stdout)).toEqual([]);
    expect(new Set(refill.map((a) => podIp(a))).size).toBe(64);
  }, 300_000);
});
