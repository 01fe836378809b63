// The GC Lease and the cluster IPAM GC through the kubernetes datastore, against our
// Kubernetes protocol server (test/support/kube-api-server.ts): the Lease is a
// coordination.k8s.io/v1 lease, CAS is PUT with resourceVersion (409 → lost race).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesDatastore } from '../../../datastore/kubernetes/index.js';
import { LeaderElector } from '../../../datastore/leader-election.js';
import { ClusterGc } from '../../../ipam/cluster-gc.js';
import { Ipam } from '../../../ipam/index.js';
import { TERN_API_VERSION } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { startKubeApiServer, type KubeApiServer } from '../../support/kube-api-server.js';
import { raceForLease } from '../../support/leader-race.js';
import { waitFor } from '../../support/netns.js';

const quiet = createLogger('gc-kube-test', { level: 'silent' });
const LEASE = { namespace: 'tern-system', name: 'tern-ipam-gc' };
const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 250 };

let server: KubeApiServer;
const opened: Array<{ close(): Promise<void> }> = [];
const electors: LeaderElector[] = [];
beforeAll(async () => {
  server = await startKubeApiServer({ bookmarkIntervalMs: 200 });
});
afterAll(async () => {
  for (const e of electors.splice(0)) await e.stop().catch(() => undefined);
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
  await server?.close();
});

function apiServer() {
  const url = server.newTenant();
  const client = () => {
    const ds = new KubernetesDatastore({ server: url, logger: quiet });
    opened.push(ds);
    return ds;
  };
  const elector = (identity: string, ds = client()) => {
    const e = new LeaderElector({ datastore: ds, ...LEASE, ...TIMING, identity, logger: quiet });
    electors.push(e);
    return e;
  };
  return { client, elector };
}

describe('leader election and cluster IPAM GC on the kubernetes datastore', () => {
  it('two agents race for the coordination.k8s.io Lease: exactly one leads; when it stops the other takes over', async () => {
    const { client, elector } = apiServer();
    const { leader, other } = await raceForLease(elector('agent-a'), elector('agent-b'), 20);
    await leader.stop();
    await waitFor('the other leads', () => other.isLeader(), 10_000, 20);
    const lease = await client().get('Lease', LEASE);
    expect(lease).toMatchObject({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' });
    expect(lease?.spec?.holderIdentity).toBe(other.identity);
    await other.stop();
  });

  it('the leader’s GC frees a deleted pod’s address after the grace and keeps a live pod’s', async () => {
    const { client, elector } = apiServer();
    const admin = client();
    await admin.create({
      apiVersion: TERN_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'p' },
      spec: { cidr: '10.91.0.0/24', blockSize: 28 },
    });
    await admin.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
    const ds = client();
    const ipam = new Ipam({ datastore: ds, logger: quiet, sweepIntervalMs: 0 });
    opened.push(ipam);
    const e = elector('n1', ds);
    e.start();
    await waitFor('leading', () => e.isLeader(), 10_000, 20);
    const gc = new ClusterGc({
      datastore: ds,
      ipam,
      isLeader: () => e.isLeader(),
      graceMs: 1_000,
      logger: quiet,
    });
    for (const pod of ['live', 'gone']) {
      await admin.create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { namespace: 'default', name: pod },
        spec: { nodeName: 'n1', containers: [{ name: 'c' }] },
      });
      await ipam.assign({
        attachment: { namespace: 'default', pod, containerID: `ctr-${pod}`, ifname: 'eth0' },
        node: 'n1',
      });
    }
    await admin.delete('Pod', { namespace: 'default', name: 'gone' });
    expect((await gc.runOnce()).freed).toEqual([]);
    const freed: string[] = [];
    await waitFor(
      'freed',
      async () => {
        freed.push(...(await gc.runOnce()).freed.map((f) => f.pod!));
        return freed.length > 0;
      },
      10_000,
      200,
    );
    expect(freed).toEqual(['gone']);
    const left = (await admin.list('IPAMBlock')).items.flatMap((b) => Object.values(b.spec.allocations));
    expect(left.map((a) => a.pod)).toEqual(['live']);
    await e.stop();
  });
});
