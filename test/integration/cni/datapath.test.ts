// ADD through the real executable and agent: the point-to-point data path as the design describes
// it (checklist D28, D29, M59), reachability, CHECK, and results in every version.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostVethName } from '../../../model/routing.js';
import { CniLab, UPLINK_MTU, k8sArgs, podIp, type TernOutput } from './harness.js';

const lab = new CniLab({ pools: ['v4=10.20.0.0/24,26', 'v6=fd00:20::/64,122'] });
let podA: { name: string; path: string };
let podB: { name: string; path: string };
let addA: TernOutput;
let addB: TernOutput;
let ipA = '';
let ipB = '';
let ip6A = '';
let ip6B = '';
const vethA = hostVethName('shop', 'a', 'eth0');

const dual = { ipam: { assignIpv4: true, assignIpv6: true } };

beforeAll(async () => {
  await lab.start();
  podA = await lab.pod('pa');
  podB = await lab.pod('pb');
  addA = await lab.tern({
    command: 'ADD',
    containerId: 'ca',
    netns: podA.path,
    args: k8sArgs('shop', 'a'),
    conf: dual,
  });
  addB = await lab.tern({
    command: 'ADD',
    containerId: 'cb',
    netns: podB.path,
    args: k8sArgs('shop', 'b'),
    conf: dual,
  });
  if (addA.code || addB.code) throw new Error(`ADD failed: ${addA.stdout} ${addB.stdout} ${lab.agentLog}`);
  ipA = podIp(addA);
  ipB = podIp(addB);
  ip6A = podIp(addA, 6);
  ip6B = podIp(addB, 6);
}, 180_000);
afterAll(() => lab.cleanup());

const inPod = (pod: { name: string }, cmd: string, args: string[]) =>
  lab.netns.exec(pod.name, cmd, args, { timeout: 20_000 });
const ping = (pod: { name: string } | 'node', to: string) =>
  (pod === 'node'
    ? lab.inNode('ping', ['-c1', '-W2', to], false)
    : lab.netns.exec(pod.name, 'ping', ['-c1', '-W2', to], { reject: false })
  ).then((r) => r.exitCode);

describe('pod data path after ADD', () => {
  it('node → pod, pod → node, pod → pod (same node) ping over IPv4', async () => {
    expect(await ping('node', ipA)).toBe(0);
    expect(await ping(podA, '10.254.0.1')).toBe(0);
    expect(await ping(podA, ipB)).toBe(0);
    expect(await ping(podB, ipA)).toBe(0);
  });

  it('node → pod and pod → pod ping over IPv6', async () => {
    expect(await ping('node', ip6A)).toBe(0);
    expect(await ping(podA, ip6B)).toBe(0);
  });

  it('the container interface has the pod address as /32 and /128 (nodad, not tentative)', async () => {
    const addrs = JSON.parse((await inPod(podA, 'ip', ['-j', 'addr', 'show', 'dev', 'eth0'])).stdout)[0]
      .addr_info as {
      local: string;
      prefixlen: number;
      tentative?: boolean;
      scope: string;
    }[];
    expect(addrs.find((a) => a.local === ipA)?.prefixlen).toBe(32);
    const v6 = addrs.find((a) => a.local === ip6A);
    expect(v6?.prefixlen).toBe(128);
    expect(v6?.tentative).toBeUndefined();
  });

  it.each([
    ['169.254.1.1 dev eth0 scope link', ['-4', 'route'], /^169\.254\.1\.1 dev eth0 scope link/m],
    ['default via 169.254.1.1', ['-4', 'route'], /^default via 169\.254\.1\.1 dev eth0/m],
    [
      'IPv6 default via the host end link-local',
      ['-6', 'route'],
      /^default via fe80::ecee:eeff:feee:eeee dev eth0/m,
    ],
    [
      'permanent neighbour 169.254.1.1 → ee:ee:ee:ee:ee:ee',
      ['neigh'],
      /^169\.254\.1\.1 dev eth0 lladdr ee:ee:ee:ee:ee:ee PERMANENT/m,
    ],
  ])('pod side: %s', async (_what, args, re) => {
    expect((await inPod(podA, 'ip', args)).stdout).toMatch(re);
  });

  it.each([
    ['net.ipv4.conf.V.proxy_arp', '1'],
    ['net.ipv4.conf.V.forwarding', '1'],
    ['net.ipv4.conf.V.route_localnet', '1'],
    ['net.ipv4.neigh.V.proxy_delay', '0'],
    ['net.ipv6.conf.V.proxy_ndp', '1'],
    ['net.ipv6.conf.V.accept_ra', '0'],
    ['net.ipv6.conf.V.accept_dad', '0'],
  ])('host side sysctl %s = %s', async (key, value) => {
    const name = key.replace('.V.', `.${vethA}.`);
    expect((await lab.inNode('sysctl', ['-n', name])).stdout.trim()).toBe(value);
  });

  it('host veth: deterministic name, MAC ee:ee:ee:ee:ee:ee, up, no IPv4 address, owner alias, link-local gateway', async () => {
    const link = JSON.parse((await lab.ip(['-j', 'addr', 'show', 'dev', vethA])).stdout)[0];
    expect(link.address).toBe('ee:ee:ee:ee:ee:ee');
    expect(link.flags).toContain('UP');
    expect(link.addr_info.filter((a: { family: string }) => a.family === 'inet')).toEqual([]);
    expect(link.addr_info.map((a: { local: string }) => a.local)).toContain('fe80::ecee:eeff:feee:eeee');
    expect((await lab.ip(['-d', 'link', 'show', 'dev', vethA])).stdout).toContain('alias tern:tern:ca:eth0');
  });

  it('host routes to the pod: /32 and /128 via the veth with protocol 90, scope link', async () => {
    expect((await lab.ip(['-4', 'route', 'show', 'proto', '90'])).stdout).toContain(
      `${ipA} dev ${vethA} scope link`,
    );
    expect((await lab.ip(['-6', 'route', 'show', 'proto', '90'])).stdout).toContain(`${ip6A} dev ${vethA}`);
  });

  it('host side: permanent neighbour entries pod address → container MAC, so nothing waits on ARP/ND', async () => {
    const mac = JSON.parse((await inPod(podA, 'ip', ['-j', 'link', 'show', 'dev', 'eth0'])).stdout)[0]
      .address as string;
    const neigh = (await lab.ip(['neigh', 'show', 'dev', vethA])).stdout;
    expect(neigh).toMatch(new RegExp(`^${ipA.replace(/\./g, '\\.')} lladdr ${mac} PERMANENT`, 'm'));
    expect(neigh).toMatch(new RegExp(`^${ip6A} lladdr ${mac} PERMANENT`, 'm'));
  });

  it('MTU of both ends comes from the uplink of the default route', async () => {
    expect((await lab.ip(['link', 'show', 'dev', vethA])).stdout).toContain(`mtu ${UPLINK_MTU}`);
    expect((await inPod(podA, 'ip', ['link', 'show', 'dev', 'eth0'])).stdout).toContain(`mtu ${UPLINK_MTU}`);
  });

  it('the result describes the attachment: host veth without sandbox, eth0 in CNI_NETNS, ips index eth0', () => {
    const r = addA.json as {
      interfaces: { name: string; sandbox?: string; mac: string }[];
      ips: { interface: number }[];
    };
    expect(r.interfaces[0]).toEqual({ name: vethA, mac: 'ee:ee:ee:ee:ee:ee' });
    expect(r.interfaces[1]?.sandbox).toBe(podA.path);
    expect(r.ips.every((ip) => ip.interface === 1)).toBe(true);
  });

  it('CHECK passes right after ADD and fails (code 104) when the pod lost its default route', async () => {
    const check = (pod: typeof podA, id: string, name: string, prevResult: unknown) =>
      lab.tern({
        command: 'CHECK',
        containerId: id,
        netns: pod.path,
        args: k8sArgs('shop', name),
        conf: { ...dual, prevResult },
      });
    const ok = await check(podA, 'ca', 'a', addA.json);
    expect([ok.code, ok.stdout]).toEqual([0, '']);
    await inPod(podB, 'ip', ['route', 'del', 'default']);
    const bad = await check(podB, 'cb', 'b', addB.json);
    expect(bad.json).toMatchObject({ code: 104 });
    expect(String(bad.json?.details)).toContain('default route');
  });

  it('CHECK verifies the permanent neighbour entries: host side pod address → container MAC, pod side gateways', async () => {
    const pod = await lab.pod('pn');
    const args = k8sArgs('shop', 'n');
    const add = await lab.tern({ command: 'ADD', containerId: 'cn', netns: pod.path, args, conf: dual });
    expect(add.code, add.stdout).toBe(0);
    const check = () =>
      lab.tern({
        command: 'CHECK',
        containerId: 'cn',
        netns: pod.path,
        args,
        conf: { ...dual, prevResult: add.json },
      });
    const problems = async () => {
      const r = await check();
      expect(r.json, 'CHECK passed').toMatchObject({ code: 104 });
      return String(r.json?.details);
    };
    const veth = hostVethName('shop', 'n', 'eth0');
    const [ip4, ip6] = [podIp(add), podIp(add, 6)];
    const mac = (add.json?.interfaces as { mac: string }[])[1]!.mac;
    expect((await check()).code).toBe(0);

    await lab.ip(['neigh', 'del', ip4, 'dev', veth]);
    const hostGone = await problems();
    expect(hostGone).toContain(`permanent neighbour ${ip4} → ${mac} on ${veth} is missing`);
    expect(hostGone).not.toContain(ip6);
    await lab.ip(['neigh', 'replace', ip4, 'lladdr', mac, 'dev', veth, 'nud', 'permanent']);
    expect((await check()).code).toBe(0);

    await lab.ip(['neigh', 'replace', ip6, 'lladdr', '02:00:00:00:00:01', 'dev', veth, 'nud', 'permanent']);
    expect(await problems()).toContain(
      `permanent neighbour ${ip6} → ${mac} on ${veth} is missing (found 02:00:00:00:00:01, permanent)`,
    );
    await lab.ip(['neigh', 'replace', ip6, 'lladdr', mac, 'dev', veth, 'nud', 'reachable']);
    expect(await problems()).toContain(`(found ${mac}, not permanent)`);
    await lab.ip(['neigh', 'replace', ip6, 'lladdr', mac, 'dev', veth, 'nud', 'permanent']);
    expect((await check()).code).toBe(0);

    await inPod(pod, 'ip', ['neigh', 'del', '169.254.1.1', 'dev', 'eth0']);
    const podGone = await problems();
    expect(podGone).toContain('permanent neighbour 169.254.1.1 → ee:ee:ee:ee:ee:ee on eth0 is missing');
    expect(podGone).not.toContain(veth);
  });

  it('the config mtu overrides the uplink MTU on both ends', async () => {
    const pod = await lab.pod('pmtu');
    const r = await lab.tern({
      command: 'ADD',
      containerId: 'cm',
      netns: pod.path,
      args: k8sArgs('shop', 'm'),
      conf: { mtu: 1280 },
    });
    expect(r.code).toBe(0);
    expect((await lab.ip(['link', 'show', 'dev', hostVethName('shop', 'm', 'eth0')])).stdout).toContain(
      'mtu 1280',
    );
    expect((await inPod(pod, 'ip', ['link', 'show', 'dev', 'eth0'])).stdout).toContain('mtu 1280');
  });

  it.each(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'])('ADD with a %s config answers in %s', async (v) => {
    const pod = await lab.pod(`v${v.replaceAll('.', '')}`);
    const r = await lab.tern({
      command: 'ADD',
      containerId: `cv${v.replaceAll('.', '')}`,
      netns: pod.path,
      args: k8sArgs('ver', v),
      conf: { cniVersion: v },
    });
    expect(r.json?.cniVersion).toBe(v);
    const ip = (r.json?.ips as Record<string, unknown>[])[0]!;
    expect('version' in ip).toBe(v.startsWith('0.'));
    expect('mtu' in (r.json?.interfaces as Record<string, unknown>[])[1]!).toBe(v === '1.1.0');
  });

  it('STATUS with a pool that has room: exit 0, no output', async () => {
    expect(await lab.tern({ command: 'STATUS', conf: { cniVersion: '1.1.0' }, ifname: '' })).toMatchObject({
      code: 0,
      stdout: '',
    });
  });
});
