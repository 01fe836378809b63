// The policy compiler's inputs (normalised pods and namespaces) and its intermediate rule
// model: ordered tiers of policies, each a list of rules with an action. NetworkPolicy fills
// the `networkpolicy` tier, ClusterNetworkPolicy the `admin` and `baseline` tiers.
import type { Labels, LabelSelector } from '../model/index.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type Family = 4 | 6;
export type Direction = 'ingress' | 'egress';
export type Action = 'allow' | 'deny' | 'pass';

export interface NamedContainerPort {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
}

/** A pod as policy sees it. hostNetwork and finished pods are not PolicyPods at all. */
export interface PolicyPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  /** IPv4 and IPv6 addresses, as text. */
  readonly ips: readonly string[];
  readonly node?: string | undefined;
  readonly ports: readonly NamedContainerPort[];
  /** Host-side veth names (`hostVethName`) of the pod's attachments; used for local pods. */
  readonly hostInterfaces: readonly string[];
}

export interface PolicyNamespace {
  readonly name: string;
  readonly labels: Labels;
}

export const podKey = (p: { namespace: string; name: string }): string => `${p.namespace}/${p.name}`;

// ---- tiers -------------------------------------------------------------------------------

export type TierName = 'admin' | 'networkpolicy' | 'baseline';

export interface TierDef {
  readonly name: TierName;
  /**
   * What happens when policies of this tier select the endpoint but none of their rules
   * matched: NetworkPolicy isolates (deny); Admin and Baseline fall through to the next tier.
   */
  readonly onNoMatch: 'deny' | 'next';
  /** Whether rules of this tier may say `pass` (skip the rest of the tier). */
  readonly canPass: boolean;
}

/** Evaluation order. A packet that no tier decides is allowed. */
export const TIERS: readonly TierDef[] = [
  { name: 'admin', onNoMatch: 'next', canPass: true },
  { name: 'networkpolicy', onNoMatch: 'deny', canPass: false },
  // Pass in Baseline skips the rest of Baseline, i.e. to the default (allowed).
  { name: 'baseline', onNoMatch: 'next', canPass: true },
];

// ---- sets ----------------------------------------------------------------------------------

/** What a set holds. Its name is derived from the canonical form of the spec (see names.ts). */
export type SetSpec =
  | {
      /** IPs of pods matching podSelector in `namespace` (or in namespaces matching namespaceSelector). */
      readonly kind: 'pods';
      readonly namespace: string | null;
      readonly namespaceSelector: LabelSelector | null;
      readonly podSelector: LabelSelector;
    }
  | {
      /** An ipBlock: `cidr` minus `except` (hash:net with nomatch entries). Single family. */
      readonly kind: 'cidr';
      readonly cidr: string;
      readonly except: readonly string[];
    }
  | {
      /** ip,proto:port of every pod's container port with this name (named ports, per pod). */
      readonly kind: 'named-port';
      readonly name: string;
    };

export interface SetRef {
  /** Canonical JSON of the spec: equal specs share one set. */
  readonly key: string;
  readonly spec: SetSpec;
}

// ---- rules ---------------------------------------------------------------------------------

export type PortMatch =
  | { readonly kind: 'protocol'; readonly protocol: Protocol }
  | { readonly kind: 'range'; readonly protocol: Protocol; readonly from: number; readonly to: number }
  | { readonly kind: 'named'; readonly protocol: Protocol; readonly name: string; readonly set: SetRef };

export interface Rule {
  readonly action: Action;
  /** Any of these peers (OR); null = every peer. An empty list matches nothing. */
  readonly peers: readonly SetRef[] | null;
  /** Any of these ports (OR); null = every protocol and port. An empty list matches nothing. */
  readonly ports: readonly PortMatch[] | null;
  /** Where the rule came from, e.g. `ingress[1]`, for explain. */
  readonly origin: string;
}

/** Which pods a policy applies to. */
export interface EndpointSelector {
  /** Policies of a namespaced kind apply to pods of this namespace only. */
  readonly namespace: string | null;
  readonly namespaceSelector: LabelSelector | null;
  readonly podSelector: LabelSelector;
}

export interface PolicyRules {
  /** `<kind>:<namespace>/<name>`, unique across tiers. */
  readonly id: string;
  readonly tier: TierName;
  /** Order within the tier (lower first); ties broken by id. NetworkPolicy: all 0. */
  readonly priority: number;
  readonly appliesTo: EndpointSelector;
  /** null: the policy does not govern this direction. [] isolates and allows nothing. */
  readonly ingress: readonly Rule[] | null;
  readonly egress: readonly Rule[] | null;
  /** Parts of the object that were invalid and dropped (failing closed). */
  readonly warnings: readonly string[];
}

// ---- compiled output ---------------------------------------------------------------------------

export type SetType = 'hash:ip' | 'hash:net' | 'hash:ip,port';

export interface DesiredSet {
  readonly name: string;
  readonly family: Family;
  readonly type: SetType;
  /** Sorted, in the form `ipset save` prints (hash:net excepts carry ` nomatch`). */
  readonly members: readonly string[];
}

/** Everything tern wants in the kernel on this node. Chains: name → rule lines (`-A name …`). */
export interface DesiredState {
  readonly families: readonly Family[];
  readonly sets: ReadonlyMap<string, DesiredSet>;
  readonly chains: Readonly<Record<Family, ReadonlyMap<string, readonly string[]>>>;
  /** The builtin-chain jumps, per family: `[builtin chain, tern chain]`. */
  readonly hooks: readonly (readonly [string, string])[];
}

export interface Marks {
  /** Set by a policy chain that allowed the packet. */
  readonly accept: number;
  /** Set by a policy chain whose rule said `pass` (skip to the next tier). */
  readonly pass: number;
}

export const DEFAULT_MARKS: Marks = { accept: 0x10000, pass: 0x20000 };
