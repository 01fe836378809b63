// Kubernetes objects → the compiler's normalised inputs.
import { hostVethName, type Namespace, type Pod } from '../model/index.js';
import type { NamedContainerPort, PolicyNamespace, PolicyPod, Protocol } from './types.js';

/**
 * The PolicyPod of a Pod, or null when policy does not apply to it: hostNetwork pods (their
 * address is the node's) and finished pods (their address may already be someone else's).
 * `ifnames` are the pod's CNI attachments tern created (host veth names derive from them).
 */
export function policyPodFromResource(pod: Pod, ifnames: readonly string[] = ['eth0']): PolicyPod | null {
  if (pod.spec?.hostNetwork) return null;
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return null;
  const namespace = pod.metadata.namespace!;
  const name = pod.metadata.name;
  const ips = new Set<string>();
  for (const p of pod.status?.podIPs ?? []) if (p.ip) ips.add(p.ip);
  if (pod.status?.podIP) ips.add(pod.status.podIP);
  const ports: NamedContainerPort[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name)
        ports.push({ name: p.name, port: p.containerPort, protocol: (p.protocol ?? 'TCP') as Protocol });
    }
  }
  return {
    namespace,
    name,
    labels: { ...pod.metadata.labels },
    ips: [...ips],
    node: pod.spec?.nodeName,
    ports,
    hostInterfaces: ifnames.map((i) => hostVethName(namespace, name, i)),
  };
}

export function policyNamespaceFromResource(ns: Namespace): PolicyNamespace {
  return { name: ns.metadata.name, labels: { ...ns.metadata.labels } };
}
