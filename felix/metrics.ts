// The agent's Prometheus metrics. One registry per agent so tests can run several.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class AgentMetrics {
  readonly registry = new Registry();

  readonly routeProgrammingSeconds = new Histogram({
    name: 'tern_route_programming_seconds',
    help: 'Time from a desired-route change to the kernel acknowledging it',
    labelNames: ['class'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  readonly bgpSessionEstablished = new Gauge({
    name: 'tern_bgp_session_established',
    help: '1 when the BGP session to the peer is Established, else 0',
    labelNames: ['peer', 'source'] as const,
    registers: [this.registry],
  });

  readonly bgpPrefixesReceived = new Gauge({
    name: 'tern_bgp_prefixes_received',
    help: 'Prefixes received from the peer',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });

  readonly bgpPrefixesAdvertised = new Gauge({
    name: 'tern_bgp_prefixes_advertised',
    help: 'Prefixes advertised to the peer',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });

  readonly cniOperationSeconds = new Histogram({
    name: 'tern_cni_operation_seconds',
    help: 'CNI operation latency inside the agent',
    labelNames: ['command', 'result'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });

  readonly ipamAddressesUsed = new Gauge({
    name: 'tern_ipam_addresses_used',
    help: 'Addresses allocated in the pool',
    labelNames: ['pool'] as const,
    registers: [this.registry],
  });

  readonly ipamAddressesFree = new Gauge({
    name: 'tern_ipam_addresses_free',
    help: 'Addresses still free in the pool (unclaimed blocks included)',
    labelNames: ['pool'] as const,
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
  }
}
