// Puts a DesiredState into the kernel, atomically per step:
//   1. sets: new sets created; changed sets refilled under a temporary name and swapped in
//      (or, for a small change, a few add/del); removals first, so a pod in transit between two
//      sets is briefly in neither, never in both;
//   2. chains: one `iptables-restore --noflush --wait` per family that declares and rewrites only
//      tern's chains, deletes tern's stale chains, and inserts tern's jumps into builtin chains if
//      missing — every other chain and rule of the table stays as it was;
//   3. sets no longer referenced are destroyed.
// Read-back (`iptables-save`, `ipset save`) finds drift; a full apply repairs it.
import { performance } from 'node:perf_hooks';
import { hookRule } from './render.js';
import { isTernName } from './names.js';
import {
  addLines,
  createSetLine,
  ipsetRestoreText,
  iptablesRestoreText,
  type ChainChanges,
} from './restore-text.js';
import { IpsetSession, RestoreSession } from './restore-session.js';
import { CommandError, type Runner } from './runner.js';
import type { DesiredSet, DesiredState, Family } from './types.js';

const RESTORE: Record<Family, string> = { 4: 'iptables-restore', 6: 'ip6tables-restore' };
const SAVE: Record<Family, string> = { 4: 'iptables-save', 6: 'ip6tables-save' };

export interface KernelState {
  readonly sets: ReadonlyMap<string, { type: string; family: Family; members: string[] }>;
  readonly chains: Record<Family, Map<string, string[]>>;
  /** Builtin-chain rules that jump to a tern chain, per family (`-A FORWARD -j tern-FORWARD`). */
  readonly hooks: Record<Family, Set<string>>;
}

export interface ApplyStats {
  readonly mode: 'full' | 'delta' | 'none';
  readonly setsWritten: number;
  readonly setMemberOps: number;
  readonly setsRemoved: number;
  readonly chainsWritten: number;
  readonly chainsRemoved: number;
  readonly commands: number;
  /**
   * Time between the IPv4 and the IPv6 chain commits of this apply (0 when one family or none
   * changed): the longest a dual-stack endpoint saw the new rules in one family only.
   */
  readonly familySkewMs: number;
}

const sameLines = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
  a === b || (!!a && !!b && a.length === b.length && a.every((l, i) => l === b[i]));

/** When more than this share of a set changes, rebuild and swap rather than add/del. */
const SWAP_THRESHOLD = 0.5;

/** Retries of a set destruction the kernel still holds (10 ms doubling: ~1.3 s in all). */
const DESTROY_RETRIES = 7;

export interface PolicyApplierOptions {
  /**
   * Keep one `iptables-restore` process per family alive between transactions (iptables-nft
   * only; see restore-session.ts). Whoever enables it calls close() when done.
   */
  readonly sessions?: boolean;
}

export class PolicyApplier {
  private readonly sessions = new Map<Family, Promise<RestoreSession | null>>();
  private ipset: Promise<IpsetSession | null> | null = null;

  constructor(
    private readonly run: Runner,
    private readonly options: PolicyApplierOptions = {},
  ) {}

  /** Ends the long-lived restore processes, if any. */
  async close(): Promise<void> {
    const sessions = await Promise.all([...this.sessions.values(), this.ipset]);
    this.sessions.clear();
    this.ipset = null;
    await Promise.all(sessions.map((s) => s?.close()));
  }

  /** Makes the kernel match `desired` whatever it holds now (first start, repair). */
  async applyFull(desired: DesiredState): Promise<ApplyStats> {
    let commands = 0;
    // Read everything first, side by side: the sets that exist and each family's tern chains.
    const [existingSets, ...current] = await Promise.all([
      this.listSets(),
      ...desired.families.map((f) => this.readChains(f)),
    ]);
    commands += 1 + current.length;
    const setText = ipsetRestoreText(desired.sets.values(), existingSets);
    if (setText) {
      await this.run('ipset', ['restore'], setText);
      commands++;
    }
    // The families are separate tables: restore them side by side.
    const perFamily = await Promise.all(
      desired.families.map(async (f, i) => {
        const now = current[i]!;
        const want = desired.chains[f];
        const remove = [...now.chains.keys()].filter((c) => !want.has(c));
        const insertHooks = desired.hooks.filter((h) => !now.hooks.has(hookRule(h)));
        await this.restoreChains(f, { write: want, remove, insertHooks });
        return { written: want.size, removed: remove.length, doneAt: performance.now() };
      }),
    );
    const commits = perFamily.map((r) => r.doneAt);
    commands += perFamily.length;
    const chainsWritten = perFamily.reduce((n, r) => n + r.written, 0);
    const chainsRemoved = perFamily.reduce((n, r) => n + r.removed, 0);
    const stale = [...existingSets].filter((s) => !desired.sets.has(s));
    if (stale.length > 0) {
      await this.destroySets(stale);
      commands++;
    }
    return {
      mode: 'full',
      setsWritten: desired.sets.size,
      setMemberOps: 0,
      setsRemoved: stale.length,
      chainsWritten,
      chainsRemoved,
      commands,
      familySkewMs: commits.length > 1 ? Math.max(...commits) - Math.min(...commits) : 0,
    };
  }

  /** Moves the kernel from `prev` (what was last applied) to `next`, touching only differences. */
  async applyDelta(prev: DesiredState, next: DesiredState): Promise<ApplyStats> {
    let commands = 0;
    const creates: string[] = [];
    const dels: string[] = [];
    const adds: string[] = [];
    const swaps: DesiredSet[] = [];
    let setsWritten = 0;
    let setMemberOps = 0;
    for (const [name, set] of next.sets) {
      const old = prev.sets.get(name);
      if (old === set) continue;
      if (!old) {
        creates.push(createSetLine(set), ...addLines(name, set.members));
        setsWritten++;
        continue;
      }
      if (sameLines(old.members, set.members)) continue;
      const before = new Set(old.members);
      const after = new Set(set.members);
      const removed = old.members.filter((m) => !after.has(m));
      const added = set.members.filter((m) => !before.has(m));
      if (removed.length + added.length > Math.max(64, SWAP_THRESHOLD * set.members.length)) {
        swaps.push(set);
        setsWritten++;
        continue;
      }
      // A hash:net member's match/nomatch flag is part of the text; re-adding flips it in place.
      dels.push(...removed.map((m) => `del ${name} ${m.replace(/ nomatch$/, '')}`));
      adds.push(...added.map((m) => `add ${name} ${m}`));
      setMemberOps += removed.length + added.length;
    }
    const ipset = creates.length + swaps.length === 0 ? await this.ipsetSession() : null;
    let setText = '';
    if (ipset && dels.length + adds.length > 0) {
      // Members only (the label-change path): through the running `ipset -`, no process start.
      setText = [...dels, ...adds].join('\n') + '\n';
      await ipset.apply(setText);
      commands++;
    } else {
      setText =
        [...creates, ...dels, ...adds.map((a) => `${a} -exist`)].join('\n') +
        (creates.length + dels.length + adds.length > 0 ? '\n' : '') +
        ipsetRestoreText(swaps, new Set(swaps.map((s) => s.name)));
      if (setText) {
        await this.run('ipset', ['restore'], setText);
        commands++;
      }
    }
    const perFamily = await Promise.all(
      next.families.map(async (f) => {
        const want = next.chains[f];
        const had = prev.chains[f];
        const write = new Map([...want].filter(([name, lines]) => !sameLines(had.get(name), lines)));
        const remove = [...had.keys()].filter((c) => !want.has(c));
        if (write.size + remove.length === 0) return { written: 0, removed: 0, ran: 0, doneAt: null };
        await this.restoreChains(f, { write, remove, insertHooks: [] });
        return { written: write.size, removed: remove.length, ran: 1, doneAt: performance.now() };
      }),
    );
    const commits = perFamily.flatMap((r) => (r.doneAt === null ? [] : [r.doneAt]));
    commands += perFamily.reduce((n, r) => n + r.ran, 0);
    const chainsWritten = perFamily.reduce((n, r) => n + r.written, 0);
    const chainsRemoved = perFamily.reduce((n, r) => n + r.removed, 0);
    const stale = [...prev.sets.keys()].filter((s) => !next.sets.has(s));
    if (stale.length > 0) {
      await this.destroySets(stale);
      commands++;
    }
    const changed = setText !== '' || chainsWritten + chainsRemoved + stale.length > 0;
    return {
      mode: changed ? 'delta' : 'none',
      setsWritten,
      setMemberOps,
      setsRemoved: stale.length,
      chainsWritten,
      chainsRemoved,
      commands,
      familySkewMs: commits.length > 1 ? Math.max(...commits) - Math.min(...commits) : 0,
    };
  }

  /** What tern has in the kernel now. */
  async readBack(families: readonly Family[]): Promise<KernelState> {
    const chains: Record<Family, Map<string, string[]>> = { 4: new Map(), 6: new Map() };
    const hooks: Record<Family, Set<string>> = { 4: new Set(), 6: new Set() };
    for (const f of families) {
      const r = await this.readChains(f);
      chains[f] = r.chains;
      hooks[f] = r.hooks;
    }
    return { sets: await this.saveSets(), chains, hooks };
  }

  /** Differences between the kernel and `desired`, one line each; empty when in sync. */
  async drift(desired: DesiredState): Promise<string[]> {
    const actual = await this.readBack(desired.families);
    const out: string[] = [];
    for (const [name, set] of desired.sets) {
      const got = actual.sets.get(name);
      if (!got) out.push(`set ${name} missing`);
      else if (got.type !== set.type) out.push(`set ${name} has type ${got.type}, want ${set.type}`);
      else if (!sameLines(got.members, set.members)) out.push(`set ${name} members differ`);
    }
    for (const name of actual.sets.keys()) if (!desired.sets.has(name)) out.push(`set ${name} is stale`);
    for (const f of desired.families) {
      for (const [name, lines] of desired.chains[f]) {
        const got = actual.chains[f].get(name);
        if (!got) out.push(`IPv${f} chain ${name} missing`);
        else if (!sameLines(got, lines)) out.push(`IPv${f} chain ${name} differs`);
      }
      for (const name of actual.chains[f].keys()) {
        if (!desired.chains[f].has(name)) out.push(`IPv${f} chain ${name} is stale`);
      }
      for (const hook of desired.hooks) {
        if (!actual.hooks[f].has(hookRule(hook))) out.push(`IPv${f} jump ${hookRule(hook)} missing`);
      }
    }
    return out;
  }

  /** Removes every tern chain, jump and set (uninstall, test cleanup). */
  async removeAll(families: readonly Family[]): Promise<void> {
    for (const f of families) {
      const current = await this.readChains(f);
      const lines = ['*filter'];
      for (const rule of current.hooks) lines.push(rule.replace(/^-A /, '-D '));
      for (const name of current.chains.keys()) lines.push(`:${name} - [0:0]`);
      for (const name of current.chains.keys()) lines.push(`-X ${name}`);
      lines.push('COMMIT');
      if (lines.length > 2) await this.run(RESTORE[f], ['--noflush', '--wait'], lines.join('\n') + '\n');
    }
    const sets = await this.listSets();
    if (sets.size > 0) await this.destroySets([...sets]);
  }

  private async restoreChains(family: Family, changes: ChainChanges): Promise<void> {
    const text = iptablesRestoreText(changes);
    const session = await this.session(family);
    if (session) await session.apply(text);
    else await this.run(RESTORE[family], ['--noflush', '--wait'], text);
  }

  /** The family's restore session, when enabled and the node's iptables is the nft variant. */
  private session(family: Family): Promise<RestoreSession | null> {
    let session = this.sessions.get(family);
    if (!session) {
      const spawn = this.run.spawn;
      session =
        this.options.sessions && spawn
          ? this.run(RESTORE[family], ['--version']).then(
              (v) => (v.includes('nf_tables') ? new RestoreSession(spawn, RESTORE[family]) : null),
              () => null,
            )
          : Promise.resolve(null);
      this.sessions.set(family, session);
    }
    return session;
  }

  /** The ipset session, when enabled and `stdbuf` (which it needs for unbuffered prompts) runs. */
  private ipsetSession(): Promise<IpsetSession | null> {
    if (!this.ipset) {
      const spawn = this.run.spawn;
      this.ipset =
        this.options.sessions && spawn
          ? this.run('stdbuf', ['--version']).then(
              () => new IpsetSession(spawn),
              () => null,
            )
          : Promise.resolve(null);
    }
    return this.ipset;
  }

  private async listSets(): Promise<Set<string>> {
    const out = await this.run('ipset', ['list', '-n']);
    return new Set(out.split('\n').filter((n) => n !== '' && isTernName(n)));
  }

  private async saveSets(): Promise<Map<string, { type: string; family: Family; members: string[] }>> {
    const out = await this.run('ipset', ['save']);
    const sets = new Map<string, { type: string; family: Family; members: string[] }>();
    for (const line of out.split('\n')) {
      const words = line.split(' ');
      const name = words[1];
      if (!name || !isTernName(name)) continue;
      if (words[0] === 'create') {
        const family = words[words.indexOf('family') + 1] === 'inet6' ? 6 : 4;
        sets.set(name, { type: words[2]!, family, members: [] });
      } else if (words[0] === 'add') {
        sets.get(name)?.members.push(words.slice(2).join(' '));
      }
    }
    for (const s of sets.values()) s.members.sort();
    return sets;
  }

  private async readChains(family: Family): Promise<{ chains: Map<string, string[]>; hooks: Set<string> }> {
    const out = await this.run(SAVE[family], ['-t', 'filter']);
    const chains = new Map<string, string[]>();
    const hooks = new Set<string>();
    for (const line of out.split('\n')) {
      if (line.startsWith(':')) {
        const name = line.slice(1).split(' ')[0]!;
        if (isTernName(name)) chains.set(name, []);
      } else if (line.startsWith('-A ')) {
        const chain = line.split(' ')[1]!;
        if (isTernName(chain)) chains.get(chain)?.push(line);
        else if (/ -j tern-\S+$/.test(line) && /^-A [A-Z]+ -j /.test(line)) hooks.add(line);
      }
    }
    return { chains, hooks };
  }

  /**
   * The kernel drops a set reference of a deleted rule in deferred work after the commit; with a
   * long-lived restore session, destroying the set right away can find it still "in use" for a
   * few tens of milliseconds (measured). So: retry what is left, with backoff, for about a second.
   */
  private async destroySets(names: readonly string[]): Promise<void> {
    let left = names;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.run('ipset', ['restore'], left.map((n) => `destroy ${n}`).join('\n') + '\n');
        return;
      } catch (e) {
        const inUse = e instanceof CommandError && /in use by a kernel component/.test(e.stderr);
        if (!inUse || attempt >= DESTROY_RETRIES) throw e;
        await new Promise((r) => setTimeout(r, 10 * 2 ** attempt));
        const existing = await this.listSets();
        left = left.filter((n) => existing.has(n));
        if (left.length === 0) return;
      }
    }
  }
}
