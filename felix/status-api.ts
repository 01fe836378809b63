// The JSON routes ternctl reads from an agent (over its control socket).
import { bindingsOf } from '../ipam/index.js';
import { ValidationError } from '../model/index.js';
import type { ExplainQuery, Protocol } from '../policy/index.js';
import type { Agent } from './agent.js';
import type { StatusRoute } from './http-server.js';

function explainPeer(text: unknown, field: string) {
  if (typeof text !== 'string' || !text) return undefined;
  if (/^[0-9a-f.:]+$/i.test(text)) return { ip: text };
  const [namespace, name, ...rest] = text.split('/');
  if (!namespace || !name || rest.length)
    throw new ValidationError(field, `${JSON.stringify(text)} is not <namespace>/<pod> or an IP`);
  return { pod: { namespace, name } };
}

export function statusRoutes(agent: Agent): Record<string, StatusRoute> {
  return {
    '/v1/status': async () => ({
      node: agent.config.nodeName,
      ipv4: agent.nodeIPv4,
      ipv6: agent.nodeIPv6,
      peers: agent.bgp.peerStatuses(),
      originated: agent.bgp.originatedPrefixes(),
      routes: agent.routes.stats(),
    }),
    '/v1/bgp/peers': async () => agent.bgp.peerStatuses(),
    '/v1/bgp/rib': async (url) => agent.bgp.rib(url.searchParams.get('prefix') ?? undefined),
    '/v1/routes': async () => agent.routes.installed(),
    '/v1/ipam': async () => ({
      pools: await agent.ipam.usage(),
      blocks: agent.view.blocksOf(agent.config.nodeName),
      allocations: agent.view.allocationsOn(agent.config.nodeName),
      // Identity-bound addresses of the whole cluster: they move between nodes.
      bindings: bindingsOf(agent.view.list('IPAMBlock'), Date.now()),
    }),
    '/v1/ipam/release': async (_url, body) => {
      const address = (body as { address?: unknown } | undefined)?.address;
      if (typeof address !== 'string')
        throw new ValidationError('address', 'must name the address to release');
      return agent.ipam.releaseAddress(address);
    },
    '/v1/policy/explain': async (_url, body) => {
      const b = (body ?? {}) as Record<string, unknown>;
      const target = typeof b.pod === 'string' ? b.pod.split('/') : [];
      if (target.length !== 2 || !target[0] || !target[1])
        throw new ValidationError('pod', 'must be <namespace>/<pod>');
      const query: ExplainQuery = {
        ...(explainPeer(b.from, 'from') ? { from: explainPeer(b.from, 'from') } : {}),
        ...(explainPeer(b.to, 'to') ? { to: explainPeer(b.to, 'to') } : {}),
        ...(b.port !== undefined ? { port: b.port as number | string } : {}),
        ...(b.protocol !== undefined ? { protocol: b.protocol as Protocol } : {}),
      };
      return agent.policy.engine.explain(target[0], target[1], query);
    },
  };
}
