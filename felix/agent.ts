// tern-node: the per-node agent. Composes the datastore view, IPAM, the CNI socket, the route
// reconciler, the BGP speaker and the policy engine, and serves health, metrics and status.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { LinuxDataplane } from './cni/dataplane/veth.js';
import { CniHandler } from './cni/handler.js';
import { NodeIpam, type IpamService } from './cni/ipam-adapter.js';
import type { AgentHooks, PodEndpoint } from './cni/ports.js';
import { CniServer } from './cni/server.js';
import { openDatastore, type Datastore } from '../datastore/index.js';
import { LeaderElector } from '../datastore/leader-election.js';
import { ClusterGc } from '../ipam/cluster-gc.js';
import { Ipam } from '../ipam/index.js';
import { formatIp, hostCidr, formatCidr, hostVethName } from '../model/index.js';
import { hostRunner, type Runner } from '../policy/index.js';
import { BgpController } from './bgp-controller.js';
import { ClusterView } from './cluster-view.js';
import { ipamGcEnabled, type AgentConfig } from './config.js';
import { HttpEndpoint } from './http-server.js';
import { AgentMetrics } from './metrics.js';
import { detectNodeAddress } from './node-address.js';
import { adoptNode, registerNode } from './node-registration.js';
import { PolicyController } from './policy-controller.js';
import { RouteReconciler } from '../kernel/routes/reconciler.js';
import { statusRoutes } from './status-api.js';

export interface AgentDependencies {
  datastore?: Datastore;
  /** Runs iptables/ipset; default: in the agent's own network namespace. */
  policyRunner?: Runner;
}

export class Agent {
  readonly metrics = new AgentMetrics();
  private datastore!: Datastore;
  private ownsDatastore = false;
  view!: ClusterView;
  ipam!: Ipam;
  routes!: RouteReconciler;
  bgp!: BgpController;
  policy!: PolicyController;
  private cni!: CniServer;
  /** Campaigns for the IPAM GC Lease; absent when GC is off. */
  elector: LeaderElector | undefined;
  private clusterGc: ClusterGc | undefined;
  private endpoints: HttpEndpoint[] = [];
  private ready = false;
  private stopped = false;
  nodeIPv4: string | undefined;
  nodeIPv6: string | undefined;

  constructor(
    readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly deps: AgentDependencies = {},
  ) {}

  async start(): Promise<void> {
    const c = this.config;
    this.datastore =
      this.deps.datastore ??
      (await openDatastore(
        {
          backend: c.datastore,
          etcdEndpoints: c.etcdEndpoints,
          ...(c.kubeconfig ? { kubeconfig: c.kubeconfig } : {}),
          ...(c.kubeServer ? { kubeServer: c.kubeServer } : {}),
        },
        { logger: this.log },
      ));
    this.ownsDatastore = !this.deps.datastore;
    await this.register();

    // Routes first: adopting the kernel's routes before anything else means a restart never
    // removes a route that is still valid (stale ones go only once each class is synced).
    this.routes = new RouteReconciler({
      logger: this.log.child({ component: 'routes' }),
      resyncIntervalMs: c.routeResyncSeconds * 1000,
      onProgrammed: (cls, _kind, ms) =>
        this.metrics.routeProgrammingSeconds.observe({ class: cls }, ms / 1000),
    });
    await this.routes.start();

    this.view = new ClusterView(this.datastore);
    this.ipam = new Ipam({ datastore: this.datastore, logger: this.log.child({ component: 'ipam' }) });
    this.bgp = new BgpController({
      view: this.view,
      routes: this.routes,
      nodeName: c.nodeName,
      ...(this.nodeIPv4 ? { nodeIPv4: this.nodeIPv4 } : {}),
      ...(this.nodeIPv6 ? { nodeIPv6: this.nodeIPv6 } : {}),
      ...(c.asNumber !== undefined ? { asNumber: c.asNumber } : {}),
      listenPort: c.bgpListenPort,
      gracefulRestartSeconds: c.gracefulRestartSeconds,
      // Routes of ours in the kernel at start: the agent restarted (crash, upgrade), not a boot.
      restarting: this.routes.stats().installed > 0,
      logger: this.log,
    });
    this.policy = new PolicyController({
      view: this.view,
      nodeName: c.nodeName,
      runner: this.deps.policyRunner ?? hostRunner(),
      logger: this.log,
    });

    await this.view.start();
    this.view.onChange((change) => this.onClusterChange(change.kind));
    this.syncLocalRoutes();
    await this.bgp.reconcile();
    this.policy.refresh();
    // Before the CNI socket listens: no pod is ever plumbed without source validation.
    await this.policy.engine.installSourceValidation();
    this.policy.engine.startDriftCheck();

    this.cni = new CniServer({
      socketPath: c.cniSocket,
      handle: (r) => this.handleCni(r),
      onError: (e) => this.log.error({ err: e }, 'CNI socket error'),
    });
    await this.cni.start();
    this.startClusterGc();

    const http = {
      registry: this.metrics.registry,
      liveness: () => undefined,
      readiness: () => (this.ready ? undefined : 'starting'),
      routes: statusRoutes(this),
    };
    this.endpoints = [new HttpEndpoint({ ...http, listen: c.controlSocket })];
    if (c.httpListen) this.endpoints.push(new HttpEndpoint({ ...http, listen: c.httpListen }));
    for (const e of this.endpoints) await e.start();
    this.metrics.bind({
      peers: () => this.bgp.peerStatuses(),
      ipamUsage: () => this.ipam.usage(),
      routes: () => this.routes.stats(),
      spoofDrops: () => this.policy.engine.spoofDrops(),
    });
    this.ready = true;
    this.log.info({ cniSocket: c.cniSocket, controlSocket: c.controlSocket }, 'agent ready');
  }

  /**
   * etcd mode: the agent detects its address and creates or updates its Node. Kubernetes mode:
   * the kubelet owns the Node; the agent reads its address from it and writes its annotations.
   */
  private async register(): Promise<void> {
    const c = this.config;
    const common = {
      name: c.nodeName,
      ...(c.asNumber !== undefined ? { asn: c.asNumber } : {}),
      ...(c.routeReflectorClusterId ? { routeReflectorClusterId: c.routeReflectorClusterId } : {}),
    };
    if (c.datastore === 'kubernetes') {
      const adopted = await adoptNode(this.datastore, {
        ...common,
        ...(c.nodeIPv4 ? { ipv4: c.nodeIPv4 } : {}),
        ...(c.nodeIPv6 ? { ipv6: c.nodeIPv6 } : {}),
      });
      this.nodeIPv4 = adopted.ipv4;
      this.nodeIPv6 = adopted.ipv6;
      if (!this.nodeIPv4 && !this.nodeIPv6)
        throw new Error(
          `Node ${c.nodeName} has no InternalIP and no tern.network/bgp-ipv4-address (or -ipv6-) annotation`,
        );
    } else {
      this.nodeIPv4 = c.nodeIPv4 ?? (await detectNodeAddress(4));
      this.nodeIPv6 = c.nodeIPv6 ?? (await detectNodeAddress(6));
      if (!this.nodeIPv4 && !this.nodeIPv6)
        throw new Error('no node address given (--node-ipv4) and none found on the uplink');
      await registerNode(this.datastore, {
        ...common,
        ...(this.nodeIPv4 ? { ipv4: this.nodeIPv4 } : {}),
        ...(this.nodeIPv6 ? { ipv6: this.nodeIPv6 } : {}),
        labels: c.nodeLabels,
      });
    }
    this.log.info({ node: c.nodeName, ipv4: this.nodeIPv4, ipv6: this.nodeIPv6 }, 'node registered');
  }

  /** One agent per cluster (the Lease holder) runs the cluster-wide IPAM garbage collection. */
  private startClusterGc(): void {
    const c = this.config;
    if (!ipamGcEnabled(c)) return;
    const log = this.log.child({ component: 'ipam-gc' });
    const elector = new LeaderElector({
      datastore: this.datastore,
      namespace: c.leaderElectionNamespace,
      name: c.leaderElectionLeaseName,
      identity: c.nodeName,
      logger: log,
    });
    this.elector = elector;
    this.clusterGc = new ClusterGc({
      datastore: this.datastore,
      ipam: this.ipam,
      isLeader: () => elector.isLeader(),
      graceMs: c.ipamGcGraceSeconds * 1000,
      intervalMs: c.ipamGcIntervalSeconds * 1000,
      logger: log,
      registry: this.metrics.registry,
      // The view's caches: a pass reads nothing from the API; frees are confirmed by fresh reads.
      snapshot: () => ({
        blocks: this.view.informer('IPAMBlock').list(),
        pods: this.view.informer('Pod').list(),
        nodes: this.view.informer('Node').list(),
      }),
    });
    elector.start();
    this.clusterGc.start();
  }

  private handler?: CniHandler;

  private handleCni(request: Parameters<CniHandler['handle']>[0]) {
    this.handler ??= new CniHandler({
      ipam: new NodeIpam(this.announcingIpam(), {
        node: this.config.nodeName,
        nodeLabels: () =>
          this.view.informer('Node').get({ name: this.config.nodeName })?.metadata.labels ?? {},
      }),
      dataplane: new LinuxDataplane(),
      hooks: this.cniHooks(),
      logger: this.log.child({ component: 'cni' }),
    });
    const started = performance.now();
    const command = request.env.CNI_COMMAND ?? 'unknown';
    return this.handler.handle(request).then((response) => {
      this.metrics.cniOperationSeconds.observe(
        { command, result: response.exitCode === 0 ? 'ok' : 'error' },
        (performance.now() - started) / 1000,
      );
      return response;
    });
  }

  /**
   * IPAM as the CNI handler sees it: an assignment is handed to BGP at once, so a new block (or
   * borrowed address) is announced while the pod's veth is still being made, without waiting
   * for the datastore watch to bring the block back.
   */
  private announcingIpam(): IpamService {
    const ipam = this.ipam;
    return {
      assign: async (req) => {
        const result = await ipam.assign(req);
        this.bgp.assigned(result.addresses).catch((e: unknown) => {
          this.metrics.reconcileErrors.inc({ reconciler: 'bgp' });
          this.log.error({ err: e }, 'BGP reconcile after assign failed');
        });
        // The speaker sends its UPDATEs from a setImmediate; yield once so they leave before the
        // ADD's synchronous plumbing work runs (measured: 4-12 ms of delay otherwise).
        await new Promise((resolve) => setImmediate(resolve));
        return result;
      },
      release: (key) => ipam.release(key),
      allocationsOf: (node) => ipam.allocationsOf(node),
      gc: (isValid, scope) => ipam.gc(isValid, scope),
      usage: () => ipam.usage(),
    };
  }

  private cniHooks(): AgentHooks {
    return {
      lookupPod: async (namespace, name) => {
        const pod =
          this.view.informer('Pod').get({ namespace, name }) ??
          (await this.datastore.get('Pod', { namespace, name }));
        return pod
          ? { labels: pod.metadata.labels ?? {}, annotations: pod.metadata.annotations ?? {} }
          : undefined;
      },
      lookupNamespace: async (name) => {
        const ns =
          this.view.informer('Namespace').get({ name }) ?? (await this.datastore.get('Namespace', { name }));
        return ns ? { annotations: ns.metadata.annotations ?? {} } : undefined;
      },
      onAttached: (ep) => {
        for (const ip of ep.ips)
          this.routes.upsert('pod', { dst: formatCidr(hostCidr(ip)), dev: ep.hostVeth });
        this.policy.attached(
          ep.attachment.namespace,
          ep.attachment.pod,
          ep.ips.map(formatIp),
          ep.attachment.ifname,
        );
      },
      beforeReturnAdd: (ep) => this.waitForPolicy(ep),
      onDetached: (d) => {
        for (const ip of d.ips) this.routes.remove('pod', formatCidr(hostCidr(ip)));
      },
    };
  }

  /** A pod that has a Pod object may be selected by policy: ADD returns only once it is programmed. */
  private async waitForPolicy(ep: PodEndpoint): Promise<void> {
    const { namespace, pod } = ep.attachment;
    const key = { namespace, name: pod };
    if (!this.view.informer('Pod').get(key)) {
      if (!(await this.datastore.get('Pod', key))) return; // not a Kubernetes pod: no policy can select it
      // Stored but not watched yet: policy needs its labels, which arrive with the watch event.
      if (await this.view.whenPresent('Pod', key, 2000)) this.policy.refresh();
    }
    await this.policy.waitForPod(namespace, pod, this.config.policyWaitSeconds * 1000);
  }

  private onClusterChange(kind: string): void {
    if (this.stopped) return;
    // BGP at once: an announcement is what other nodes wait for.
    if (['Node', 'BGPPeer', 'BGPConfiguration', 'IPAMBlock'].includes(kind)) {
      this.bgp.reconcile().catch((e: unknown) => {
        this.metrics.reconcileErrors.inc({ reconciler: 'bgp' });
        this.log.error({ err: e }, 'BGP reconcile failed');
      });
    }
    if (kind === 'IPAMBlock') this.deferred.localRoutes = true;
    if (['Pod', 'Namespace', 'NetworkPolicy', 'ClusterNetworkPolicy', 'IPAMBlock'].includes(kind))
      this.deferred.policy = true;
    this.scheduleDeferred();
  }

  private readonly deferred = { localRoutes: false, policy: false };
  private deferredTimer: NodeJS.Timeout | undefined;

  /**
   * Local routes and policy inputs are recomputed from the whole view (O(cluster)), once for all
   * the changes of a turn, and on a timer rather than an immediate: the UPDATEs the speaker and
   * the route writes the reconciler queued as immediates in this turn go out first. Neither is
   * on a pod's critical path: CNI programs its own pod's route and policy directly.
   */
  private scheduleDeferred(): void {
    this.deferredTimer ??= setTimeout(() => {
      this.deferredTimer = undefined;
      if (this.stopped) return;
      const { localRoutes, policy } = this.deferred;
      this.deferred.localRoutes = this.deferred.policy = false;
      if (localRoutes) this.syncLocalRoutes();
      if (policy) this.policy.refresh();
    }, 0);
  }

  /** Pod routes and block blackholes derive from IPAM: what this node holds and owns. */
  private syncLocalRoutes(): void {
    const node = this.config.nodeName;
    const podRoutes = this.view
      .allocationsOn(node)
      .filter((a) => a.namespace && a.pod && a.ifname)
      .map((a) => ({
        dst: `${a.address}/${a.family === 4 ? 32 : 128}`,
        dev: hostVethName(a.namespace!, a.pod!, a.ifname!),
      }));
    this.routes.setRoutes('pod', podRoutes);
    this.routes.setRoutes(
      'block',
      this.view.blocksOf(node).map((dst) => ({ dst })),
    );
  }

  /** Stops serving and watching. Routes, veths and rules stay in the kernel for the next run. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ready = false;
    if (this.deferredTimer) clearTimeout(this.deferredTimer);
    await this.cni?.close();
    await this.clusterGc?.stop();
    await this.elector?.stop();
    for (const e of this.endpoints) await e.stop();
    await this.bgp?.stop();
    await this.policy?.stop();
    await this.routes?.stop();
    await this.view?.stop();
    await this.ipam?.close();
    if (this.ownsDatastore) await this.datastore?.close();
  }
}
