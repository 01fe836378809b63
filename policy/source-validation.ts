// Source validation: a packet that arrives from a pod's host veth with a source address the node
// would not route back out of that same veth is dropped in the raw table, before conntrack and
// before any policy sees it (a forged source would otherwise pass the peer sets of NetworkPolicy).
//
// One static rule per family covers every pod interface tern creates, primary or secondary:
//   raw PREROUTING ─(-I 1)─► tern-PREROUTING
//     -i tern+ -m rpfilter --invert -j tern-spoofed     (strict reverse-path check in the FIB)
//   tern-spoofed: one counted DROP per reason
//     node-address: the source is one of the node's own addresses (addrtype LOCAL)
//     not-own:      anything else (another pod's address, 169.254.1.1, an unassigned address)
// The FIB is the pod's address list: the CNI ADD installs `<ip>/32 dev <veth>` (/128) before it
// returns, DEL removes it with the veth, a stable address that moves here validates as soon as its
// route points at the veth. So an ADD needs no rule of its own and there is no window.
// The measurements behind this choice are in docs/architecture.md ("Source validation").
import { hookRule } from './render.js';
import type { Runner } from './runner.js';
import type { Family } from './types.js';
import { HOST_VETH_PREFIX } from '../model/index.js';

export const SOURCE_CHAINS = { entry: 'tern-PREROUTING', spoofed: 'tern-spoofed' } as const;

export const SPOOF_REASONS = ['node-address', 'not-own'] as const;
export type SpoofReason = (typeof SPOOF_REASONS)[number];

const HOOK = ['PREROUTING', SOURCE_CHAINS.entry] as const;
const RESTORE: Record<Family, string> = { 4: 'iptables-restore', 6: 'ip6tables-restore' };
const SAVE: Record<Family, string> = { 4: 'iptables-save', 6: 'ip6tables-save' };

/** The raw-table chains, written exactly as `iptables-save` prints them (drift is a comparison). */
export function sourceValidationChains(): Map<string, string[]> {
  const { entry, spoofed } = SOURCE_CHAINS;
  return new Map([
    [entry, [`-A ${entry} -i ${HOST_VETH_PREFIX}+ -m rpfilter --invert -j ${spoofed}`]],
    [
      spoofed,
      [
        `-A ${spoofed} -m addrtype --src-type LOCAL -m comment --comment node-address -j DROP`,
        `-A ${spoofed} -m comment --comment not-own -j DROP`,
      ],
    ],
  ]);
}

export interface SpoofDrops {
  readonly family: Family;
  readonly reason: SpoofReason;
  readonly packets: number;
}

interface RawTable {
  readonly chains: Map<string, string[]>;
  readonly hooked: boolean;
  readonly drops: SpoofDrops[];
}

export class SourceValidation {
  constructor(
    private readonly run: Runner,
    private readonly families: readonly Family[],
  ) {}

  /** Writes tern's raw chains (refilling them whatever they hold) and the jump, if missing. */
  async apply(): Promise<void> {
    await Promise.all(
      this.families.map(async (f) => {
        const now = await this.read(f);
        const lines = ['*raw'];
        const chains = sourceValidationChains();
        for (const name of chains.keys()) lines.push(`:${name} - [0:0]`);
        for (const rules of chains.values()) lines.push(...rules);
        if (!now.hooked) lines.push(hookRule(HOOK).replace(/^-A (\S+)/, '-I $1 1'));
        lines.push('COMMIT');
        await this.run(RESTORE[f], ['--noflush', '--wait'], lines.join('\n') + '\n');
      }),
    );
  }

  /** Differences from what apply() writes, one line each; empty when in place. */
  async drift(): Promise<string[]> {
    const out: string[] = [];
    const want = sourceValidationChains();
    for (const f of this.families) {
      const now = await this.read(f);
      if (!now.hooked) out.push(`IPv${f} raw jump ${hookRule(HOOK)} missing`);
      for (const [name, rules] of want) {
        const got = now.chains.get(name);
        if (!got) out.push(`IPv${f} raw chain ${name} missing`);
        else if (got.join('\n') !== rules.join('\n')) out.push(`IPv${f} raw chain ${name} differs`);
      }
    }
    return out;
  }

  /** Packets dropped so far, per family and reason (the kernel's rule counters). */
  async drops(): Promise<SpoofDrops[]> {
    return (await Promise.all(this.families.map((f) => this.read(f)))).flatMap((t) => t.drops);
  }

  /** Removes the jump and tern's raw chains (uninstall, test cleanup). */
  async remove(): Promise<void> {
    for (const f of this.families) {
      const now = await this.read(f);
      const lines = ['*raw'];
      if (now.hooked) lines.push(hookRule(HOOK).replace(/^-A /, '-D '));
      for (const name of now.chains.keys()) lines.push(`-F ${name}`);
      for (const name of now.chains.keys()) lines.push(`-X ${name}`);
      lines.push('COMMIT');
      if (lines.length > 2) await this.run(RESTORE[f], ['--noflush', '--wait'], lines.join('\n') + '\n');
    }
  }

  private async read(family: Family): Promise<RawTable> {
    const out = await this.run(SAVE[family], ['-t', 'raw', '-c']);
    const mine = new Set<string>(Object.values(SOURCE_CHAINS));
    const chains = new Map<string, string[]>();
    const drops: SpoofDrops[] = [];
    let hooked = false;
    for (const raw of out.split('\n')) {
      if (raw.startsWith(':')) {
        const name = raw.slice(1).split(' ')[0]!;
        if (mine.has(name)) chains.set(name, []);
        continue;
      }
      // With -c every rule starts with its counters: `[packets:bytes] -A …`.
      const m = /^\[(\d+):\d+\] (-A .*)$/.exec(raw);
      if (!m) continue;
      const line = m[2]!;
      const chain = line.split(' ')[1]!;
      if (line === hookRule(HOOK)) hooked = true;
      if (!mine.has(chain)) continue;
      chains.get(chain)?.push(line);
      const reason = / --comment (\S+) -j DROP$/.exec(line)?.[1];
      const known = SPOOF_REASONS.find((r) => r === reason);
      if (chain === SOURCE_CHAINS.spoofed && known)
        drops.push({ family, reason: known, packets: Number(m[1]) });
    }
    return { chains, hooked, drops };
  }
}
