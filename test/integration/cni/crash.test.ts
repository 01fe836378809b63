// The agent is killed in the middle of an ADD (after the veth exists, before it answers). The
// executable reports "try again later"; the restarted agent's GC then leaves nothing: no veth, no
// route, no allocation (IPAM state lives in a real etcd, so it survives the crash).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostVethName } from '../../../model/routing.js';
import { startEtcd, type EtcdServer } from '../../support/etcd.js';
import { waitFor } from '../../support/netns.js';
import { CniLab, k8sArgs, podIp } from './harness.js';

// Four addresses: after GC all four must be assignable again.
const POOL = 'crash=10.60.0.0/30,30';
let etcd: EtcdServer;
let lab: CniLab;

beforeAll(async () => {
  // Unix-socket etcd: reachable from the agent inside the node netns.
  etcd = await startEtcd({ transport: 'unix' });
  lab = new CniLab({ pools: [POOL], etcd: etcd.endpoint, holdAddMs: 30_000 });
  await lab.start();
}, 180_000);
afterAll(async () => {
  await lab?.cleanup();
  await etcd?.stop();
});

describe('agent killed during ADD', () => {
  it('ADD answers code 11; after restart, GC removes the half-made attachment and frees its address', async () => {
    const pod = await lab.pod('victim');
    const veth = hostVethName('crash', 'victim', 'eth0');
    const pending = lab.tern({
      command: 'ADD',
      containerId: 'victim',
      netns: pod.path,
      args: k8sArgs('crash', 'victim'),
    });
    await waitFor('the victim veth', async () => (await lab.residue()).veths.includes(veth), 30_000, 50);
    await lab.stopAgent('SIGKILL');
    const add = await pending;
    expect(add.json).toMatchObject({ code: 11 });
    expect(String(add.json?.details)).toContain(lab.socket);
    // The crash really left state behind: the veth and its route.
    expect((await lab.residue()).veths).toContain(veth);

    await lab.startAgent({ holdAddMs: 0 });
    const gc = await lab.tern({
      command: 'GC',
      ifname: '',
      conf: { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] },
    });
    expect([gc.code, gc.stdout]).toEqual([0, '']);
    expect(await lab.residue()).toEqual({ veths: [], routes: [] });

    const pods = await Promise.all([0, 1, 2, 3].map((i) => lab.pod(`after${i}`)));
    const adds = await Promise.all(
      pods.map((p, i) =>
        lab.tern({ command: 'ADD', containerId: `a${i}`, netns: p.path, args: k8sArgs('crash', `a${i}`) }),
      ),
    );
    expect(adds.map((a) => a.code)).toEqual([0, 0, 0, 0]);
    expect(new Set(adds.map((a) => podIp(a))).size).toBe(4);
  });
});
