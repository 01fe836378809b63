// The pure compiler: resources in, desired sets and chains (and their restore text) out.
// It is the incremental PolicyState fed everything at once, so the agent's incremental path and
// this one cannot disagree.
import type { ClusterNetworkPolicy, NetworkPolicy } from '../model/index.js';
import { restoreTexts, type RestoreTexts } from './restore-text.js';
import { PolicyState } from './state.js';
import type { DesiredState, Family, Marks, PolicyNamespace, PolicyPod } from './types.js';

export interface CompileInput {
  /** This node: chains for its pods only; sets hold members from the whole cluster. */
  readonly nodeName: string;
  readonly pods: readonly PolicyPod[];
  readonly namespaces: readonly PolicyNamespace[];
  readonly policies: readonly NetworkPolicy[];
  /** ClusterNetworkPolicies (Admin and Baseline tiers). */
  readonly clusterPolicies?: readonly ClusterNetworkPolicy[];
  readonly families?: readonly Family[];
  readonly marks?: Marks;
}

export interface Compiled {
  readonly state: PolicyState;
  readonly desired: DesiredState;
  readonly text: RestoreTexts;
  /** Invalid parts of policies that were dropped, by policy. */
  readonly warnings: ReadonlyMap<string, readonly string[]>;
}

export function compile(input: CompileInput): Compiled {
  const state = new PolicyState({ nodeName: input.nodeName, families: input.families, marks: input.marks });
  for (const ns of input.namespaces) state.upsertNamespace(ns);
  for (const pod of input.pods) state.upsertPod(pod);
  const warnings = new Map<string, readonly string[]>();
  const upserts = [
    ...input.policies.map((np) => () => state.upsertNetworkPolicy(np)),
    ...(input.clusterPolicies ?? []).map((cnp) => () => state.upsertClusterNetworkPolicy(cnp)),
  ];
  for (const upsert of upserts) {
    const rules = upsert();
    if (rules.warnings.length > 0) warnings.set(rules.id, rules.warnings);
  }
  const desired = state.render();
  return { state, desired, text: restoreTexts(desired), warnings };
}
