// The lab's topology: what `ternctl lab up` builds. Read from YAML (--topology) or the
// built-in default, validated at the edge with errors that name the bad field.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_AS_NUMBER, ValidationError, parseCidr, parseIp } from '../../model/index.js';

/** Name of the control namespace (after the lab's prefix) that holds the Kubernetes control plane. */
export const CONTROL_NAME = 'ctl';

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const name = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .regex(NAME, 'must be lowercase letters, digits and -');
const asn = z.number().int().min(1).max(4294967295);
const labels = z.record(z.string(), z.string());

const nodeSchema = z.object({
  name: name(10),
  asn: asn.optional(),
  labels: labels.optional(),
  routeReflector: z.boolean().optional(),
});

const podSchema = z.object({
  namespace: name(20),
  name: name(20),
  node: z.string(),
  labels: labels.optional(),
  ip: z.string().optional(),
  ports: z.array(z.number().int().min(1).max(65535)).optional(),
});

/**
 * How the nodes exchange routes:
 * - `reflector` (default): the ToR is an iBGP route reflector in the nodes' AS, no node mesh;
 * - `mesh`: iBGP full mesh between nodes, the ToR only switches;
 * - `node-reflector`: no mesh, the nodes marked `routeReflector` reflect, the ToR only switches;
 * - `ebgp-tor`: node mesh plus an eBGP session from every node to the ToR (its own AS), which
 *   originates `tor.originate` towards the nodes.
 */
export const BGP_MODES = ['reflector', 'mesh', 'node-reflector', 'ebgp-tor'] as const;
export type BgpMode = (typeof BGP_MODES)[number];

export const topologySchema = z
  .object({
    tor: z
      .object({
        kind: z.enum(['tern', 'bird', 'frr']).default('tern'),
        asn: asn.default(64512),
        /** Prefixes the ToR originates (ebgp-tor mode), e.g. an external network behind it. */
        originate: z.array(z.string()).default([]),
      })
      .default({ kind: 'tern', asn: 64512, originate: [] }),
    bgp: z
      .object({
        mode: z.enum(BGP_MODES).default('reflector'),
        /** The cluster's AS (BGPConfiguration); default the ToR's in reflector mode, else 64512. */
        asn: asn.optional(),
      })
      .default({ mode: 'reflector' }),
    /** The rack's shared L2 segment: the ToR takes the first address, nodes the following ones. */
    rackSubnet: z.string().default('10.77.0.0/24'),
    pools: z
      .array(z.object({ name: name(40), cidr: z.string(), blockSize: z.number().int().optional() }))
      .default([{ name: 'default-ipv4', cidr: '10.244.0.0/16', blockSize: 26 }]),
    nodes: z.array(nodeSchema).min(1, 'at least one node is needed'),
    namespaces: z.array(z.object({ name: name(20), labels: labels.optional() })).default([]),
    pods: z.array(podSchema).default([]),
    /** NetworkPolicy objects (as a user would write them for kubectl). */
    policies: z.array(z.record(z.string(), z.unknown())).default([]),
    /**
     * A real Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler) in
     * the control namespace `<prefix>ctl` on the rack (`ternctl lab up --kubernetes`).
     */
    kubernetes: z.boolean().default(false),
  })
  .superRefine((t, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    const nodeNames = new Set<string>();
    t.nodes.forEach((n, i) => {
      if (nodeNames.has(n.name)) issue(['nodes', i, 'name'], `duplicate node ${n.name}`);
      nodeNames.add(n.name);
    });
    const nsNames = new Set(t.namespaces.map((n) => n.name));
    const podKeys = new Set<string>();
    t.pods.forEach((p, i) => {
      if (!nodeNames.has(p.node)) issue(['pods', i, 'node'], `unknown node ${JSON.stringify(p.node)}`);
      if (!nsNames.has(p.namespace))
        issue(['pods', i, 'namespace'], `unknown namespace ${JSON.stringify(p.namespace)}`);
      const key = `${p.namespace}/${p.name}`;
      if (podKeys.has(key)) issue(['pods', i, 'name'], `duplicate pod ${key}`);
      podKeys.add(key);
      if (p.ip !== undefined) {
        try {
          parseIp(p.ip);
        } catch (e) {
          issue(['pods', i, 'ip'], (e as Error).message.replace(/^address: /, ''));
        }
      }
    });
    try {
      const rack = parseCidr(t.rackSubnet);
      // Network and broadcast addresses, the ToR, then one address per node.
      if (rack.family !== 4 || 2 ** (32 - rack.prefixLength) < t.nodes.length + 3) {
        issue(['rackSubnet'], `must be an IPv4 subnet with room for the ToR and ${t.nodes.length} nodes`);
      }
    } catch (e) {
      issue(['rackSubnet'], (e as Error).message.replace(/^cidr: /, ''));
    }
    if (t.kubernetes && nodeNames.has(CONTROL_NAME))
      issue(['nodes'], `a node may not be named ${CONTROL_NAME}: the control namespace has that name`);
    if (t.bgp.mode === 'node-reflector' && !t.nodes.some((n) => n.routeReflector)) {
      issue(['nodes'], 'node-reflector mode needs at least one node with routeReflector: true');
    }
    if (t.bgp.mode === 'ebgp-tor') {
      const clusterAsn = t.bgp.asn ?? DEFAULT_AS_NUMBER;
      t.nodes.forEach((n, i) => {
        if ((n.asn ?? clusterAsn) === t.tor.asn)
          issue(['tor', 'asn'], `must differ from node ${t.nodes[i]!.name}'s AS in ebgp-tor mode`);
      });
    }
    t.tor.originate.forEach((p, i) => {
      try {
        parseCidr(p);
      } catch (e) {
        issue(['tor', 'originate', i], (e as Error).message.replace(/^cidr: /, ''));
      }
    });
    t.pools.forEach((p, i) => {
      try {
        parseCidr(p.cidr);
      } catch (e) {
        issue(['pools', i, 'cidr'], (e as Error).message.replace(/^cidr: /, ''));
      }
    });
  });

export type Topology = z.output<typeof topologySchema>;

/** The AS the cluster's nodes use unless a node sets its own. */
export function clusterAsn(t: Topology): number {
  return t.bgp.asn ?? (t.bgp.mode === 'reflector' ? t.tor.asn : DEFAULT_AS_NUMBER);
}

/** Whether the ToR namespace runs a BGP daemon (else it is a plain switch and router). */
export function torSpeaks(t: Topology): boolean {
  return t.bgp.mode === 'reflector' || t.bgp.mode === 'ebgp-tor';
}

function pathString(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    '',
  );
}

export function parseTopology(input: unknown, source = 'topology'): Topology {
  const r = topologySchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ValidationError(`${source}: ${pathString(issue.path)}`, issue.message);
  }
  return r.data;
}

export function loadTopology(file: string): Topology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ValidationError(file, `cannot read topology file: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ValidationError(file, `not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseTopology(doc, file);
}

/** Three nodes behind one ToR; namespaces x, y, z with pods a, b, c spread over the nodes. */
export function defaultTopology(nodeCount = 3): Topology {
  const nodes = Array.from({ length: nodeCount }, (_, i) => ({ name: `node${i + 1}` }));
  const namespaces = ['x', 'y', 'z'].map((n) => ({
    name: n,
    labels: { tenant: n === 'z' ? 'restricted' : 'open' },
  }));
  const pods = namespaces.flatMap((ns, i) =>
    ['a', 'b', 'c'].map((p, j) => ({
      namespace: ns.name,
      name: p,
      node: nodes[(i + j) % nodes.length]!.name,
      labels: { pod: p },
      ports: [80, 81],
    })),
  );
  const samplePolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'z-only-from-x', namespace: 'z' },
    spec: {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } } }] }],
    },
  };
  return parseTopology({ nodes, namespaces, pods, policies: [samplePolicy] }, 'default topology');
}
