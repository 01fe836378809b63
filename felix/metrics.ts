// The agent's Prometheus metrics. One registry per agent so tests can run several. Gauges of
// state (BGP sessions, prefixes, IPAM usage, routes) are read at scrape time from the sources
// the agent binds, so a scrape never shows a stale value.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricSources {
  peers(): ReadonlyArray<{
    address: string;
    source: string;
    state: string;
    prefixesReceived: number;
    prefixesAdvertised: number;
  }>;
  ipamUsage(): Promise<ReadonlyArray<{ pool: string; addresses: { used: number; free: number } }>>;
  routes(): { installed: number; waiting: number; conflicts: number; desired: Record<string, number> };
  /** Forged-source packets the raw table dropped (kernel rule counters). */
  spoofDrops(): Promise<ReadonlyArray<{ family: 4 | 6; reason: string; packets: number }>>;
}

export class AgentMetrics {
  readonly registry = new Registry();
  private sources: MetricSources | undefined;

  readonly routeProgrammingSeconds = new Histogram({
    name: 'tern_route_programming_seconds',
    help: 'Time from a desired-route change to the kernel acknowledging it',
    labelNames: ['class'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  readonly cniOperationSeconds = new Histogram({
    name: 'tern_cni_operation_seconds',
    help: 'CNI operation latency inside the agent',
    labelNames: ['command', 'result'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });

  readonly reconcileErrors = new Counter({
    name: 'tern_reconcile_errors_total',
    help: 'Failed reconcile passes, by reconciler',
    labelNames: ['reconciler'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tern_node_' });
    const sources = () => this.sources;
    const peerGauge = (
      name: string,
      help: string,
      value: (p: ReturnType<MetricSources['peers']>[number]) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['peer', 'source'] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const p of sources()?.peers() ?? []) this.set({ peer: p.address, source: p.source }, value(p));
        },
      });
    peerGauge(
      'tern_bgp_session_established',
      '1 when the BGP session to the peer is Established, else 0',
      (p) => (p.state === 'Established' ? 1 : 0),
    );
    peerGauge('tern_bgp_prefixes_received', 'Prefixes received from the peer', (p) => p.prefixesReceived);
    peerGauge('tern_bgp_prefixes_advertised', 'Prefixes advertised to the peer', (p) => p.prefixesAdvertised);

    const ipamGauge = (name: string, help: string, key: 'used' | 'free') =>
      new Gauge({
        name,
        help,
        labelNames: ['pool'] as const,
        registers: [this.registry],
        async collect() {
          const pools =
            (await sources()
              ?.ipamUsage()
              .catch(() => undefined)) ?? [];
          this.reset();
          for (const p of pools) this.set({ pool: p.pool }, p.addresses[key]);
        },
      });
    ipamGauge('tern_ipam_addresses_used', 'Addresses allocated in the pool', 'used');
    ipamGauge(
      'tern_ipam_addresses_free',
      'Addresses still free in the pool (unclaimed blocks included)',
      'free',
    );

    new Gauge({
      name: 'tern_routes',
      help: "Routes of tern's protocols: desired per class, installed, waiting for an interface, in conflict",
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const r = sources()?.routes();
        this.reset();
        if (!r) return;
        for (const [cls, n] of Object.entries(r.desired)) this.set({ state: `desired_${cls}` }, n);
        this.set({ state: 'installed' }, r.installed);
        this.set({ state: 'waiting' }, r.waiting);
        this.set({ state: 'conflict' }, r.conflicts);
      },
    });

    new Counter({
      name: 'tern_spoofed_packets_dropped_total',
      help: "Packets from a pod interface whose source address is not that pod's, dropped before conntrack, by family and reason",
      labelNames: ['family', 'reason'] as const,
      registers: [this.registry],
      async collect() {
        const drops =
          (await sources()
            ?.spoofDrops()
            .catch(() => undefined)) ?? [];
        this.reset();
        for (const d of drops) this.inc({ family: `ipv${d.family}`, reason: d.reason }, d.packets);
      },
    });
  }

  /** Where the state gauges read from at scrape time. */
  bind(sources: MetricSources): void {
    this.sources = sources;
  }
}
