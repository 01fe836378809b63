// The pure compiler: resources in, desired sets and chains (and their restore text) out.
// It is the incremental PolicyState fed everything at once, so the agent's incremental path and
// this one cannot disagree.
import type { NetworkPolicy } from '../model/index.js';
import { restoreTexts, type RestoreTexts } from './restore-text.js';
import { PolicyState } from './state.js';
import type { DesiredState, Family, Marks, PolicyNamespace, PolicyPod } from './types.js';

export interface CompileInput {
  /** This node: chains for its pods only; sets hold members from the whole cluster. */
  readonly nodeName: string;
  readonly pods: readonly PolicyPod[];
  readonly namespaces: readonly PolicyNamespace[];
  readonly policies: readonly NetworkPolicy[];
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
  for (const np of input.policies) {
    const rules = state.upsertNetworkPolicy(np);
    if (rules.warnings.length > 0) warnings.set(rules.id, rules.warnings);
  }
  const desired = state.render();
  return { state, desired, text: restoreTexts(desired), warnings };
}
