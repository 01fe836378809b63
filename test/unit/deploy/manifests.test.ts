import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CRD_DEFS } from '../../../deploy/kubernetes/crds.js';
import { RBAC_NEEDS } from '../../../deploy/kubernetes/rbac-needs.js';
import { procSysNet } from '../../../kernel/sysfs.js';
import { agentConfigSchema, ipamGcEnabled } from '../../../felix/config.js';
import { envNameOf, loadConfig } from '../../../model/config.js';
import { KINDS, parseResource, type Kind } from '../../../model/index.js';

const DIR = fileURLToPath(new URL('../../../deploy/kubernetes/', import.meta.url));
const CONTAINERFILE = readFileSync(
  fileURLToPath(new URL('../../../deploy/Containerfile', import.meta.url)),
  'utf8',
);

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } & Record<
  string,
  unknown
>;

function load(file: string): Obj[] {
  return parseAllDocuments(readFileSync(DIR + file, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
    return d.toJS() as Obj;
  });
}
// The network-policy-api CRD sits in a directory of its own (copied from the Go module).
const yamlFiles = [
  ...readdirSync(DIR).filter((f) => f.endsWith('.yaml')),
  ...readdirSync(DIR + 'network-policy-api').map((f) => `network-policy-api/${f}`),
];
/** The Kubernetes objects (kustomization.yaml is kustomize's input, not an object). */
const all = yamlFiles
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) => load(f).map((o) => ({ file: f, o })));
const find = (kind: string, name: string): Obj => {
  const hit = all.find(({ o }) => o.kind === kind && o.metadata.name === name);
  if (!hit) throw new Error(`no ${kind} ${name}`);
  return hit.o;
};

// ---- DaemonSet shapes (only the fields the tests read) ----
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Probe {
  httpGet: { host?: string; port: number; path: string };
}
interface Container {
  name: string;
  image: string;
  command: string[];
  env?: EnvVar[];
  securityContext: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts: Array<{ name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}
interface PodSpec {
  serviceAccountName: string;
  hostNetwork: boolean;
  dnsPolicy: string;
  tolerations: Array<{ operator: string; key?: string }>;
  initContainers: Container[];
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string; type?: string }; emptyDir?: object }>;
}
const ds = find('DaemonSet', 'tern-node') as Obj & { spec: { template: { spec: PodSpec } } };
const pod = ds.spec.template.spec;
const agent = pod.containers.find((c) => c.name === 'tern-node')!;
const installer = pod.initContainers.find((c) => c.name === 'install-cni')!;
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
const hostPathOf = (c: Container, mountPath: string): string | undefined => {
  const m = c.volumeMounts.find((v) => v.mountPath === mountPath);
  return pod.volumes.find((v) => v.name === m?.name)?.hostPath?.path;
};

describe('every manifest parses', () => {
  it('each YAML file in deploy/kubernetes parses into objects with apiVersion, kind and metadata.name', () => {
    expect(yamlFiles.length).toBeGreaterThanOrEqual(6);
    for (const { file, o } of all) {
      expect(o.apiVersion, file).toMatch(/\S/);
      expect(o.kind, file).toMatch(/\S/);
      expect(o.metadata.name, file).toMatch(/^[a-z0-9.-]+$/);
    }
  });

  it('kustomization.yaml lists every manifest except the default IPPool (applied once the CRDs exist)', () => {
    const k = load('kustomization.yaml')[0] as Obj & { resources: string[] };
    expect([...k.resources].sort()).toEqual(
      yamlFiles.filter((f) => !['kustomization.yaml', 'default-ippool.yaml'].includes(f)).sort(),
    );
  });

  it('the ClusterNetworkPolicy CRD is the network-policy-api one: pinned version, the plural and storage version tern uses', async () => {
    const script = readFileSync(
      fileURLToPath(new URL('../../../scripts/network-policy-api.mjs', import.meta.url)),
      'utf8',
    );
    const version = /VERSION = '(v[0-9.]+)'/.exec(script)?.[1];
    const crd = find('CustomResourceDefinition', 'clusternetworkpolicies.policy.networking.k8s.io') as Obj & {
      metadata: { annotations: Record<string, string> };
      spec: { names: { plural: string }; versions: Array<{ name: string; storage: boolean }> };
    };
    expect(crd.metadata.annotations['policy.networking.k8s.io/bundle-version']).toBe(version);
    const { PLURALS } = await import('../../../datastore/kubernetes/resources.js');
    expect(crd.spec.names.plural).toBe(PLURALS.ClusterNetworkPolicy);
    const storage = crd.spec.versions.find((v) => v.storage)!.name;
    expect(KINDS.ClusterNetworkPolicy.apiVersion).toBe(`policy.networking.k8s.io/${storage}`);
  });

  it('the tern.network objects shipped (the default IPPool) pass the model validation', () => {
    const ours = all.filter(({ o }) => o.apiVersion === 'tern.network/v1');
    expect(ours.length).toBeGreaterThan(0);
    for (const { o } of ours) expect(() => parseResource(o)).not.toThrow();
  });

  it('namespaced objects live in tern-system, which the manifests create', () => {
    expect(find('Namespace', 'tern-system')).toBeDefined();
    for (const { o } of all.filter(({ o }) =>
      ['ServiceAccount', 'DaemonSet', 'Role', 'RoleBinding'].includes(o.kind),
    )) {
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('tern-system');
    }
  });
});

describe('the tern-node DaemonSet', () => {
  it('runs on the host network on every node, as the tern-node ServiceAccount', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(pod.serviceAccountName).toBe('tern-node');
    expect(find('ServiceAccount', 'tern-node').metadata.namespace).toBe(ds.metadata.namespace);
  });

  it('is not privileged: drops every capability and adds exactly NET_ADMIN, NET_RAW, NET_BIND_SERVICE, SYS_ADMIN', () => {
    expect(agent.securityContext.privileged).not.toBe(true);
    expect(agent.securityContext.capabilities?.drop).toEqual(['ALL']);
    expect([...(agent.securityContext.capabilities?.add ?? [])].sort()).toEqual(
      ['NET_ADMIN', 'NET_BIND_SERVICE', 'NET_RAW', 'SYS_ADMIN'].sort(),
    );
    // The API server rejects allowPrivilegeEscalation=false together with CAP_SYS_ADMIN.
    expect(agent.securityContext.allowPrivilegeEscalation).not.toBe(false);
    expect(agent.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('the installer runs with no capability at all', () => {
    expect(installer.securityContext.capabilities).toEqual({ drop: ['ALL'] });
    expect(installer.securityContext.allowPrivilegeEscalation).toBe(false);
  });

  it('mounts the host paths the agent uses, /var/run/netns with HostToContainer (no Bidirectional unprivileged)', () => {
    expect(hostPathOf(agent, '/run/tern')).toBe('/run/tern');
    expect(hostPathOf(agent, '/var/run/netns')).toBe('/var/run/netns');
    expect(hostPathOf(agent, '/host/proc/sys/net')).toBe('/proc/sys/net');
    expect(hostPathOf(agent, '/run/xtables.lock')).toBe('/run/xtables.lock');
    expect(agent.volumeMounts.find((m) => m.mountPath === '/var/run/netns')?.mountPropagation).toBe(
      'HostToContainer',
    );
    for (const c of [...pod.containers, ...pod.initContainers]) {
      if (c.securityContext.privileged) continue;
      for (const m of c.volumeMounts)
        expect(m.mountPropagation, `${c.name} ${m.mountPath}`).not.toBe('Bidirectional');
    }
  });

  it('the installer sees the host CNI directories where install-cni.sh writes', () => {
    const env = envOf(installer);
    expect(hostPathOf(installer, env.CNI_BIN_DIR!)).toBe('/opt/cni/bin');
    expect(hostPathOf(installer, env.CNI_NET_DIR!)).toBe('/etc/cni/net.d');
  });

  it('every mount names a volume, and every volume is mounted', () => {
    const containers = [...pod.containers, ...pod.initContainers];
    const mounted = new Set(containers.flatMap((c) => c.volumeMounts.map((m) => m.name)));
    expect(new Set(pod.volumes.map((v) => v.name))).toEqual(mounted);
  });

  it('its TERN_* environment is a valid agent configuration: kubernetes datastore, node name from spec.nodeName', () => {
    const env = envOf(agent);
    const config = loadConfig(agentConfigSchema, { env: { ...env, TERN_NODE_NAME: 'node-1' }, flags: {} });
    expect(config.datastore).toBe('kubernetes');
    expect(agent.env?.find((e) => e.name === 'TERN_NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe(
      'spec.nodeName',
    );
    // Every TERN_ variable is an agent setting, except the documented sysctl root the dataplane reads.
    const keys = new Set(Object.keys(agentConfigSchema.shape).map((k) => envNameOf(k)));
    expect(Object.keys(env).filter((n) => !keys.has(n))).toEqual(['TERN_PROC_SYS_NET']);
    // The agent and the plugin agree on the socket, which lives in the shared /run/tern.
    expect(envOf(installer).TERN_CNI_SOCKET).toBe(config.cniSocket);
    expect(config.cniSocket.startsWith('/run/tern/')).toBe(true);
  });

  it('the agent campaigns for the GC Lease in its own namespace, where the Role grants the Lease verbs', () => {
    const lease = agent.env?.find((e) => e.name === 'TERN_LEADER_ELECTION_NAMESPACE');
    expect(lease?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(find('Role', 'tern-node').metadata.namespace).toBe(ds.metadata.namespace);
    const config = loadConfig(agentConfigSchema, {
      env: {
        ...envOf(agent),
        TERN_NODE_NAME: 'node-1',
        TERN_LEADER_ELECTION_NAMESPACE: ds.metadata.namespace!,
      },
      flags: {},
    });
    expect(ipamGcEnabled(config)).toBe(true);
    expect(config.leaderElectionNamespace).toBe(ds.metadata.namespace);
  });

  it('TERN_PROC_SYS_NET is a writable mount of the host’s /proc/sys/net, and the dataplane writes sysctls under it', () => {
    const root = envOf(agent).TERN_PROC_SYS_NET!;
    expect(hostPathOf(agent, root)).toBe('/proc/sys/net');
    expect(agent.volumeMounts.find((m) => m.mountPath === root)?.readOnly).not.toBe(true);
    expect(procSysNet({ TERN_PROC_SYS_NET: root })).toBe(root);
  });

  it('probes /livez and /readyz on the loopback address and port the agent listens on', () => {
    const config = loadConfig(agentConfigSchema, { env: envOf(agent), flags: {} });
    const [host, port] = config.httpListen.split(':');
    expect(host).toBe('127.0.0.1');
    for (const [probe, path] of [
      [agent.livenessProbe, '/livez'],
      [agent.readinessProbe, '/readyz'],
      [agent.startupProbe, '/livez'],
    ] as const) {
      expect(probe?.httpGet).toEqual({ host, port: Number(port), path });
    }
  });

  it('the commands and the image match what the Containerfile builds', () => {
    expect(agent.command).toEqual(['node', '/opt/tern/dist/felix/main.js']);
    expect(CONTAINERFILE).toContain('CMD ["node", "/opt/tern/dist/felix/main.js"]');
    expect(installer.command).toEqual(['/opt/tern/deploy/kubernetes/install-cni.sh']);
    expect(CONTAINERFILE).toContain('./deploy/kubernetes/install-cni.sh');
    expect(CONTAINERFILE).toContain('--file dist/cni/tern.cjs');
    expect(CONTAINERFILE).toMatch(/^FROM node:20-slim/m);
    expect(CONTAINERFILE).toMatch(/apt-get install[^\n]*iproute2[^\n]*iptables[^\n]*ipset/);
    expect(agent.image).toBe(installer.image);
  });
});

// ---- RBAC against the list of calls the code makes ----
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
const triples = (rules: Rule[]) =>
  rules.flatMap((r) =>
    r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))),
  );
const needed = (namespaced: boolean) =>
  RBAC_NEEDS.filter((n) => !!n.namespaced === namespaced).flatMap((n) =>
    n.verbs.map((v) => `${n.group}/${n.resource}:${v}`),
  );

describe('RBAC grants exactly what the code uses (deploy/kubernetes/rbac-needs.ts)', () => {
  const clusterRole = find('ClusterRole', 'tern-node') as Obj & { rules: Rule[] };
  const role = find('Role', 'tern-node') as Obj & { rules: Rule[] };

  it('the ClusterRole grants the cluster-wide needs, nothing more and nothing less', () => {
    expect(triples(clusterRole.rules).sort()).toEqual(needed(false).sort());
  });

  it('the Role in tern-system grants the namespaced needs (the GC Lease), nothing more', () => {
    expect(triples(role.rules).sort()).toEqual(needed(true).sort());
  });

  it('no rule uses a wildcard or grants escalation verbs', () => {
    for (const r of [...clusterRole.rules, ...role.rules]) {
      for (const v of [...r.apiGroups, ...r.resources, ...r.verbs]) expect(v).not.toContain('*');
      for (const v of r.verbs) expect(['escalate', 'bind', 'impersonate']).not.toContain(v);
    }
  });

  it('the bindings give the roles to the tern-node ServiceAccount in tern-system', () => {
    for (const [kind, roleKind] of [
      ['ClusterRoleBinding', 'ClusterRole'],
      ['RoleBinding', 'Role'],
    ] as const) {
      const b = find(kind, 'tern-node') as Obj & {
        roleRef: { kind: string; name: string };
        subjects: Array<{ kind: string; name: string; namespace: string }>;
      };
      expect(b.roleRef).toMatchObject({ kind: roleKind, name: 'tern-node' });
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'tern-node', namespace: 'tern-system' }]);
    }
  });

  it('every kind of the model is listed and watched (a new kind cannot be forgotten in RBAC)', () => {
    const core: Record<string, [string, string]> = {
      Pod: ['', 'pods'],
      Namespace: ['', 'namespaces'],
      Node: ['', 'nodes'],
      NetworkPolicy: ['networking.k8s.io', 'networkpolicies'],
      Lease: ['coordination.k8s.io', 'leases'],
      ClusterNetworkPolicy: ['policy.networking.k8s.io', 'clusternetworkpolicies'],
    };
    const resourceOf = (kind: Kind): [string, string] => {
      const crd = CRD_DEFS.find((d) => d.kind === kind);
      const r = crd ? (['tern.network', crd.plural] as [string, string]) : core[kind];
      if (!r) throw new Error(`no API resource known for kind ${kind}`);
      return r;
    };
    // A Lease is only read and written by the leader elector (datastore/leader-election.ts), never watched.
    const electorVerbs = ['get', 'create', 'update'];
    for (const kind of Object.keys(KINDS) as Kind[]) {
      const [group, resource] = resourceOf(kind);
      const need = RBAC_NEEDS.find((n) => n.group === group && n.resource === resource);
      expect(need?.verbs, kind).toEqual(
        expect.arrayContaining(kind === 'Lease' ? electorVerbs : ['list', 'watch']),
      );
    }
  });

  it('the agent never creates or deletes Nodes, Pods or Namespaces (the kubelet and users own them)', () => {
    for (const n of RBAC_NEEDS.filter((x) => x.group === '')) {
      expect(n.verbs).not.toContain('create');
      expect(n.verbs).not.toContain('delete');
    }
  });
});
