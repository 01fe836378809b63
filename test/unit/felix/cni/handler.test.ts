import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataplaneError } from '../../../../felix/cni/dataplane/veth.js';
import { CniHandler } from '../../../../felix/cni/handler.js';
import type { AgentHooks, PodEndpoint } from '../../../../felix/cni/ports.js';
import { NON_K8S_NAMESPACE } from '../../../../cni/request.js';
import { UnavailableError, formatIp } from '../../../../model/index.js';
import { hostVethName } from '../../../../model/routing.js';
import { FakeDataplane, FakeIpam } from './fakes.js';

// A plain file stands in for the pod netns (the handler only stats it). Created in beforeAll, so a
// run that filters every test out (hooks skipped) leaves nothing behind.
let dir = '';
let netns = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tern-cni-unit-'));
  netns = join(dir, 'netns');
  writeFileSync(netns, '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup(free = ['10.0.0.1', '10.0.0.2', '10.0.0.3'], hooks: AgentHooks = {}) {
  const ipam = new FakeIpam(free);
  const dataplane = new FakeDataplane();
  const handler = new CniHandler({ ipam, dataplane, hooks });
  return { ipam, dataplane, handler };
}

interface Call {
  command?: string;
  id?: string;
  ifname?: string;
  ns?: string;
  args?: string;
  conf?: Record<string, unknown>;
}
function call(handler: CniHandler, c: Call = {}) {
  return handler.handle({
    env: {
      CNI_COMMAND: c.command ?? 'ADD',
      CNI_CONTAINERID: c.id ?? 'c1',
      CNI_NETNS: c.ns ?? netns,
      CNI_IFNAME: c.ifname ?? 'eth0',
      CNI_PATH: '/usr/lib/cni',
      CNI_ARGS: c.args ?? 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0',
    },
    stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'tern', type: 'tern', ...c.conf }),
  });
}
const errorOf = (r: { stdout: string }) =>
  JSON.parse(r.stdout) as { code: number; msg: string; details?: string; cniVersion: string };

describe('CniHandler ADD', () => {
  it('answers a 1.0.0 result: host veth and container interface, /32 on the container interface', async () => {
    const { handler, dataplane } = setup();
    const r = await call(handler);
    expect(r.exitCode).toBe(0);
    const res = JSON.parse(r.stdout);
    const veth = hostVethName('shop', 'web-0', 'eth0');
    expect(res.cniVersion).toBe('1.0.0');
    expect(res.interfaces[0]).toEqual({ name: veth, mac: 'ee:ee:ee:ee:ee:ee' });
    expect(res.interfaces[1]).toMatchObject({ name: 'eth0', sandbox: netns });
    expect(res.ips).toEqual([{ address: '10.0.0.1/32', gateway: '169.254.1.1', interface: 1 }]);
    expect(res.routes).toEqual([{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
    expect(dataplane.veths.get(veth)?.spec.mtu).toBe(1450);
  });

  it('the config mtu overrides the detected one', async () => {
    const { handler, dataplane } = setup();
    await call(handler, { conf: { mtu: 1300 } });
    expect([...dataplane.veths.values()][0]?.spec.mtu).toBe(1300);
  });

  it('passes a chained prevResult through and re-indexes its own ips', async () => {
    const { handler } = setup();
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'x0' }], ips: [], routes: [] };
    const res = JSON.parse((await call(handler, { conf: { prevResult } })).stdout);
    expect(res.interfaces.map((i: { name: string }) => i.name)[0]).toBe('x0');
    expect(res.ips[0].interface).toBe(2);
  });

  it('uses runtimeConfig pod annotations for a fixed address', async () => {
    const { handler } = setup();
    const conf = {
      runtimeConfig: { 'io.kubernetes.cri.pod-annotations': { 'tern.network/ip-addrs': '["10.0.0.3"]' } },
    };
    const res = JSON.parse((await call(handler, { conf })).stdout);
    expect(res.ips[0].address).toBe('10.0.0.3/32');
  });

  it('asks the agent for pod annotations and namespace annotations when the runtime passed none', async () => {
    const seen: string[] = [];
    const { handler } = setup(undefined, {
      lookupPod: async (ns, name) => {
        seen.push(`${ns}/${name}`);
        return { labels: { app: 'web' }, annotations: { 'tern.network/ip-addrs': '["10.0.0.2"]' } };
      },
      lookupNamespace: async (ns) => (seen.push(ns), { annotations: {} }),
    });
    const res = JSON.parse((await call(handler)).stdout);
    expect(res.ips[0].address).toBe('10.0.0.2/32');
    expect(seen.sort()).toEqual(['shop', 'shop/web-0']);
  });

  it('passes the looked-up pod labels to IPAM (StatefulSet ordinals bind stable addresses)', async () => {
    const { handler, ipam } = setup(undefined, {
      lookupPod: async () => ({ labels: { 'apps.kubernetes.io/pod-index': '2' }, annotations: {} }),
    });
    const seen: unknown[] = [];
    const assign = ipam.assign.bind(ipam);
    ipam.assign = (req) => (seen.push(req.podLabels), assign(req));
    expect((await call(handler)).exitCode).toBe(0);
    expect(seen).toEqual([{ 'apps.kubernetes.io/pod-index': '2' }]);
  });

  it('a failing pod lookup is code 11 (try again later) and allocates nothing', async () => {
    const { handler, ipam } = setup(undefined, {
      lookupPod: () => Promise.reject(new Error('apiserver down')),
    });
    const r = await call(handler);
    expect(errorOf(r).code).toBe(11);
    expect(ipam.held.size).toBe(0);
  });

  it('without K8S args the veth is named after the container ID', async () => {
    const { handler, dataplane } = setup();
    await call(handler, { args: '', id: 'ctr-42' });
    expect([...dataplane.veths.keys()]).toEqual([hostVethName(NON_K8S_NAMESPACE, 'ctr-42', 'eth0')]);
  });

  it('calls onAttached then awaits beforeReturnAdd before answering', async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { handler } = setup(undefined, {
      onAttached: (ep: PodEndpoint) => void order.push(`attached ${ep.ips.map(formatIp).join()}`),
      beforeReturnAdd: async () => {
        order.push('waiting');
        await gate;
        order.push('ready');
      },
    });
    const pending = call(handler);
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual(['attached 10.0.0.1', 'waiting']);
    release();
    expect((await pending).exitCode).toBe(0);
    expect(order).toEqual(['attached 10.0.0.1', 'waiting', 'ready']);
  });

  it('a failing beforeReturnAdd fails the ADD and rolls back veth and IPAM, with onDetached', async () => {
    const detached: string[] = [];
    const { handler, ipam, dataplane } = setup(undefined, {
      beforeReturnAdd: () => Promise.reject(new Error('policy not programmed')),
      onDetached: (d) => void detached.push(d.hostVeth),
    });
    const r = await call(handler);
    expect(r.exitCode).toBe(1);
    expect(errorOf(r).msg).toContain('policy not programmed');
    expect(ipam.held.size).toBe(0);
    expect(dataplane.veths.size).toBe(0);
    expect(detached).toHaveLength(1);
  });

  it.each([
    ['dataplane failure', 'dataplane', 100],
    ['exhausted pool', 'exhausted', 101],
    ['taken fixed address', 'taken', 102],
  ])('%s → code %i and nothing left allocated', async (_what, kind, code) => {
    const { handler, ipam, dataplane } = setup(kind === 'exhausted' ? [] : undefined);
    if (kind === 'dataplane') dataplane.failSetUp = new Error('boom');
    if (kind === 'taken') await call(handler, { id: 'other', args: 'K8S_POD_NAMESPACE=a;K8S_POD_NAME=b' });
    const before = ipam.held.size;
    const conf = kind === 'taken' ? { runtimeConfig: { ips: ['10.0.0.1'] } } : {};
    const r = await call(handler, { conf });
    expect(errorOf(r).code).toBe(code);
    expect(errorOf(r).cniVersion).toBe('1.0.0');
    expect(ipam.held.size).toBe(before);
    expect(dataplane.veths.size).toBe(before);
  });

  it('the agent netns itself is refused with code 8 unless CNI_NETNS_OVERRIDE', async () => {
    const { handler } = setup();
    expect(errorOf(await call(handler, { ns: '/proc/self/ns/net' })).code).toBe(8);
  });

  it('CNI_NETNS_OVERRIDE=1 allows the agent netns', async () => {
    const { handler } = setup();
    const r = await handler.handle({
      env: {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'c1',
        CNI_NETNS: '/proc/self/ns/net',
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/x',
        CNI_NETNS_OVERRIDE: '1',
      },
      stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'tern', type: 'tern' }),
    });
    expect(r.exitCode).toBe(0);
  });

  it('a netns path that does not exist is code 8', async () => {
    const { handler } = setup();
    expect(errorOf(await call(handler, { ns: join(dir, 'gone') })).code).toBe(8);
  });

  describe('IPAM and the pair creation overlap', () => {
    const held = () => {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      return { gate, open };
    };
    const until = async (cond: () => boolean) => {
      while (!cond()) await new Promise((r) => setImmediate(r));
    };

    it('the dataplane starts before IPAM has answered, and configures what IPAM then gives', async () => {
      const { handler, ipam, dataplane } = setup();
      const { gate, open } = held();
      ipam.gate = gate;
      const pending = call(handler);
      await until(() => dataplane.events.length > 0);
      expect(dataplane.events).toEqual(['setUp']);
      expect(ipam.held.size).toBe(0);
      open();
      const r = await pending;
      expect(r.exitCode).toBe(0);
      expect(dataplane.events).toEqual(['setUp', 'addresses']);
      expect([...dataplane.veths.values()][0]!.spec.ips.map(formatIp)).toEqual(['10.0.0.1']);
    });

    it('a pair that fails while IPAM is still writing: the address is released once IPAM is done', async () => {
      const { handler, ipam, dataplane } = setup();
      const { gate, open } = held();
      ipam.gate = gate;
      dataplane.failSetUp = new DataplaneError('no pair');
      const pending = call(handler);
      await until(() => dataplane.events.length > 0);
      open();
      expect(errorOf(await pending).code).toBe(103);
      expect(ipam.held.size).toBe(0);
      expect(dataplane.veths.size).toBe(0);
    });

    it('IPAM refusing after the pair was started: its own code, nothing held, no veth', async () => {
      const { handler, ipam, dataplane } = setup([]);
      const r = await call(handler);
      expect(errorOf(r).code).toBe(101);
      expect(dataplane.events).toEqual(['setUp']);
      expect(ipam.held.size).toBe(0);
      expect(dataplane.veths.size).toBe(0);
    });
  });

  it('ADD removes a stale host veth of the same attachment and re-uses its addresses', async () => {
    const { handler, dataplane, ipam } = setup();
    await call(handler);
    const r = await call(handler);
    expect(r.exitCode).toBe(0);
    expect(dataplane.setUps).toBe(2);
    expect(ipam.held.size).toBe(1);
  });

  it('several attachments per pod (Multus) get their own veth and address', async () => {
    const { handler, dataplane, ipam } = setup();
    await call(handler, { ifname: 'eth0' });
    await call(handler, { ifname: 'net1', conf: { name: 'second' } });
    expect(dataplane.veths.size).toBe(2);
    expect(ipam.held.size).toBe(2);
  });
});

describe('CniHandler DEL', () => {
  it('removes veth and allocation, and a second DEL succeeds too', async () => {
    const { handler, dataplane, ipam } = setup();
    await call(handler);
    expect((await call(handler, { command: 'DEL' })).exitCode).toBe(0);
    expect(dataplane.veths.size + ipam.held.size).toBe(0);
    expect((await call(handler, { command: 'DEL' })).exitCode).toBe(0);
  });

  it.each([
    ['CNI_NETNS empty', ''],
    ['CNI_NETNS that no longer exists', '/var/run/netns/definitely-gone'],
  ])('succeeds with %s and still frees everything', async (_w, ns) => {
    const { handler, dataplane, ipam } = setup();
    await call(handler);
    const r = await call(handler, { command: 'DEL', ns });
    expect(r.exitCode).toBe(0);
    expect(dataplane.veths.size + ipam.held.size).toBe(0);
  });

  it('DEL with no prior ADD succeeds and prints nothing', async () => {
    const { handler } = setup();
    expect(await call(handler, { command: 'DEL' })).toEqual({ exitCode: 0, stdout: '' });
  });

  it('DEL of an old sandbox keeps the new sandbox veth of the same pod (release only what the ID owns)', async () => {
    const { handler, dataplane, ipam } = setup();
    await call(handler, { id: 'old' });
    await call(handler, { id: 'new' }); // same pod, new sandbox: replaces the stale veth
    expect((await call(handler, { command: 'DEL', id: 'old' })).exitCode).toBe(0);
    expect(dataplane.veths.size).toBe(1);
    expect([...ipam.held.keys()]).toEqual(['new/eth0']);
  });

  it('an IPAM failure makes DEL fail (it will be retried) after still removing the veth', async () => {
    const { handler, dataplane, ipam } = setup();
    await call(handler);
    ipam.release = () => Promise.reject(new UnavailableError('datastore down'));
    const r = await call(handler, { command: 'DEL' });
    expect(errorOf(r).code).toBe(11);
    expect(dataplane.veths.size).toBe(0);
  });
});

describe('CniHandler CHECK, GC, STATUS', () => {
  it('CHECK without prevResult is an error; with the ADD result and a healthy dataplane it passes', async () => {
    const { handler } = setup();
    const add = JSON.parse((await call(handler)).stdout);
    expect(errorOf(await call(handler, { command: 'CHECK' })).code).toBe(7);
    expect(await call(handler, { command: 'CHECK', conf: { prevResult: add } })).toEqual({
      exitCode: 0,
      stdout: '',
    });
  });

  it('CHECK reports dataplane problems and a sandbox mismatch', async () => {
    const { handler, dataplane } = setup();
    const add = JSON.parse((await call(handler)).stdout);
    dataplane.problems = ['eth0 is down'];
    add.interfaces[1].sandbox = '/elsewhere';
    const e = errorOf(await call(handler, { command: 'CHECK', conf: { prevResult: add } }));
    expect(e.code).toBe(104);
    expect(e.details).toContain('eth0 is down');
    expect(e.details).toContain('no interface eth0 in sandbox');
  });

  it('GC removes every attachment of this network not listed, keeps listed ones and other networks', async () => {
    const { handler, dataplane, ipam } = setup(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    await call(handler, { id: 'keep', args: 'K8S_POD_NAMESPACE=a;K8S_POD_NAME=1' });
    await call(handler, { id: 'drop', args: 'K8S_POD_NAMESPACE=a;K8S_POD_NAME=2' });
    await call(handler, { id: 'other', args: 'K8S_POD_NAMESPACE=a;K8S_POD_NAME=3', conf: { name: 'net-b' } });
    ipam.held.set('leaked/eth0', []);
    const r = await call(handler, {
      command: 'GC',
      conf: { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] },
    });
    expect(r).toEqual({ exitCode: 0, stdout: '' });
    expect([...dataplane.veths.values()].map((v) => v.owner?.containerId).sort()).toEqual(['keep', 'other']);
    expect([...ipam.held.keys()].sort()).toEqual(['keep/eth0', 'other/eth0']);
  });

  it('STATUS: ready → exit 0 and no output; IPAM not ready → code 50', async () => {
    const { handler, ipam } = setup();
    const status = () => call(handler, { command: 'STATUS', conf: { cniVersion: '1.1.0' } });
    expect(await status()).toEqual({ exitCode: 0, stdout: '' });
    ipam.statusError = new Error('no pool');
    expect(errorOf(await status())).toMatchObject({ code: 50, details: 'no pool' });
  });

  it('concurrent ADDs of different pods never share an address', async () => {
    const free = Array.from({ length: 60 }, (_, i) => `10.1.0.${i + 1}`);
    const { handler, ipam } = setup(free);
    const rs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call(handler, { id: `c${i}`, args: `K8S_POD_NAMESPACE=n;K8S_POD_NAME=p${i}` }),
      ),
    );
    const addrs = rs.map((r) => JSON.parse(r.stdout).ips[0].address);
    expect(new Set(addrs).size).toBe(50);
    expect(ipam.held.size).toBe(50);
  });
});
