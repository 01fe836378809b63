// PolicyController feeds the policy engine from the cluster view: namespaces (with the name
// label the API server would add), policies, and pods with their IPAM addresses (or the
// addresses CNI just gave a local pod). Checked through the engine's own explain(), and the
// commands the engine runs go to a recording runner (no iptables here).
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryDatastore } from '../../../datastore/memory.js';
import { ClusterView } from '../../../felix/cluster-view.js';
import { PolicyController } from '../../../felix/policy-controller.js';
import type { AnyResource } from '../../../model/index.js';
import type { Runner } from '../../../policy/index.js';

const ns = (name: string, labels: Record<string, string> = {}): AnyResource =>
  ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }) as AnyResource;
const pod = (namespace: string, name: string, labels: Record<string, string>, node = 'a'): AnyResource =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace, name, labels },
    spec: { nodeName: node, containers: [{ name: 'c' }] },
  }) as AnyResource;
const denyAllIngress = (namespace: string, name: string): AnyResource =>
  ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace, name },
    spec: { podSelector: {}, policyTypes: ['Ingress'] },
  }) as AnyResource;
const onlyFromNamespace = (namespace: string, name: string, from: string): AnyResource =>
  ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace, name },
    spec: {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': from } } }] }],
    },
  }) as AnyResource;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function setup() {
  const ds = new MemoryDatastore();
  const view = new ClusterView(ds);
  await view.start();
  const commands: string[] = [];
  const runner: Runner = async (cmd, args) => {
    commands.push([cmd, ...args].join(' '));
    return '';
  };
  const controller = new PolicyController({ view, nodeName: 'a', runner, logger: pino({ level: 'silent' }) });
  view.onChange(() => controller.refresh());
  cleanups.push(async () => {
    await controller.stop();
    await view.stop();
  });
  const settle = () => new Promise((r) => setTimeout(r, 20));
  return { ds, view, controller, commands, settle };
}

describe('PolicyController', () => {
  it('a policy selecting a pod isolates it; deleting the policy lifts it', async () => {
    const t = await setup();
    await t.ds.create(ns('x'));
    await t.ds.create(pod('x', 'web', { app: 'web' }));
    await t.ds.create(denyAllIngress('x', 'deny'));
    await t.settle();
    expect(t.controller.engine.explain('x', 'web').selectedBy.ingress).toEqual(['networkpolicy:x/deny']);
    await t.ds.delete('NetworkPolicy', { namespace: 'x', name: 'deny' });
    await t.settle();
    expect(t.controller.engine.explain('x', 'web').selectedBy.ingress).toEqual([]);
  });

  it('a ClusterNetworkPolicy reaches the engine in its tier, changes and deletion follow', async () => {
    const t = await setup();
    await t.ds.create(ns('x'));
    await t.ds.create(ns('y'));
    await t.ds.create(pod('x', 'web', {}));
    await t.ds.create(pod('y', 'client', {}));
    t.controller.attached('y', 'client', ['10.244.1.7'], 'eth0');
    t.controller.attached('x', 'web', ['10.244.0.7'], 'eth0');
    const cnp = {
      apiVersion: 'policy.networking.k8s.io/v1beta1',
      kind: 'ClusterNetworkPolicy',
      metadata: { name: 'deny-y' },
      spec: {
        tier: 'Admin',
        priority: 3,
        subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } } },
        ingress: [
          {
            name: 'no y',
            action: 'Deny',
            from: [{ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }],
          },
        ],
      },
    } as AnyResource;
    const created = await t.ds.create(cnp);
    await t.settle();
    const from = () =>
      t.controller.engine.explain('x', 'web', { from: { pod: { namespace: 'y', name: 'client' } } });
    expect(from().decisions.at(-1)).toMatchObject({
      verdict: 'deny',
      tier: 'admin',
      policy: 'clusternetworkpolicy:deny-y',
      rule: 'ingress[0] (no y)',
    });
    await t.ds.update({
      ...created,
      spec: { ...(created as typeof cnp & { spec: object }).spec, tier: 'Baseline' },
    } as AnyResource);
    await t.settle();
    expect(from().decisions.at(-1)).toMatchObject({ verdict: 'deny', tier: 'baseline' });
    await t.ds.delete('ClusterNetworkPolicy', { name: 'deny-y' });
    await t.settle();
    expect(from().verdict).toBe('allow');
  });

  it('namespaces get their name label even when the stored object lacks it; pod addresses come from IPAM blocks', async () => {
    const t = await setup();
    await t.ds.create({
      apiVersion: 'tern.network/v1',
      kind: 'IPAMBlock',
      metadata: { name: '10-244-0-0-26' },
      spec: {
        cidr: '10.244.0.0/26',
        pool: 'p',
        affinity: 'a',
        allocations: {
          '1': {
            handle: 'x/web/c1/eth0',
            namespace: 'x',
            pod: 'web',
            containerID: 'c1',
            interface: 'eth0',
            node: 'a',
          },
          '2': {
            handle: 'y/client/c2/eth0',
            namespace: 'y',
            pod: 'client',
            containerID: 'c2',
            interface: 'eth0',
            node: 'b',
          },
        },
      },
    } as AnyResource);
    await t.ds.create(ns('x'));
    await t.ds.create(ns('y'));
    await t.ds.create(pod('x', 'web', {}));
    await t.ds.create(pod('y', 'client', {}));
    await t.ds.create(onlyFromNamespace('x', 'from-y', 'y'));
    await t.settle();
    const e = t.controller.engine.explain('x', 'web', { from: { pod: { namespace: 'y', name: 'client' } } });
    expect(e.verdict).toBe('allow');
    expect(t.controller.engine.explain('x', 'web', { from: { ip: '10.244.0.50' } }).verdict).toBe('deny');
  });

  it('a local pod CNI has just plumbed is known by its addresses before IPAM’s watch reports them', async () => {
    const t = await setup();
    await t.ds.create(ns('x'));
    await t.ds.create(pod('x', 'web', {}));
    await t.ds.create(denyAllIngress('x', 'deny'));
    await t.settle();
    t.controller.attached('x', 'web', ['10.244.0.7'], 'eth0');
    await t.settle();
    const e = t.controller.engine.explain('x', 'web', { from: { ip: '10.1.2.3' } });
    expect(e.verdict).toBe('deny');
    // The engine programmed it: a pod selected by policy gets its rules applied through the runner.
    await t.controller.waitForPod('x', 'web', 2000);
    expect(t.commands.some((c) => c.startsWith('iptables-restore') || c.startsWith('ipset'))).toBe(true);
  });

  it('pods that are not Kubernetes pods (no Pod object) are not fed; unchanged objects are not re-fed', async () => {
    const t = await setup();
    await t.ds.create(ns('x'));
    await t.settle();
    t.controller.attached('x', 'ghost', ['10.244.0.9'], 'eth0');
    expect(() => t.controller.engine.explain('x', 'ghost')).toThrow('not known');
    const before = t.commands.length;
    t.controller.refresh();
    await t.settle();
    expect(t.commands.length).toBe(before);
  });
});
