// The policy compiler and applier: NetworkPolicy → rule model → iptables/ipset.
export { UnavailableError } from '../model/index.js';
export * from './types.js';
export { compile, type CompileInput, type Compiled } from './compile.js';
export { PolicyState, type PolicyStateOptions } from './state.js';
export { PolicyEngine, type PolicyEngineOptions, type SyncResult } from './engine.js';
export { PolicyApplier, type ApplyStats, type KernelState, type PolicyApplierOptions } from './applier.js';
export {
  explain,
  formatExplanation,
  type Explanation,
  type ExplainQuery,
  type ExplainPeer,
  type Decision,
} from './explain.js';
export { hostRunner, netnsRunner, CommandError, type Runner, type LongLivedProcess } from './runner.js';
export { IpsetSession, RestoreSession } from './restore-session.js';
export { policyPodFromResource, policyNamespaceFromResource } from './pod-input.js';
export { networkPolicyRules, networkPolicyId } from './network-policy.js';
export { clusterNetworkPolicyRules, clusterNetworkPolicyId } from './cluster-network-policy.js';
export { restoreTexts, type RestoreTexts } from './restore-text.js';
export { CHAINS, endpointChain, policyChain, setName } from './names.js';
export {
  SourceValidation,
  SOURCE_CHAINS,
  SPOOF_REASONS,
  sourceValidationChains,
  type SpoofDrops,
  type SpoofReason,
} from './source-validation.js';
