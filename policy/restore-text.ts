// Text for `ipset restore` and `iptables-restore --noflush`. Only tern's own sets and chains
// are ever named: restore with --noflush leaves every other chain of the table as it is.
import { tempSetName } from './names.js';
import { hookRule } from './render.js';
import type { DesiredSet, DesiredState, Family } from './types.js';

const MAXELEM = 1_048_576;

export function createSetLine(set: DesiredSet, name = set.name, exist = false): string {
  return (
    `create ${name} ${set.type} family ${set.family === 4 ? 'inet' : 'inet6'} hashsize 1024 maxelem ${MAXELEM}` +
    (exist ? ' -exist' : '')
  );
}

export const addLines = (name: string, members: readonly string[]): string[] =>
  members.map((m) => `add ${name} ${m}`);

/**
 * Builds every set from scratch. A set that already exists is filled under a temporary name and
 * swapped in, so rules that reference it see the old members or the new, never a mix.
 */
export function ipsetRestoreText(
  sets: Iterable<DesiredSet>,
  existing: ReadonlySet<string> = new Set(),
): string {
  const lines: string[] = [];
  for (const set of [...sets].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (existing.has(set.name)) {
      const tmp = tempSetName(set.name);
      lines.push(createSetLine(set, tmp, true), `flush ${tmp}`, ...addLines(tmp, set.members));
      lines.push(`swap ${tmp} ${set.name}`, `destroy ${tmp}`);
    } else {
      lines.push(createSetLine(set), ...addLines(set.name, set.members));
    }
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

export interface ChainChanges {
  /** Chains to declare (creating or flushing them) and fill. */
  readonly write: ReadonlyMap<string, readonly string[]>;
  /** tern chains to flush and delete. */
  readonly remove: readonly string[];
  /** Jump rules to insert at the top of builtin chains: `[builtin, tern chain]`. */
  readonly insertHooks: readonly (readonly [string, string])[];
}

/** One `iptables-restore --noflush` transaction for the filter table. */
export function iptablesRestoreText(changes: ChainChanges): string {
  const write = [...changes.write.keys()].sort();
  const remove = [...changes.remove].sort();
  const lines = ['*filter'];
  for (const name of [...write, ...remove]) lines.push(`:${name} - [0:0]`);
  for (const name of write) lines.push(...changes.write.get(name)!);
  for (const hook of changes.insertHooks) lines.push(hookRule(hook).replace(/^-A (\S+)/, '-I $1 1'));
  for (const name of remove) lines.push(`-X ${name}`);
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

export interface RestoreTexts {
  readonly ipset: string;
  readonly iptables: Readonly<Partial<Record<Family, string>>>;
}

/** The whole desired state as it would be restored on a node with nothing of tern's yet. */
export function restoreTexts(desired: DesiredState): RestoreTexts {
  const iptables: Partial<Record<Family, string>> = {};
  for (const f of desired.families) {
    iptables[f] = iptablesRestoreText({ write: desired.chains[f], remove: [], insertHooks: desired.hooks });
  }
  return { ipset: ipsetRestoreText(desired.sets.values()), iptables };
}
