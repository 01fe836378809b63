// A small cluster for compiler tests: namespaces x and y, pods a and b in each; x's pods run
// on this node ("n1"), y's on another.
import type { NetworkPolicy } from '../../../model/index.js';
import type { PolicyNamespace, PolicyPod } from '../../../policy/index.js';

export const NODE = 'n1';

export const namespaces: PolicyNamespace[] = [
  { name: 'x', labels: { team: 'red' } },
  { name: 'y', labels: { team: 'blue' } },
];

const ports = [
  { name: 'serve-80-tcp', port: 80, protocol: 'TCP' as const },
  { name: 'serve-80-udp', port: 80, protocol: 'UDP' as const },
  { name: 'web', port: 8080, protocol: 'TCP' as const },
];

export function pod(
  namespace: string,
  name: string,
  n: number,
  local: boolean,
  extra: Partial<PolicyPod> = {},
): PolicyPod {
  return {
    namespace,
    name,
    labels: { pod: name },
    ips: [`10.0.${namespace === 'x' ? 0 : 1}.${n}`, `fd00::${namespace === 'x' ? '' : '1:'}${n}`],
    node: local ? NODE : 'n2',
    ports:
      name === 'b' ? ports.filter((p) => p.name !== 'web').map((p) => ({ ...p, port: p.port + 1 })) : ports,
    hostInterfaces: local ? [`tern${namespace}${name}0000000`.slice(0, 15)] : [],
    ...extra,
  };
}

export const pods: PolicyPod[] = [
  pod('x', 'a', 1, true),
  pod('x', 'b', 2, true),
  pod('y', 'a', 1, false),
  pod('y', 'b', 2, false),
];

export function np(namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace, name }, spec };
}
