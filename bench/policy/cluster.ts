// The benchmark cluster: 1000 pods over 20 namespaces, 500 NetworkPolicies of five shapes
// (pod selector + named port, namespace AND pod selector + port range, ipBlock with except,
// egress to namespaces + UDP, two peers + named port and UDP), deterministic from a fixed seed.
import { hostVethName, type NetworkPolicy } from '../../model/index.js';
import type { PolicyNamespace, PolicyPod } from '../../policy/index.js';

export const PODS = 1000;
export const POLICIES = 500;
export const NAMESPACES = 20;
/** Pods on the measured node (the first LOCAL generated pods, client and server included). */
export const LOCAL = 110;

// ---- a deterministic cluster ------------------------------------------------------------------

export const apps = Array.from({ length: 10 }, (_, i) => `app${i}`);
export const tiers = ['web', 'api', 'db'];

export interface BenchCluster {
  readonly pods: PolicyPod[];
  readonly namespaces: PolicyNamespace[];
  readonly policies: NetworkPolicy[];
}

/**
 * The same cluster on every call: `client` and `server` (ns0, labels app0/web and app0/db, on
 * `node`) plus generated pods, half the policies selecting by app, and a policy that lets the
 * client reach the server on TCP 7000.
 */
export function benchCluster(node: string, client: PolicyPod, server: PolicyPod): BenchCluster {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => ({
    name: `ns${i}`,
    labels: { team: `team${i % 5}`, env: i % 2 ? 'prod' : 'dev' },
  }));
  const pods: PolicyPod[] = [client, server];
  for (let i = pods.length; i < PODS; i++) {
    const local = i < LOCAL;
    pods.push({
      namespace: `ns${i % NAMESPACES}`,
      name: `pod${i}`,
      labels: { app: apps[rand(apps.length)]!, tier: tiers[rand(3)]!, idx: String(i) },
      ips: [`10.60.${i >> 8}.${i & 255}`, `fd00:60::${i.toString(16)}`],
      node: local ? node : `node${i % 9}`,
      ports: [
        { name: 'http', port: 8080, protocol: 'TCP' },
        { name: 'metrics', port: 9090, protocol: 'TCP' },
      ],
      hostInterfaces: local ? [hostVethName(`ns${i % NAMESPACES}`, `pod${i}`, 'eth0')] : [],
    });
  }
  const policies: NetworkPolicy[] = [];
  for (let i = 0; i < POLICIES; i++) {
    const ns = `ns${i % NAMESPACES}`;
    const app = apps[rand(apps.length)]!;
    const kind = i % 5;
    const spec: NetworkPolicy['spec'] =
      kind === 0
        ? {
            podSelector: { matchLabels: { app } },
            ingress: [
              {
                from: [{ podSelector: { matchLabels: { tier: tiers[rand(3)]! } } }],
                ports: [{ port: 'http' }],
              },
            ],
          }
        : kind === 1
          ? {
              podSelector: { matchLabels: { app, tier: 'db' } },
              ingress: [
                {
                  from: [
                    {
                      namespaceSelector: { matchLabels: { team: `team${rand(5)}` } },
                      podSelector: { matchLabels: { tier: 'api' } },
                    },
                  ],
                  ports: [{ port: 5432 }, { port: 6000, endPort: 6100 }],
                },
              ],
            }
          : kind === 2
            ? {
                podSelector: { matchLabels: { app } },
                ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`10.60.${rand(4)}.0/24`] } }] }],
              }
            : kind === 3
              ? {
                  podSelector: {
                    matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }],
                  },
                  policyTypes: ['Egress'],
                  egress: [
                    { to: [{ namespaceSelector: { matchLabels: { env: 'prod' } } }] },
                    { ports: [{ protocol: 'UDP', port: 53 }] },
                  ],
                }
              : {
                  podSelector: { matchLabels: { app } },
                  ingress: [
                    {
                      from: [
                        { podSelector: { matchLabels: { app: apps[rand(apps.length)]! } } },
                        { namespaceSelector: { matchLabels: { env: 'dev' } } },
                      ],
                      ports: [{ port: 'metrics' }, { protocol: 'UDP', port: 8125 }],
                    },
                  ],
                };
    policies.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: ns, name: `pol${i}` },
      spec,
    });
  }
  // Whatever else selects them, the client may talk to the server on 7000.
  policies.push({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace: 'ns0', name: 'client-to-server' },
    spec: {
      podSelector: { matchLabels: { app: 'app0' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ port: 7000 }] }],
      egress: [{ to: [{ podSelector: { matchLabels: { tier: 'db' } } }], ports: [{ port: 7000 }] }],
    },
  });
  return { pods, namespaces, policies };
}
