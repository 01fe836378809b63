// The long-lived iptables-restore session against the real iptables-nft in a scratch namespace:
// commits land while the process keeps running, a bad transaction commits nothing and the next
// one works, other tools' changes between transactions are neither lost nor resurrected, and
// close() leaves no process behind.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IpsetSession, netnsRunner, RestoreSession, type Runner } from '../../../policy/index.js';
import { NetnsSet } from '../../support/netns.js';

const netns = new NetnsSet();
let ns: string;
let run: Runner;

beforeAll(async () => {
  ns = await netns.add('session');
  run = netnsRunner(ns);
});
afterAll(() => netns.cleanup());

const save = async (cmd = 'iptables-save') =>
  (await run(cmd, ['-t', 'filter'])).split('\n').filter((l) => l.startsWith('-A ') || l.startsWith(':'));
/** Processes in the namespace (asked from outside it). */
const pids = async () => (await execa('ip', ['netns', 'pids', ns])).stdout.trim();
const tx = (...rules: string[]) => ['*filter', ...rules, 'COMMIT', ''].join('\n');

describe('RestoreSession on iptables-nft', () => {
  test('each transaction is in the kernel when apply() resolves, with the process still running', async () => {
    const session = new RestoreSession(run.spawn!, 'iptables-restore');
    try {
      await session.apply(tx(':tern-s1 - [0:0]', '-A tern-s1 -j RETURN'));
      expect(await save()).toContain('-A tern-s1 -j RETURN');
      expect(await pids()).not.toBe('');
      await session.apply(tx(':tern-s1 - [0:0]', '-A tern-s1 -p tcp -m tcp --dport 80 -j ACCEPT'));
      const rules = await save();
      expect(rules).toContain('-A tern-s1 -p tcp -m tcp --dport 80 -j ACCEPT');
      expect(rules).not.toContain('-A tern-s1 -j RETURN');
    } finally {
      await session.close();
    }
    expect(await pids()).toBe('');
  });

  test('a transaction that fails commits none of its lines, and the session goes on', async () => {
    const session = new RestoreSession(run.spawn!, 'ip6tables-restore');
    try {
      await session.apply(tx(':tern-s2 - [0:0]', '-A tern-s2 -j RETURN'));
      await expect(
        session.apply(tx(':tern-s2 - [0:0]', '-A tern-s2 -j DROP', '-A tern-s2 -j tern-no-such-chain')),
      ).rejects.toThrow(/ip6tables-restore/);
      expect((await save('ip6tables-save')).filter((l) => l.startsWith('-A tern-s2'))).toEqual([
        '-A tern-s2 -j RETURN',
      ]);
      await session.apply(tx(':tern-s2 - [0:0]', '-A tern-s2 -j ACCEPT'));
      expect((await save('ip6tables-save')).filter((l) => l.startsWith('-A tern-s2'))).toEqual([
        '-A tern-s2 -j ACCEPT',
      ]);
    } finally {
      await session.close();
    }
  });

  test('changes other tools make between transactions are seen: foreign rules stay, strays in our chain go', async () => {
    const session = new RestoreSession(run.spawn!, 'iptables-restore');
    try {
      await session.apply(tx(':tern-s3 - [0:0]', '-A tern-s3 -j RETURN'));
      await run('iptables', ['-N', 'foreign-chain']);
      await run('iptables', ['-A', 'FORWARD', '-j', 'foreign-chain']);
      await run('iptables', ['-A', 'tern-s3', '-j', 'ACCEPT']); // drift inside a tern chain
      // The running process must resolve a chain created after it started.
      await session.apply(tx(':tern-s3 - [0:0]', '-A tern-s3 -j foreign-chain'));
      const rules = await save();
      expect(rules).toContain('-A FORWARD -j foreign-chain');
      expect(rules.filter((l) => l.startsWith('-A tern-s3'))).toEqual(['-A tern-s3 -j foreign-chain']);
    } finally {
      await session.close();
    }
  });
});

describe('IpsetSession on the kernel ipset', () => {
  const members = async (set: string) =>
    (await run('ipset', ['save', set]))
      .split('\n')
      .filter((l) => l.startsWith('add '))
      .map((l) => l.split(' ').slice(2).join(' '))
      .sort();

  test('member changes are in the set when apply() resolves; an error is reported and the session goes on', async () => {
    await run('ipset', ['create', 'tern-s4', 'hash:net']);
    const session = new IpsetSession(run.spawn!);
    try {
      await session.apply('add tern-s4 10.9.0.0/16\nadd tern-s4 10.9.1.0/24 nomatch\n');
      expect(await members('tern-s4')).toEqual(['10.9.0.0/16', '10.9.1.0/24 nomatch']);
      await session.apply('del tern-s4 10.9.1.0/24\nadd tern-s4 10.9.1.0/24\n');
      expect(await members('tern-s4')).toEqual(['10.9.0.0/16', '10.9.1.0/24']);
      // Deleting what is not there fails the call (the engine then re-applies in full).
      await expect(session.apply('del tern-s4 10.8.0.0/16\nadd tern-s4 10.7.0.0/16\n')).rejects.toThrow(
        /cannot be deleted/,
      );
      await session.apply('del tern-s4 10.7.0.0/16\n');
      expect(await members('tern-s4')).toEqual(['10.9.0.0/16', '10.9.1.0/24']);
      await expect(session.apply('add tern-s4 10.6.0.0/16 -exist\n')).rejects.toThrow(/-exist/);
    } finally {
      await session.close();
      await run('ipset', ['destroy', 'tern-s4']);
    }
    expect(await pids()).toBe('');
  });
});
