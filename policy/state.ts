// The policy model of one node, kept incrementally: pods, namespaces and policies in; set
// members and rendered chains out. A pod or namespace change re-evaluates only that object
// against the live sets (so a label change touches set members, not chains); a policy change
// re-renders its own chains and the endpoints it selects. `render()` re-renders only what
// changed and returns an immutable snapshot sharing the unchanged parts.
import { type ClusterNetworkPolicy, type Labels, type NetworkPolicy } from '../model/index.js';
import { clusterNetworkPolicyId, clusterNetworkPolicyRules } from './cluster-network-policy.js';
import { CHAINS, endpointChain, policyChain, setName } from './names.js';
import { cidrMembers, namespaceLabels, podMembers, selectsPod, setType, specFamilies } from './membership.js';
import { networkPolicyId, networkPolicyRules } from './network-policy.js';
import { dispatchChains, endpointChainRules, HOOKS, policyChainRules, staticChains } from './render.js';
import {
  DEFAULT_MARKS,
  podKey,
  TIERS,
  type DesiredSet,
  type DesiredState,
  type Direction,
  type Family,
  type Marks,
  type PolicyNamespace,
  type PolicyPod,
  type PolicyRules,
  type SetRef,
  type SetSpec,
} from './types.js';

export interface PolicyStateOptions {
  /** This node: chains are rendered for its pods only. */
  readonly nodeName: string;
  readonly families?: readonly Family[];
  readonly marks?: Marks;
  /** Endpoints per direction above which interface dispatch is two levels deep (default 16). */
  readonly dispatchTreeAbove?: number;
}

interface Member {
  readonly family: Family;
  readonly member: string;
}

interface SetEntry {
  readonly ref: SetRef;
  readonly users: Set<string>;
  /** Pod-dependent sets: members contributed by each pod. */
  readonly byPod: Map<string, readonly Member[]>;
}

const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];
const tierIndex = new Map(TIERS.map((t, i) => [t.name, i]));

function policyOrder(a: PolicyRules, b: PolicyRules): number {
  return (
    tierIndex.get(a.tier)! - tierIndex.get(b.tier)! ||
    a.priority - b.priority ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

const sameMembers = (a: readonly Member[] | undefined, b: readonly Member[]): boolean =>
  (a?.length ?? 0) === b.length &&
  b.every((m, i) => a![i]!.member === m.member && a![i]!.family === m.family);

export function rulesOf(policy: PolicyRules): SetRef[] {
  const refs: SetRef[] = [];
  for (const d of DIRECTIONS) {
    for (const rule of policy[d] ?? []) {
      refs.push(...(rule.peers ?? []));
      for (const p of rule.ports ?? []) if (p.kind === 'named') refs.push(p.set);
    }
  }
  return refs;
}

export class PolicyState {
  readonly nodeName: string;
  readonly families: readonly Family[];
  readonly marks: Marks;
  private readonly dispatchTreeAbove: number | undefined;

  private readonly pods = new Map<string, PolicyPod>();
  private readonly podsByNamespace = new Map<string, Set<string>>();
  private readonly namespaces = new Map<string, Labels>();
  private readonly mergedNamespaceLabels = new Map<string, Labels>();
  /** Local pods by namespace: the candidates when a policy changes. */
  private readonly localPods = new Map<string, Set<string>>();
  /** Policy ids by the namespace they apply in (null: cluster-scoped). */
  private readonly policiesByNamespace = new Map<string | null, Set<string>>();
  private readonly policies = new Map<string, PolicyRules>();
  private readonly sets = new Map<string, SetEntry>();

  private readonly dirtySets = new Set<string>();
  private readonly dirtyPolicies = new Set<string>();
  private readonly dirtyEndpoints = new Set<string>();

  private readonly renderedSets = new Map<string, DesiredSet>();
  private readonly renderedChains: Record<Family, Map<string, readonly string[]>>;
  private readonly endpoints = new Map<
    string,
    { interfaces: readonly string[]; ingress: PolicyRules[]; egress: PolicyRules[] }
  >();

  constructor(options: PolicyStateOptions) {
    this.nodeName = options.nodeName;
    this.families = options.families ?? [4, 6];
    this.marks = options.marks ?? DEFAULT_MARKS;
    this.dispatchTreeAbove = options.dispatchTreeAbove;
    this.renderedChains = { 4: new Map(), 6: new Map() };
    for (const f of this.families) {
      for (const [name, lines] of staticChains(f, this.marks)) this.renderedChains[f].set(name, lines);
      for (const [name, lines] of dispatchChains([])) this.renderedChains[f].set(name, lines);
    }
  }

  // ---- reads (explain, tests) -----------------------------------------------------------

  pod(namespace: string, name: string): PolicyPod | undefined {
    return this.pods.get(podKey({ namespace, name }));
  }

  allPods(): IterableIterator<PolicyPod> {
    return this.pods.values();
  }

  namespaceLabels(name: string): Labels {
    let labels = this.mergedNamespaceLabels.get(name);
    if (!labels) {
      labels = namespaceLabels(name, this.namespaces.get(name));
      this.mergedNamespaceLabels.set(name, labels);
    }
    return labels;
  }

  policy(id: string): PolicyRules | undefined {
    return this.policies.get(id);
  }

  isLocal(pod: PolicyPod | undefined): boolean {
    return !!pod && pod.node === this.nodeName && pod.hostInterfaces.length > 0;
  }

  /** Policies that govern `pod` in `direction`, in evaluation order. */
  policiesSelecting(pod: PolicyPod, direction: Direction): PolicyRules[] {
    const ns = this.namespaceLabels(pod.namespace);
    const ids = [
      ...(this.policiesByNamespace.get(pod.namespace) ?? []),
      ...(this.policiesByNamespace.get(null) ?? []),
    ];
    return ids
      .map((id) => this.policies.get(id)!)
      .filter((p) => p[direction] !== null && selectsPod(p.appliesTo, pod, ns))
      .sort(policyOrder);
  }

  /** Whether the set (as programmed) holds `member` in `family`. */
  setHas(ref: SetRef, family: Family, member: string): boolean {
    const name = setName(ref.key, ref.spec, family);
    return this.renderedSets.get(name)?.members.includes(member) ?? false;
  }

  // ---- writes ---------------------------------------------------------------------------

  upsertPod(pod: PolicyPod): void {
    const key = podKey(pod);
    const old = this.pods.get(key);
    this.pods.set(key, pod);
    let inNs = this.podsByNamespace.get(pod.namespace);
    if (!inNs) this.podsByNamespace.set(pod.namespace, (inNs = new Set()));
    inNs.add(key);
    if (old) this.localPods.get(old.namespace)?.delete(key);
    if (this.isLocal(pod)) addTo(this.localPods, pod.namespace, key);
    const sameIdentity =
      old && sameJson(old.labels, pod.labels) && sameJson(old.ips, pod.ips) && sameJson(old.ports, pod.ports);
    if (!sameIdentity) for (const entry of this.sets.values()) this.refreshMember(entry, key);
    if (this.isLocal(old) || this.isLocal(pod)) {
      if (!sameIdentity || !sameJson(old?.hostInterfaces, pod.hostInterfaces) || old?.node !== pod.node) {
        this.dirtyEndpoints.add(key);
      }
    }
  }

  removePod(namespace: string, name: string): void {
    const key = podKey({ namespace, name });
    const old = this.pods.get(key);
    if (!old) return;
    this.pods.delete(key);
    this.podsByNamespace.get(namespace)?.delete(key);
    this.localPods.get(namespace)?.delete(key);
    for (const entry of this.sets.values()) this.refreshMember(entry, key);
    if (this.isLocal(old)) this.dirtyEndpoints.add(key);
  }

  upsertNamespace(ns: PolicyNamespace): void {
    if (sameJson(this.namespaces.get(ns.name), ns.labels)) return;
    this.namespaces.set(ns.name, { ...ns.labels });
    this.mergedNamespaceLabels.delete(ns.name);
    this.namespaceChanged(ns.name);
  }

  removeNamespace(name: string): void {
    if (!this.namespaces.delete(name)) return;
    this.mergedNamespaceLabels.delete(name);
    this.namespaceChanged(name);
  }

  upsertNetworkPolicy(np: NetworkPolicy): PolicyRules {
    const rules = networkPolicyRules(np);
    this.upsertPolicyRules(rules);
    return rules;
  }

  removeNetworkPolicy(namespace: string, name: string): void {
    this.removePolicyRules(networkPolicyId(namespace, name));
  }

  upsertClusterNetworkPolicy(cnp: ClusterNetworkPolicy): PolicyRules {
    const rules = clusterNetworkPolicyRules(cnp);
    this.upsertPolicyRules(rules);
    return rules;
  }

  removeClusterNetworkPolicy(name: string): void {
    this.removePolicyRules(clusterNetworkPolicyId(name));
  }

  /** Any tier's policy, already in the rule model. */
  upsertPolicyRules(policy: PolicyRules): void {
    const old = this.policies.get(policy.id);
    if (old && sameJson(old, policy)) return;
    this.policies.set(policy.id, policy);
    if (old) this.policiesByNamespace.get(old.appliesTo.namespace)?.delete(old.id);
    addTo(this.policiesByNamespace, policy.appliesTo.namespace, policy.id);
    for (const ref of rulesOf(policy)) this.addSetUser(ref, policy.id);
    if (old) this.dropSetUsers(old, new Set(rulesOf(policy).map((r) => r.key)));
    this.dirtyPolicies.add(policy.id);
    this.markSelectedEndpoints(old, policy);
  }

  removePolicyRules(id: string): void {
    const old = this.policies.get(id);
    if (!old) return;
    this.policies.delete(id);
    this.policiesByNamespace.get(old.appliesTo.namespace)?.delete(id);
    this.dropSetUsers(old, new Set());
    this.dirtyPolicies.add(id);
    this.markSelectedEndpoints(old, undefined);
  }

  // ---- rendering --------------------------------------------------------------------------

  /** True when writes happened since the last render. */
  get dirty(): boolean {
    return this.dirtySets.size + this.dirtyPolicies.size + this.dirtyEndpoints.size > 0;
  }

  render(): DesiredState {
    for (const key of this.dirtySets) this.renderSet(key);
    this.dirtySets.clear();
    for (const id of this.dirtyPolicies) this.renderPolicy(id);
    this.dirtyPolicies.clear();
    if (this.dirtyEndpoints.size > 0) {
      for (const key of this.dirtyEndpoints) this.renderEndpoint(key);
      this.dirtyEndpoints.clear();
      const rows = [...this.endpoints.entries()].map(([key, e]) => ({
        podKey: key,
        interfaces: e.interfaces,
        ingress: e.ingress.length > 0,
        egress: e.egress.length > 0,
      }));
      const dispatch = dispatchChains(rows, this.dispatchTreeAbove);
      for (const f of this.families) {
        for (const name of this.renderedChains[f].keys()) {
          if (isDispatchSubChain(name) && !dispatch.has(name)) this.renderedChains[f].delete(name);
        }
        for (const [name, lines] of dispatch) this.setChain(f, name, lines);
      }
    }
    return {
      families: this.families,
      sets: new Map(this.renderedSets),
      chains: { 4: new Map(this.renderedChains[4]), 6: new Map(this.renderedChains[6]) },
      hooks: HOOKS,
    };
  }

  // ---- internals ----------------------------------------------------------------------------

  private namespaceChanged(name: string): void {
    const keys = this.podsByNamespace.get(name) ?? new Set<string>();
    for (const entry of this.sets.values()) {
      if (entry.ref.spec.kind !== 'pods' || entry.ref.spec.namespaceSelector === null) continue;
      for (const key of keys) this.refreshMember(entry, key);
    }
    const bySelector = [...this.policies.values()].some((p) => p.appliesTo.namespaceSelector !== null);
    if (bySelector)
      for (const key of keys) if (this.isLocal(this.pods.get(key))) this.dirtyEndpoints.add(key);
  }

  private refreshMember(entry: SetEntry, key: string): void {
    if (entry.ref.spec.kind === 'cidr') return;
    const pod = this.pods.get(key);
    const next = pod ? podMembers(entry.ref.spec, pod, this.namespaceLabels(pod.namespace)) : [];
    if (sameMembers(entry.byPod.get(key), next)) return;
    if (next.length === 0) entry.byPod.delete(key);
    else entry.byPod.set(key, next);
    this.dirtySets.add(entry.ref.key);
  }

  private addSetUser(ref: SetRef, policyId: string): void {
    let entry = this.sets.get(ref.key);
    if (!entry) {
      entry = { ref, users: new Set(), byPod: new Map() };
      this.sets.set(ref.key, entry);
      const spec = ref.spec;
      const scope =
        spec.kind === 'pods' && spec.namespace !== null
          ? (this.podsByNamespace.get(spec.namespace) ?? new Set<string>())
          : this.pods.keys();
      for (const key of scope) this.refreshMember(entry, key);
      this.dirtySets.add(ref.key);
    }
    entry.users.add(policyId);
  }

  private dropSetUsers(old: PolicyRules, keep: Set<string>): void {
    for (const ref of rulesOf(old)) {
      if (keep.has(ref.key)) continue;
      const entry = this.sets.get(ref.key);
      if (!entry) continue;
      entry.users.delete(old.id);
      if (entry.users.size === 0) {
        this.sets.delete(ref.key);
        this.dirtySets.add(ref.key);
      }
    }
  }

  private markSelectedEndpoints(before: PolicyRules | undefined, after: PolicyRules | undefined): void {
    const scopes = new Set([before?.appliesTo.namespace, after?.appliesTo.namespace]);
    const candidates = scopes.has(null)
      ? [...this.localPods.values()].flatMap((keys) => [...keys])
      : [...scopes].flatMap((ns) => [...(this.localPods.get(ns!) ?? [])]);
    for (const key of candidates) {
      const pod = this.pods.get(key)!;
      const ns = this.namespaceLabels(pod.namespace);
      if (
        (before && selectsPod(before.appliesTo, pod, ns)) ||
        (after && selectsPod(after.appliesTo, pod, ns))
      ) {
        this.dirtyEndpoints.add(key);
      }
    }
  }

  private setNameIn =
    (family: Family) =>
    (ref: SetRef): string | null =>
      specFamilies(ref.spec, [family]).length > 0 ? setName(ref.key, ref.spec, family) : null;

  private renderSet(key: string): void {
    const entry = this.sets.get(key);
    for (const f of this.families) {
      // The spec is needed for the name; a removed set's spec comes from any rendered name.
      const spec = entry?.ref.spec ?? (JSON.parse(key) as SetSpec);
      const name = setName(key, spec, f);
      if (!entry || !specFamilies(spec, [f]).length) {
        this.renderedSets.delete(name);
        continue;
      }
      const s = entry.ref.spec;
      const members =
        s.kind === 'cidr'
          ? cidrMembers(s)
          : [
              ...new Set(
                [...entry.byPod.values()]
                  .flat()
                  .filter((m) => m.family === f)
                  .map((m) => m.member),
              ),
            ];
      members.sort();
      const old = this.renderedSets.get(name);
      if (old && old.members.length === members.length && old.members.every((m, i) => m === members[i]))
        continue;
      this.renderedSets.set(name, { name, family: f, type: setType(s), members });
    }
  }

  /** Keeps the previous array when the content is unchanged, so that diffs can compare by reference. */
  private setChain(family: Family, name: string, lines: readonly string[]): void {
    const old = this.renderedChains[family].get(name);
    if (old && old.length === lines.length && old.every((l, i) => l === lines[i])) return;
    this.renderedChains[family].set(name, lines);
  }

  private renderPolicy(id: string): void {
    const policy = this.policies.get(id);
    for (const f of this.families) {
      for (const d of DIRECTIONS) {
        const chain = policyChain(id, d);
        if (!policy || policy[d] === null) this.renderedChains[f].delete(chain);
        else this.setChain(f, chain, policyChainRules(policy, d, this.setNameIn(f)));
      }
    }
  }

  private renderEndpoint(key: string): void {
    const pod = this.pods.get(key);
    const ingress = pod && this.isLocal(pod) ? this.policiesSelecting(pod, 'ingress') : [];
    const egress = pod && this.isLocal(pod) ? this.policiesSelecting(pod, 'egress') : [];
    if (ingress.length + egress.length === 0) this.endpoints.delete(key);
    else this.endpoints.set(key, { interfaces: [...pod!.hostInterfaces].sort(), ingress, egress });
    for (const f of this.families) {
      for (const [d, list] of [
        ['ingress', ingress],
        ['egress', egress],
      ] as const) {
        const chain = endpointChain(key, d);
        if (list.length === 0) this.renderedChains[f].delete(chain);
        else this.setChain(f, chain, endpointChainRules(chain, d, list, this.marks));
      }
    }
  }
}

const isDispatchSubChain = (name: string): boolean =>
  name.startsWith(`${CHAINS.fromWorkload}-`) || name.startsWith(`${CHAINS.toWorkload}-`);

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(value);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
