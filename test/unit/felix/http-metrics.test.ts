// The agent's local HTTP endpoint and its metrics: health answers, and a scrape that shows
// route programming latency, BGP session state and prefix counts, CNI latency and IPAM usage
// as they are at scrape time.
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpEndpoint } from '../../../felix/http-server.js';
import { AgentMetrics } from '../../../felix/metrics.js';

const dir = mkdtempSync(join(tmpdir(), 'tern-felix-http-'));
const socketPath = join(dir, 'agent.sock');
const metrics = new AgentMetrics();
let ready: string | undefined = 'starting';
let live: string | undefined;
let state = 'Established';
let used = 3;
let spoofed = 5;
const endpoint = new HttpEndpoint({
  listen: socketPath,
  registry: metrics.registry,
  liveness: () => live,
  readiness: () => ready,
  routes: { '/v1/echo': async (url) => ({ q: url.searchParams.get('q') }) },
});

function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  metrics.bind({
    peers: () => [
      { address: '10.0.0.2', source: 'node:b', state, prefixesReceived: 4, prefixesAdvertised: 2 },
    ],
    ipamUsage: async () => [{ pool: 'default-ipv4', addresses: { used, free: 1000 - used } }],
    routes: () => ({ installed: 7, waiting: 1, conflicts: 0, desired: { pod: 3, block: 1, bgp: 3 } }),
    spoofDrops: async () => [
      { family: 4, reason: 'not-own', packets: spoofed },
      { family: 6, reason: 'node-address', packets: 2 },
    ],
  });
  await endpoint.start();
});

afterAll(async () => {
  await endpoint.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('agent HTTP endpoint', () => {
  it('/readyz is 503 with the reason until ready, then 200; /livez follows liveness', async () => {
    expect(await get('/readyz')).toEqual({ status: 503, body: 'starting' });
    ready = undefined;
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ok' });
    expect(await get('/livez')).toEqual({ status: 200, body: 'ok' });
    live = 'event loop stalled';
    expect(await get('/livez')).toEqual({ status: 503, body: 'event loop stalled' });
    live = undefined;
  });

  it('/metrics shows route programming and CNI latency histograms, BGP session state and prefix counts, IPAM usage, routes', async () => {
    metrics.routeProgrammingSeconds.observe({ class: 'pod' }, 0.002);
    metrics.cniOperationSeconds.observe({ command: 'ADD', result: 'ok' }, 0.04);
    const { status, body } = await get('/metrics');
    expect(status).toBe(200);
    expect(body).toContain('tern_route_programming_seconds_bucket{le="0.0025",class="pod"} 1');
    expect(body).toContain('tern_cni_operation_seconds_count{command="ADD",result="ok"} 1');
    expect(body).toContain('tern_bgp_session_established{peer="10.0.0.2",source="node:b"} 1');
    expect(body).toContain('tern_bgp_prefixes_received{peer="10.0.0.2",source="node:b"} 4');
    expect(body).toContain('tern_bgp_prefixes_advertised{peer="10.0.0.2",source="node:b"} 2');
    expect(body).toContain('tern_ipam_addresses_used{pool="default-ipv4"} 3');
    expect(body).toContain('tern_ipam_addresses_free{pool="default-ipv4"} 997');
    expect(body).toContain('tern_routes{state="waiting"} 1');
    expect(body).toContain('tern_spoofed_packets_dropped_total{family="ipv4",reason="not-own"} 5');
    expect(body).toContain('tern_spoofed_packets_dropped_total{family="ipv6",reason="node-address"} 2');
    expect(body).toContain('tern_node_process_cpu_seconds_total');
  });

  it('state gauges are read at scrape time: a session going down and an allocation show at the next scrape', async () => {
    state = 'Active';
    used = 4;
    spoofed = 9;
    const { body } = await get('/metrics');
    expect(body).toContain('tern_spoofed_packets_dropped_total{family="ipv4",reason="not-own"} 9');
    expect(body).toContain('tern_bgp_session_established{peer="10.0.0.2",source="node:b"} 0');
    expect(body).toContain('tern_ipam_addresses_used{pool="default-ipv4"} 4');
  });

  it('JSON routes answer; an unknown path is a 404 naming it', async () => {
    expect(await get('/v1/echo?q=x')).toEqual({ status: 200, body: '{"q":"x"}' });
    const r = await get('/v1/nope');
    expect(r.status).toBe(404);
    expect(r.body).toContain('/v1/nope');
  });
});
