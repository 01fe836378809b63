// The node agent's policy engine: feed it pods, namespaces and policies as the datastore
// reports them, call sync() (the agent debounces), and it applies the minimal change: a label
// change becomes a few `ipset add/del`, a policy change rewrites that policy's chains and the
// endpoints it selects. CNI ADD waits on endpointProgrammed() for the new pod.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { UnavailableError, type ClusterNetworkPolicy, type NetworkPolicy } from '../model/index.js';
import { PolicyApplier, type ApplyStats } from './applier.js';
import { explain, type Explanation, type ExplainQuery } from './explain.js';
import type { Runner } from './runner.js';
import { SourceValidation, type SpoofDrops } from './source-validation.js';
import { PolicyState, type PolicyStateOptions } from './state.js';
import {
  podKey,
  type DesiredState,
  type PolicyNamespace,
  type PolicyPod,
  type PolicyRules,
} from './types.js';

export interface PolicyEngineOptions extends PolicyStateOptions {
  /** Runs iptables/ipset (hostRunner() on a node, netnsRunner(ns) in tests and the lab). */
  readonly runner: Runner;
  readonly logger?: Logger;
  /** Long-lived iptables-restore processes between syncs (default true; iptables-nft only). */
  readonly restoreSessions?: boolean;
}

export interface SyncResult extends ApplyStats {
  readonly durationMs: number;
  /** Milliseconds spent rendering (compiling) before applying. */
  readonly renderMs: number;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class PolicyEngine {
  readonly state: PolicyState;
  private readonly applier: PolicyApplier;
  private readonly log: Logger | undefined;
  private applied: DesiredState | null = null;
  private generation = 0;
  private appliedGeneration = 0;
  private readonly podGeneration = new Map<string, number>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private queued: Promise<SyncResult> | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private driftTimer: NodeJS.Timeout | undefined;
  private readonly sourceValidation: SourceValidation;
  private sourceValidated = false;

  constructor(options: PolicyEngineOptions) {
    this.state = new PolicyState(options);
    this.applier = new PolicyApplier(options.runner, { sessions: options.restoreSessions ?? true });
    this.sourceValidation = new SourceValidation(options.runner, this.state.families);
    this.log = options.logger;
  }

  /**
   * Puts source validation in place (raw table, see source-validation.ts) and keeps it there:
   * checkDrift() repairs it from now on. The agent awaits this before its CNI socket listens, so
   * no pod it plumbs ever has a moment to forge.
   */
  installSourceValidation(): Promise<void> {
    const run = this.tail
      .catch(() => undefined)
      .then(async () => {
        await this.sourceValidation.apply();
        this.sourceValidated = true;
      });
    this.tail = run;
    return run;
  }

  /** Forged-source packets dropped so far, per family and reason (empty before install). */
  async spoofDrops(): Promise<SpoofDrops[]> {
    return this.sourceValidated ? this.sourceValidation.drops() : [];
  }

  upsertPod(pod: PolicyPod): void {
    this.state.upsertPod(pod);
    this.podGeneration.set(podKey(pod), ++this.generation);
  }

  removePod(namespace: string, name: string): void {
    this.state.removePod(namespace, name);
    this.podGeneration.delete(podKey({ namespace, name }));
    this.generation++;
  }

  upsertNamespace(ns: PolicyNamespace): void {
    this.state.upsertNamespace(ns);
    this.generation++;
  }

  removeNamespace(name: string): void {
    this.state.removeNamespace(name);
    this.generation++;
  }

  /** Returns the policy's warnings (invalid parts dropped, failing closed). */
  upsertPolicy(np: NetworkPolicy): readonly string[] {
    const rules = this.state.upsertNetworkPolicy(np);
    this.generation++;
    if (rules.warnings.length > 0)
      this.log?.warn({ policy: rules.id, warnings: rules.warnings }, 'policy partly invalid');
    return rules.warnings;
  }

  removePolicy(namespace: string, name: string): void {
    this.state.removeNetworkPolicy(namespace, name);
    this.generation++;
  }

  /** Returns the policy's warnings (peer types tern does not implement, failing closed). */
  upsertClusterPolicy(cnp: ClusterNetworkPolicy): readonly string[] {
    const rules = this.state.upsertClusterNetworkPolicy(cnp);
    this.generation++;
    if (rules.warnings.length > 0)
      this.log?.warn(
        { policy: rules.id, warnings: rules.warnings },
        'cluster network policy partly unsupported',
      );
    return rules.warnings;
  }

  removeClusterPolicy(name: string): void {
    this.state.removeClusterNetworkPolicy(name);
    this.generation++;
  }

  /** A policy already in the rule model (any tier). */
  upsertPolicyRules(policy: PolicyRules): void {
    this.state.upsertPolicyRules(policy);
    this.generation++;
  }

  removePolicyRules(id: string): void {
    this.state.removePolicyRules(id);
    this.generation++;
  }

  /**
   * Applies everything written so far. Calls made while a sync runs coalesce into one more run.
   * The first sync (and any sync after a failed delta) is a full apply that also cleans up
   * whatever an earlier process left.
   */
  sync(): Promise<SyncResult> {
    if (this.queued) return this.queued;
    const run = this.tail
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.runSync();
      });
    this.queued = run;
    this.tail = run;
    return run;
  }

  /**
   * Resolves once the pod (as last upserted) is programmed: its chains if policy selects it, and
   * its addresses in every set. Rejects with UnavailableError after `timeoutMs`.
   */
  endpointProgrammed(namespace: string, name: string, timeoutMs = 10_000): Promise<void> {
    const key = podKey({ namespace, name });
    if (this.isProgrammed(key)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const set = this.waiters.get(key) ?? new Set<Waiter>();
      this.waiters.set(key, set);
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          set.delete(waiter);
          reject(new UnavailableError(`policy for pod ${key} was not programmed within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      set.add(waiter);
    });
  }

  /** Reads the kernel back; on any drift re-applies everything. Returns the drift found. */
  checkDrift(): Promise<string[]> {
    const run = this.tail
      .catch(() => undefined)
      .then(async () => {
        const drift: string[] = [];
        if (this.sourceValidated) {
          const raw = await this.sourceValidation.drift();
          if (raw.length > 0) {
            this.log?.warn({ drift: raw }, 'source validation drifted; repairing');
            await this.sourceValidation.apply();
          }
          drift.push(...raw);
        }
        if (!this.applied) return drift;
        const filter = await this.applier.drift(this.applied);
        if (filter.length > 0) {
          this.log?.warn({ drift: filter }, 'policy dataplane drifted; repairing');
          await this.applier.applyFull(this.applied);
        }
        return [...drift, ...filter];
      });
    this.tail = run;
    return run;
  }

  startDriftCheck(intervalMs = 60_000): void {
    this.stopDriftCheck();
    this.driftTimer = setInterval(() => {
      this.checkDrift().catch((e: unknown) => this.log?.error({ err: e }, 'policy drift check failed'));
    }, intervalMs);
    this.driftTimer.unref();
  }

  stopDriftCheck(): void {
    if (this.driftTimer) clearInterval(this.driftTimer);
    this.driftTimer = undefined;
  }

  explain(namespace: string, name: string, query: ExplainQuery = {}): Explanation {
    return explain(this.state, { namespace, name }, query);
  }

  /** Removes all of tern's chains, jumps and sets (uninstall), and closes the engine. */
  async uninstall(): Promise<void> {
    this.stopDriftCheck();
    await this.tail.catch(() => undefined);
    await this.sourceValidation.remove();
    this.sourceValidated = false;
    await this.applier.removeAll(this.state.families);
    this.applied = null;
    await this.applier.close();
  }

  /** Stops the drift check and the long-lived restore processes; the rules stay in place. */
  async close(): Promise<void> {
    this.stopDriftCheck();
    await this.tail.catch(() => undefined);
    await this.applier.close();
  }

  private isProgrammed(key: string): boolean {
    const gen = this.podGeneration.get(key);
    return gen !== undefined && gen <= this.appliedGeneration;
  }

  private async runSync(): Promise<SyncResult> {
    const gen = this.generation;
    const t0 = performance.now();
    const next = this.state.render();
    const renderMs = performance.now() - t0;
    let stats: ApplyStats;
    if (!this.applied) {
      stats = await this.applier.applyFull(next);
    } else {
      try {
        stats = await this.applier.applyDelta(this.applied, next);
      } catch (e) {
        this.log?.warn({ err: e }, 'incremental policy apply failed; applying in full');
        stats = await this.applier.applyFull(next);
      }
    }
    this.applied = next;
    this.appliedGeneration = gen;
    for (const [key, set] of this.waiters) {
      if (!this.isProgrammed(key)) continue;
      for (const w of set) {
        clearTimeout(w.timer);
        w.resolve();
      }
      this.waiters.delete(key);
    }
    return { ...stats, durationMs: performance.now() - t0, renderMs };
  }
}
