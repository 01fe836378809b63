// The container side without exec: inNetns (the native netns switch) and the pod side configured
// over an rtnetlink socket created inside the pod's netns. Runs in this test process: the switch is
// per thread and always undone, and everything it touches is in namespaces of ours.
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { execa } from 'execa';
import { createRtNetlink } from 'netlink';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNetns } from '../../../native/netns.js';
import {
  ContainerSideError,
  configureContainerEnd,
  createPair,
  openNetlinkIn,
  type PeerSpec,
} from '../../../kernel/netlink/pod-netlink.js';
import { parseIp } from '../../../model/index.js';
import { NetnsSet } from '../../support/netns.js';

const here = () => readlinkSync('/proc/thread-self/ns/net');
const nsPath = (name: string) => `/var/run/netns/${name}`;
const ipJson = async <T>(ns: string, args: string[]): Promise<T> =>
  JSON.parse((await execa('ip', ['-n', ns, '-j', ...args])).stdout || '[]') as T;

describe('inNetns', () => {
  const netns = new NetnsSet();
  let target: string;
  let home: number;
  let fd: number;

  beforeAll(async () => {
    target = await netns.add('innetns');
    await execa('ip', ['-n', target, 'link', 'add', 'marker0', 'type', 'veth', 'peer', 'name', 'marker1']);
    home = openSync('/proc/thread-self/ns/net', 'r');
    fd = openSync(nsPath(target), 'r');
  });
  afterAll(async () => {
    closeSync(fd);
    closeSync(home);
    await netns.cleanup();
  });

  it('a socket created inside belongs to the target netns; the thread is back home afterwards', async () => {
    const before = here();
    const sock = inNetns(fd, home, () => createRtNetlink());
    expect(here()).toBe(before);
    try {
      const names = (await sock.getLinks()).map((l) => l.attrs.ifname).sort();
      expect(names).toEqual(['lo', 'marker0', 'marker1']);
    } finally {
      sock.socket.close();
    }
  });

  it('returns what fn returns, and comes back when fn throws', () => {
    const before = here();
    expect(inNetns(fd, home, () => here())).not.toBe(before);
    expect(() =>
      inNetns(fd, home, () => {
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(here()).toBe(before);
  });

  it('a descriptor that is not a netns is refused with its errno, and nothing runs', () => {
    const before = here();
    const notNetns = openSync('/proc/self/status', 'r');
    let ran = false;
    try {
      expect(() => inNetns(notNetns, home, () => (ran = true))).toThrow(
        expect.objectContaining({ code: 'EINVAL' }),
      );
    } finally {
      closeSync(notNetns);
    }
    expect(ran).toBe(false);
    expect(here()).toBe(before);
    expect(() => inNetns(-1, home, () => undefined)).toThrow(/not a file descriptor/);
  });
});

describe('createPair + configureContainerEnd', () => {
  const netns = new NetnsSet();
  let node: string;
  let nodeFd: number;

  beforeAll(async () => {
    node = await netns.add('node');
    nodeFd = openSync(nsPath(node), 'r');
  });
  afterAll(async () => {
    closeSync(nodeFd);
    await netns.cleanup();
  });

  const end = { ifname: 'eth0', mtu: 1400, mac: '02:aa:bb:cc:dd:01' };
  const config = (ips: string[]) => ({
    ifname: 'eth0',
    ips: ips.map((ip) => parseIp(ip)),
    defaultRoute: true,
    gatewayMac: 'ee:ee:ee:ee:ee:ee',
    ipv6Gateway: 'fe80::ecee:eeff:feee:eeee',
  });
  /** What LinuxDataplane.setUp does on the pod side: the pair, then the container end's config. */
  const setUpPodSide = async (sock: ReturnType<typeof openNetlinkIn>, ips: string[], p: PeerSpec) => {
    const pair = await createPair(sock, end, p);
    await configureContainerEnd(sock, pair.index, config(ips));
    return pair;
  };
  const peer = (name: string) => ({ name, mac: 'ee:ee:ee:ee:ee:ee', mtu: 1400, netnsFd: nodeFd });

  it('creates the pair with the host end in the other netns and configures the container end', async () => {
    const pod = await netns.add('pod1');
    const sock = openNetlinkIn(nsPath(pod));
    let hostIndex: number;
    try {
      ({ hostIndex } = await setUpPodSide(sock, ['10.66.0.5', 'fd00:66::5'], peer('ternpn1')));
    } finally {
      sock.socket.close();
    }
    const [eth0] = await ipJson<{ address: string; mtu: number; flags: string[] }[]>(pod, [
      'link',
      'show',
      'eth0',
    ]);
    expect(eth0).toMatchObject({ address: '02:aa:bb:cc:dd:01', mtu: 1400 });
    expect(eth0!.flags).toContain('UP');
    const [addrs] = await ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>(pod, [
      'addr',
      'show',
      'eth0',
    ]);
    expect(addrs!.addr_info).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ local: '10.66.0.5', prefixlen: 32 }),
        expect.objectContaining({ local: 'fd00:66::5', prefixlen: 128 }),
      ]),
    );
    const r4 = await ipJson<{ dst: string; gateway?: string; scope?: string }[]>(pod, ['-4', 'route']);
    expect(r4).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: 'default', gateway: '169.254.1.1' }),
        expect.objectContaining({ dst: '169.254.1.1', scope: 'link' }),
      ]),
    );
    const r6 = await ipJson<{ dst: string; gateway?: string }[]>(pod, ['-6', 'route']);
    expect(r6).toContainEqual(
      expect.objectContaining({ dst: 'default', gateway: 'fe80::ecee:eeff:feee:eeee' }),
    );
    const neigh = await ipJson<{ dst: string; lladdr: string; state: string[] }[]>(pod, [
      'neigh',
      'show',
      'dev',
      'eth0',
    ]);
    for (const gw of ['169.254.1.1', 'fe80::ecee:eeff:feee:eeee']) {
      expect(neigh).toContainEqual(
        expect.objectContaining({ dst: gw, lladdr: 'ee:ee:ee:ee:ee:ee', state: ['PERMANENT'] }),
      );
    }
    const [host] = await ipJson<{ ifindex: number; address: string; mtu: number; flags: string[] }[]>(node, [
      'link',
      'show',
      'ternpn1',
    ]);
    expect(host).toMatchObject({ ifindex: hostIndex!, address: 'ee:ee:ee:ee:ee:ee', mtu: 1400 });
    expect(host!.flags).not.toContain('UP');
  });

  it('a refused step is named with its errno, after the other steps ran', async () => {
    const pod = await netns.add('pod2');
    // A default route already there: the pod's own default route is refused.
    await execa('ip', ['-n', pod, 'link', 'add', 'x0', 'type', 'veth', 'peer', 'name', 'x1']);
    await execa('ip', ['-n', pod, 'link', 'set', 'x0', 'up']);
    await execa('ip', ['-n', pod, 'route', 'add', 'default', 'dev', 'x0']);
    const sock = openNetlinkIn(nsPath(pod));
    try {
      const err = await setUpPodSide(sock, ['10.66.0.6'], peer('ternpn2')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ContainerSideError);
      expect((err as ContainerSideError).errno).toBe('EEXIST');
      expect((err as Error).message).toMatch(/^adding the default route via 169\.254\.1\.1 dev eth0: EEXIST/);
    } finally {
      sock.socket.close();
    }
    const [addrs] = await ipJson<{ addr_info: { local: string }[] }[]>(pod, ['addr', 'show', 'eth0']);
    expect(addrs!.addr_info.map((a) => a.local)).toContain('10.66.0.6');
  });

  it('an interface of that name already in the pod fails the creation and names it', async () => {
    const pod = await netns.add('pod3');
    await execa('ip', ['-n', pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'y1']);
    const sock = openNetlinkIn(nsPath(pod));
    try {
      await expect(createPair(sock, end, peer('ternpn3'))).rejects.toThrow(
        /^creating the veth pair: an interface named eth0 already exists in the pod/,
      );
    } finally {
      sock.socket.close();
    }
    expect((await execa('ip', ['-n', node, 'link', 'show', 'ternpn3'], { reject: false })).exitCode).not.toBe(
      0,
    );
  });

  it('a netns path that does not exist is an error naming it', () => {
    expect(() => openNetlinkIn(`/var/run/netns/t${netns.suffix}-absent`)).toThrow(/ENOENT.*absent/);
  });
});
