// Feeds the policy engine from the cluster view: namespaces, policies, and pods with the
// addresses IPAM gave them. Only objects that changed are passed on (the engine is
// incremental per object), and syncs are coalesced.
import type { Logger } from 'pino';
import type { NetworkPolicy } from '../model/index.js';
import {
  PolicyEngine,
  policyNamespaceFromResource,
  policyPodFromResource,
  type PolicyPod,
  type Runner,
} from '../policy/index.js';
import type { ClusterView } from './cluster-view.js';

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface PolicyControllerOptions {
  view: ClusterView;
  nodeName: string;
  runner: Runner;
  logger: Logger;
  onSynced?: (durationMs: number) => void;
}

export class PolicyController {
  readonly engine: PolicyEngine;
  private readonly fed = {
    pods: new Map<string, string>(),
    namespaces: new Map<string, string>(),
    policies: new Map<string, string>(),
    clusterPolicies: new Map<string, string>(),
  };
  private syncQueued = false;
  /** Addresses of local attachments known from CNI before the IPAM watch reports them. */
  private readonly localAttachments = new Map<string, { ips: string[]; ifnames: string[] }>();

  constructor(private readonly o: PolicyControllerOptions) {
    this.engine = new PolicyEngine({
      nodeName: o.nodeName,
      runner: o.runner,
      logger: o.logger.child({ component: 'policy' }),
    });
  }

  /** Recomputes the engine's inputs from the view and queues a sync when anything changed. */
  refresh(): void {
    let changed = false;
    const namespaces = new Map<string, string>();
    for (const ns of this.o.view.list('Namespace')) {
      const input = policyNamespaceFromResource(ns);
      // The API server always sets this label; objects written straight to etcd may lack it.
      const withName = { ...input, labels: { ...input.labels, [NAMESPACE_NAME_LABEL]: input.name } };
      const text = JSON.stringify(withName);
      namespaces.set(withName.name, text);
      if (this.fed.namespaces.get(withName.name) !== text) {
        this.engine.upsertNamespace(withName);
        changed = true;
      }
    }
    changed =
      this.removeGone(this.fed.namespaces, namespaces, (name) => this.engine.removeNamespace(name)) ||
      changed;
    this.fed.namespaces = namespaces;

    const policies = new Map<string, string>();
    for (const np of this.o.view.list('NetworkPolicy')) {
      const key = `${np.metadata.namespace}/${np.metadata.name}`;
      const text = JSON.stringify([np.metadata.labels, np.spec]);
      policies.set(key, text);
      if (this.fed.policies.get(key) !== text) {
        this.upsertPolicy(np);
        changed = true;
      }
    }
    changed =
      this.removeGone(this.fed.policies, policies, (key) => {
        const [ns, name] = key.split('/') as [string, string];
        this.engine.removePolicy(ns, name);
      }) || changed;
    this.fed.policies = policies;

    const clusterPolicies = new Map<string, string>();
    for (const cnp of this.o.view.list('ClusterNetworkPolicy')) {
      const text = JSON.stringify(cnp.spec);
      clusterPolicies.set(cnp.metadata.name, text);
      if (this.fed.clusterPolicies.get(cnp.metadata.name) !== text) {
        this.engine.upsertClusterPolicy(cnp); // logs the rules that fail closed
        changed = true;
      }
    }
    changed =
      this.removeGone(this.fed.clusterPolicies, clusterPolicies, (name) =>
        this.engine.removeClusterPolicy(name),
      ) || changed;
    this.fed.clusterPolicies = clusterPolicies;

    const addresses = this.o.view.podAddresses();
    const pods = new Map<string, string>();
    for (const pod of this.o.view.list('Pod')) {
      const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
      const local = this.localAttachments.get(key);
      const ipam = addresses.get(key) ?? (local ? { ...local, node: this.o.nodeName } : undefined);
      const base = policyPodFromResource(pod, ipam?.ifnames.length ? ipam.ifnames : ['eth0']);
      if (!base) continue;
      const input: PolicyPod = {
        ...base,
        ips: [...new Set([...base.ips, ...(ipam?.ips ?? [])])].sort(),
        node: base.node ?? ipam?.node,
      };
      const text = JSON.stringify(input);
      pods.set(key, text);
      if (this.fed.pods.get(key) !== text) {
        this.engine.upsertPod(input);
        changed = true;
      }
    }
    changed =
      this.removeGone(this.fed.pods, pods, (key) => {
        const [ns, name] = key.split('/') as [string, string];
        this.engine.removePod(ns, name);
      }) || changed;
    this.fed.pods = pods;

    if (changed) this.queueSync();
  }

  private upsertPolicy(np: NetworkPolicy): void {
    try {
      this.engine.upsertPolicy(np);
    } catch (e) {
      this.o.logger.warn(
        { err: e, policy: `${np.metadata.namespace}/${np.metadata.name}` },
        'policy not applied',
      );
    }
  }

  private removeGone(
    before: Map<string, string>,
    after: Map<string, string>,
    remove: (key: string) => void,
  ): boolean {
    let changed = false;
    for (const key of before.keys()) {
      if (!after.has(key)) {
        remove(key);
        changed = true;
      }
    }
    return changed;
  }

  private queueSync(): void {
    if (this.syncQueued) return;
    this.syncQueued = true;
    setImmediate(() => {
      this.syncQueued = false;
      this.engine
        .sync()
        .then((r) => this.o.onSynced?.(r.durationMs))
        .catch((e: unknown) => this.o.logger.error({ err: e }, 'policy sync failed'));
    });
  }

  /** Records a local attachment the moment CNI has plumbed it. */
  attached(namespace: string, name: string, ips: string[], ifname: string): void {
    const key = `${namespace}/${name}`;
    const entry = this.localAttachments.get(key) ?? { ips: [], ifnames: [] };
    entry.ips = [...new Set([...entry.ips, ...ips])];
    if (!entry.ifnames.includes(ifname)) entry.ifnames.push(ifname);
    this.localAttachments.set(key, entry);
    this.refresh();
  }

  detached(namespace: string, name: string): void {
    this.localAttachments.delete(`${namespace}/${name}`);
    this.refresh();
  }

  /** Resolves when the pod's policy (if any selects it) is programmed; rejects after the timeout. */
  waitForPod(namespace: string, name: string, timeoutMs: number): Promise<void> {
    return this.engine.endpointProgrammed(namespace, name, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.engine.close();
  }
}
