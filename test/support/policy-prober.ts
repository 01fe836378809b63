// Continuous probing under policy updates: probers connect over and over while a test steps
// through a series of "worlds" (the policies and labels in force), and afterwards every probe that
// got through is checked against the worlds that could have been visible while it ran. A probe
// that passed when every such world denies it is a violation: the dataplane let through what the
// policy in force forbade, even for an instant.
import { expect } from 'vitest';
import type { PolicyEngine } from '../../policy/index.js';
import type { LabPod, PolicyLab, ProbeOutcome } from './policy-lab.js';

export interface Probe {
  readonly from: LabPod;
  readonly to: LabPod;
  readonly port: number;
  readonly outcome: ProbeOutcome;
}

/**
 * The worlds in force over time. World i may be visible from the start of its apply (a
 * half-applied update may already show) until the end of the next world's apply (which may not
 * yet show).
 */
export class PolicyTimeline<W> {
  private readonly worlds: W[];
  private readonly starts: bigint[] = [0n];
  private readonly ends: bigint[] = [0n];

  constructor(initial: W) {
    this.worlds = [initial];
  }

  get current(): W {
    return this.worlds[this.worlds.length - 1]!;
  }

  get length(): number {
    return this.worlds.length;
  }

  async step(next: W, apply: () => Promise<void>): Promise<void> {
    this.starts.push(process.hrtime.bigint());
    await apply();
    this.ends.push(process.hrtime.bigint());
    this.worlds.push(next);
  }

  /** The worlds that may have been visible at some moment of [start, end]. */
  inForce(start: bigint, end: bigint): W[] {
    return this.worlds.filter((_, i) => {
      const visibleUntil = i + 1 < this.worlds.length ? this.ends[i + 1]! : end;
      return this.starts[i]! <= end && visibleUntil >= start;
    });
  }
}

/** Probes each pair back to back until `stop`, which returns every probe made. */
export function probeContinuously(
  lab: PolicyLab,
  pairs: readonly { from: LabPod; to: LabPod; port: number }[],
): { stop(): Promise<Probe[]> } {
  const probes: Probe[] = [];
  let running = true;
  const loops = pairs.map(async ({ from, to, port }) => {
    while (running) probes.push({ from, to, port, outcome: await lab.probe(from, to, port, 'TCP', 4, 250) });
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return probes;
    },
  };
}

export interface Verdicts {
  readonly passed: number;
  readonly blocked: number;
  readonly violations: string[];
}

/** Checks every passed probe against the worlds that may have been in force while it ran. */
export function judge<W>(
  probes: readonly Probe[],
  timeline: PolicyTimeline<W>,
  allowed: (world: W, probe: Probe) => boolean,
): Verdicts {
  let passed = 0;
  let blocked = 0;
  const violations: string[] = [];
  for (const probe of probes) {
    if (probe.outcome.result !== 'ok') {
      blocked++;
      continue;
    }
    passed++;
    const inForce = timeline.inForce(probe.outcome.start, probe.outcome.end);
    if (!inForce.some((w) => allowed(w, probe)))
      violations.push(
        `${probe.from.key} → ${probe.to.key}:${probe.port} passed while only ${JSON.stringify(inForce)} was in force`,
      );
  }
  return { passed, blocked, violations };
}

/**
 * What every prober run must end with: no violation, both outcomes seen (so the check was not
 * vacuous), every update on the incremental path (no failure papered over by the full re-apply
 * fallback), and the kernel holding what the engine rendered.
 */
export async function expectSound(
  verdicts: Verdicts,
  modes: readonly string[],
  engine: PolicyEngine,
): Promise<void> {
  expect(verdicts.violations.slice(0, 10)).toEqual([]);
  expect(verdicts.passed).toBeGreaterThan(0);
  expect(verdicts.blocked).toBeGreaterThan(0);
  expect(modes.filter((m) => m === 'full')).toEqual([]);
  expect(await engine.checkDrift()).toEqual([]);
}
