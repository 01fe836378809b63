// The bad-input matrix: each failing ADD gives the right CNI code and leaves nothing behind — no
// veth, no route, no allocation (proved by the pool still giving out every one of its addresses).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniLab, k8sArgs, podIp } from './harness.js';

// A pool of exactly 16 addresses (one /28 block), so "nothing leaked" is checkable by filling it.
const POOL_SIZE = 16;
const lab = new CniLab({ pools: ['small=10.30.0.0/28,28'] });
let pod: { name: string; path: string };
let holder: { name: string; path: string };
let heldIp = '';

beforeAll(async () => {
  await lab.start();
  pod = await lab.pod('p');
  holder = await lab.pod('holder');
  const r = await lab.tern({
    command: 'ADD',
    containerId: 'holder',
    netns: holder.path,
    args: k8sArgs('db', 'h'),
  });
  if (r.code) throw new Error(r.stdout + lab.agentLog);
  heldIp = podIp(r);
}, 180_000);
afterAll(() => lab.cleanup());

const base = () => ({ command: 'ADD', containerId: 'bad', netns: pod.path, args: k8sArgs('db', 'x') });

describe('bad-input matrix through the real executable', () => {
  const cases: [string, number, () => Parameters<CniLab['tern']>[0], RegExp][] = [
    ['stdin is not JSON', 6, () => ({ ...base(), stdin: '{"cniVersion": "1.0.0", nope' }), /decod/],
    ['CNI_NETNS missing', 4, () => ({ ...base(), netns: '' }), /CNI_NETNS/],
    ['CNI_CONTAINERID missing', 4, () => ({ ...base(), containerId: '' }), /CNI_CONTAINERID/],
    ['CNI_IFNAME too long', 4, () => ({ ...base(), ifname: 'a-very-long-ifname' }), /CNI_IFNAME/],
    ['CNI_IFNAME with a slash', 4, () => ({ ...base(), ifname: 'e/0' }), /CNI_IFNAME/],
    [
      'unknown cniVersion',
      1,
      () => ({ ...base(), conf: { cniVersion: '0.2.0' } }),
      /incompatible CNI versions/,
    ],
    ['network name missing', 7, () => ({ ...base(), stdin: '{"cniVersion":"1.0.0","type":"tern"}' }), /name/],
    ['unknown CNI_COMMAND', 4, () => ({ ...base(), command: 'FROB' }), /FROB/],
    [
      'fixed IP taken (pod annotation)',
      102,
      () => ({
        ...base(),
        conf: {
          runtimeConfig: {
            'io.kubernetes.cri.pod-annotations': { 'tern.network/ip-addrs': JSON.stringify([heldIp]) },
          },
        },
      }),
      /./,
    ],
    [
      'fixed IP outside every pool',
      7,
      () => ({ ...base(), conf: { runtimeConfig: { ips: ['10.99.99.99'] } } }),
      /./,
    ],
    [
      'malformed fixed-IP annotation',
      7,
      () => ({
        ...base(),
        conf: { runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { 'tern.network/ip-addrs': 'nope' } } },
      }),
      /ip-addrs/,
    ],
    [
      'pod netns does not exist',
      8,
      () => ({ ...base(), netns: '/var/run/netns/tern-no-such-ns' }),
      /does not exist/,
    ],
    [
      'the plugin own netns',
      8,
      () => ({ ...base(), netns: `/var/run/netns/${lab.node}` }),
      /own network namespace/,
    ],
  ];

  it.each(cases)('%s → code %i, nothing left behind', async (_what, code, inv, msg) => {
    const before = await lab.residue();
    const r = await lab.tern(inv());
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ code });
    expect(String(r.json?.msg) + String(r.json?.details)).toMatch(msg);
    expect(await lab.residue()).toEqual(before);
  });

  it('an interface named CNI_IFNAME already in the pod is an error, and leaves nothing behind', async () => {
    const p = await lab.pod('busy');
    await lab.ip(['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer'], p.name);
    const before = await lab.residue();
    const r = await lab.tern({
      command: 'ADD',
      containerId: 'busy',
      netns: p.path,
      args: k8sArgs('db', 'busy'),
    });
    expect(r.json).toMatchObject({ code: 103 });
    expect(String(r.json?.msg)).toMatch(/an interface named eth0 already exists in the pod/);
    expect(await lab.residue()).toEqual(before);
  });

  it('after all failures the pool still gives out all its addresses, then is exhausted (code 101) leaving nothing', async () => {
    const pods = await Promise.all(Array.from({ length: POOL_SIZE - 1 }, (_, i) => lab.pod(`f${i}`)));
    const adds = await Promise.all(
      pods.map((p, i) =>
        lab.tern({ command: 'ADD', containerId: `fill${i}`, netns: p.path, args: k8sArgs('db', `f${i}`) }),
      ),
    );
    expect(adds.map((a) => a.code)).toEqual(pods.map(() => 0));
    const ips = new Set([heldIp, ...adds.map((a) => podIp(a))]);
    expect(ips.size).toBe(POOL_SIZE);
    const before = await lab.residue();
    const r = await lab.tern(base());
    expect(r.json).toMatchObject({ code: 101 });
    expect(await lab.residue()).toEqual(before);
    // STATUS now says ADD cannot be served.
    const status = await lab.tern({ command: 'STATUS', conf: { cniVersion: '1.1.0' }, ifname: '' });
    expect(status.json).toMatchObject({ code: 50 });
  });
});
