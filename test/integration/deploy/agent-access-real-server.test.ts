// tern-node's Kubernetes access on the real kube-apiserver, authenticated exactly as in a
// cluster: a ServiceAccount token (TokenRequest) of tern-system/tern-node, authorized by exactly
// deploy/kubernetes/rbac.yaml (applied as docs/install.md says). The agent's own code paths run
// under it (informers on every kind it watches, node adoption, IPAM, the GC Lease, cluster GC):
// a call rbac.yaml does not grant fails here. And the server's authorizer grants that
// ServiceAccount exactly the triples of rbac-needs.ts, no more.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Informer } from '../../../datastore/informer.js';
import { KubernetesApiError, KubernetesDatastore } from '../../../datastore/kubernetes/index.js';
import { LeaderElector } from '../../../datastore/leader-election.js';
import { RBAC_NEEDS } from '../../../deploy/kubernetes/rbac-needs.js';
import { adoptNode } from '../../../felix/node-registration.js';
import { ClusterGc } from '../../../ipam/cluster-gc.js';
import { Ipam } from '../../../ipam/index.js';
import { NODE_ANNOTATIONS, TERN_API_VERSION, type AnyResource, type Kind } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { startKubeCluster, type KubeCluster } from '../../support/kube-cluster.js';
import { raceForLease } from '../../support/leader-race.js';
import { waitFor } from '../../support/netns.js';

const quiet = createLogger('agent-access-test', { level: 'silent' });
const LEASE = { namespace: 'tern-system', name: 'tern-ipam-gc' };
const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 250 };

let cluster: KubeCluster;
let admin: KubernetesDatastore;
let agentKubeconfig: string;
const opened: Array<{ close(): Promise<void> }> = [];
const agentStore = () => {
  const s = new KubernetesDatastore({ kubeconfigPath: agentKubeconfig, logger: quiet });
  opened.push(s);
  return s;
};

beforeAll(async () => {
  cluster = await startKubeCluster({ name: 'agent-access' });
  await cluster.applyCrds();
  await cluster.applyRbac();
  await cluster.createNamespace('apps');
  admin = new KubernetesDatastore({ kubeconfigPath: cluster.adminKubeconfig, logger: quiet });
  opened.push(admin);
  agentKubeconfig = await cluster.serviceAccountKubeconfig('tern-system', 'tern-node');
  await admin.create({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', labels: { rack: 'r1' } },
    status: { addresses: [{ type: 'InternalIP', address: '10.77.0.11' }] },
  });
}, 180_000);
afterAll(async () => {
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
  await cluster?.stop();
});

/** One object of each kind the agent watches, written by the admin while the agent's informer runs. */
const WATCHED: Array<[Kind, AnyResource]> = [
  [
    'Pod',
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: 'apps', name: 'w' },
      spec: { containers: [{ name: 'c', image: 'tern.invalid/none:1' }] },
    },
  ],
  ['Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'watched' } }],
  ['Node', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n-watched' } }],
  [
    'NetworkPolicy',
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: 'apps', name: 'w' },
      spec: { podSelector: {} },
    },
  ],
  [
    'IPPool',
    {
      apiVersion: TERN_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'watched' },
      spec: { cidr: '10.78.0.0/24', disabled: true },
    },
  ],
  [
    'BGPPeer',
    {
      apiVersion: TERN_API_VERSION,
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: '10.77.0.1', asNumber: 65001 },
    },
  ],
  [
    'BGPConfiguration',
    {
      apiVersion: TERN_API_VERSION,
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { asNumber: 64512 },
    },
  ],
  [
    'IPReservation',
    {
      apiVersion: TERN_API_VERSION,
      kind: 'IPReservation',
      metadata: { namespace: 'apps', name: 'w' },
      spec: { pods: [{ name: 'db-0', addresses: ['10.78.0.10'] }] },
    },
  ],
] as Array<[Kind, AnyResource]>;

describe("tern-node's code paths under its ServiceAccount token and exactly rbac.yaml", () => {
  it.each(WATCHED)('an informer on %s lists, then watches an object the admin writes', async (kind, obj) => {
    const informer = new Informer(agentStore(), kind, {
      logger: quiet,
      retryDelayMs: { initial: 50, max: 200 },
    });
    try {
      informer.start();
      await waitFor(`${kind} informer synced`, () => informer.revision !== undefined, 10_000, 20);
      await admin.create(obj as AnyResource & { kind: typeof kind });
      await waitFor(`${kind} watched`, () => informer.get(obj.metadata), 10_000, 20);
      expect(informer.resyncCount).toBe(0);
    } finally {
      await informer.stop();
    }
  });

  it('adopts its Node: reads it and writes its BGP address annotations by compare-and-swap', async () => {
    const adopted = await adoptNode(agentStore(), { name: 'n1' });
    expect(adopted.ipv4).toBe('10.77.0.11');
    const node = await admin.get('Node', { name: 'n1' });
    expect(node?.metadata.annotations?.[NODE_ANNOTATIONS.bgpIPv4]).toBe('10.77.0.11');
    // The kubelet's fields survive the agent's whole-object PUT.
    expect(node?.status?.addresses).toEqual([{ type: 'InternalIP', address: '10.77.0.11' }]);
    expect(node?.metadata.labels).toEqual({ rack: 'r1' });
  });

  it('assigns and releases pod addresses (IPAM blocks: get, list, create, update, delete)', async () => {
    await admin.create({
      apiVersion: TERN_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'pods' },
      spec: { cidr: '10.79.0.0/24', blockSize: 28 },
    });
    const ipam = new Ipam({ datastore: agentStore(), logger: quiet, sweepIntervalMs: 0 });
    opened.push(ipam);
    const attachment = { namespace: 'apps', pod: 'ipam', containerID: 'ctr-1', ifname: 'eth0' };
    const got = await ipam.assign({ attachment, node: 'n1' });
    const address = got.addresses[0]!.address;
    expect(address).toMatch(/^10\.79\.0\./);
    expect((await ipam.release(attachment)).map((r) => r.address)).toEqual([address]);
    // An empty block goes back to the pool: the delete verb.
    await ipam.gc(() => true);
    const blocks = (await admin.list('IPAMBlock')).items.filter((b) => b.spec.pool === 'pods');
    expect(blocks.flatMap((b) => Object.keys(b.spec.allocations))).toEqual([]);
  });

  it('two agents race for the coordination.k8s.io Lease in tern-system: exactly one leads, then the other', async () => {
    const elector = (identity: string) =>
      new LeaderElector({ datastore: agentStore(), ...LEASE, ...TIMING, identity, logger: quiet });
    const { leader, other } = await raceForLease(elector('n1'), elector('n2'), 20);
    await leader.stop();
    await waitFor('the other leads', () => other.isLeader(), 10_000, 20);
    expect((await admin.get('Lease', LEASE))?.spec?.holderIdentity).toBe(other.identity);
    await other.stop();
  });

  it('the leader’s cluster GC frees a force-deleted pod’s address and keeps a live pod’s', async () => {
    await admin.create({
      apiVersion: TERN_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'gc' },
      spec: { cidr: '10.80.0.0/24', blockSize: 28, nodeSelector: { matchLabels: { rack: 'r1' } } },
    });
    const ds = agentStore();
    const ipam = new Ipam({ datastore: ds, logger: quiet, sweepIntervalMs: 0 });
    opened.push(ipam);
    const leader = new LeaderElector({
      datastore: ds,
      ...LEASE,
      ...TIMING,
      identity: 'gc-n1',
      logger: quiet,
    });
    leader.start();
    try {
      await waitFor('leading', () => leader.isLeader(), 15_000, 20);
      const gc = new ClusterGc({
        datastore: ds,
        ipam,
        isLeader: () => leader.isLeader(),
        graceMs: 1_000,
        logger: quiet,
      });
      for (const pod of ['live', 'gone']) {
        await admin.create({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { namespace: 'apps', name: pod },
          spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'tern.invalid/none:1' }] },
        });
        await ipam.assign({
          attachment: { namespace: 'apps', pod, containerID: `ctr-${pod}`, ifname: 'eth0' },
          node: 'n1',
          nodeLabels: { rack: 'r1' },
        });
      }
      // A bound Pod's DELETE only marks it (the kubelet finishes it); no kubelet here, so force,
      // as an operator does for a pod of a dead node.
      await cluster.kubectl(['-n', 'apps', 'delete', 'pod', 'gone', '--grace-period=0', '--force']);
      const freed: string[] = [];
      await waitFor(
        'freed',
        async () => {
          freed.push(...(await gc.runOnce()).freed.map((f) => f.pod!));
          return freed.length > 0;
        },
        15_000,
        200,
      );
      expect(freed).toEqual(['gone']);
      const left = (await admin.list('IPAMBlock')).items
        .flatMap((b) => Object.values(b.spec.allocations))
        .filter((a) => a.namespace === 'apps' && (a.pod === 'live' || a.pod === 'gone'));
      expect(left.map((a) => a.pod)).toEqual(['live']);
    } finally {
      await leader.stop();
    }
  });

  it('a verb rbac.yaml does not grant is refused with 403, named in the error', async () => {
    const err = await agentStore()
      .create({
        apiVersion: TERN_API_VERSION,
        kind: 'IPPool',
        metadata: { name: 'not-mine' },
        spec: { cidr: '10.81.0.0/24' },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect(err).toMatchObject({ httpStatus: 403, reason: 'Forbidden' });
    expect(String((err as Error).message)).toMatch(/ippools.*forbidden|forbidden.*ippools/i);
  });
});

describe('the real authorizer grants the tern-node ServiceAccount exactly rbac-needs.ts', () => {
  /** (group, resource, verb) triples the API server says the ServiceAccount may use in `namespace`. */
  async function granted(namespace: string): Promise<string[]> {
    const review = JSON.stringify({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectRulesReview',
      spec: { namespace },
    });
    const out = await cluster.kubectl(
      ['--kubeconfig', agentKubeconfig, 'create', '--validate=false', '-f', '-', '-o', 'json'],
      {
        input: review,
      },
    );
    const rules = (
      JSON.parse(out.stdout) as {
        status: { resourceRules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
      }
    ).status.resourceRules;
    const triples = rules.flatMap((r) =>
      r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))),
    );
    // What every authenticated user may do (system:basic-user, system:discovery, …), not tern's.
    const everyone =
      /^(authentication|authorization)\.k8s\.io\/self|^certificates\.k8s\.io\/clustertrustbundles:/;
    return [...new Set(triples.filter((t) => !everyone.test(t)))].sort();
  }
  const needs = (namespaced: boolean) =>
    RBAC_NEEDS.filter((n) => namespaced || !n.namespaced)
      .flatMap((n) => n.verbs.map((v) => `${n.group}/${n.resource}:${v}`))
      .sort();

  it('in its own namespace: the ClusterRole and the Role', async () => {
    expect(await granted('tern-system')).toEqual(needs(true));
  });

  it('in any other namespace: the ClusterRole only (no Lease access)', async () => {
    expect(await granted('apps')).toEqual(needs(false));
  });
});
