// RestoreSession against a scripted stand-in for `iptables-restore --noflush --verbose`: it
// commits at each COMMIT and echoes comment lines, or fails a transaction the way the real one
// does (message on stderr, process exits).
import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { CommandError, RestoreSession, type LongLivedProcess } from '../../../policy/index.js';

interface FakeRestore {
  readonly spawn: (cmd: string, args: readonly string[]) => LongLivedProcess;
  /** Transactions committed, in order, across every process started. */
  readonly committed: string[][];
  readonly started: string[];
  /** Processes that are still running. */
  running: number;
}

/** `failOn`: a rule line that makes the process fail (exit 2) instead of committing. */
function fakeRestore(failOn = '-A bad'): FakeRestore {
  const fake: FakeRestore = { spawn: () => null!, committed: [], started: [], running: 0 };
  return Object.assign(fake, {
    spawn: (cmd: string, args: readonly string[]): LongLivedProcess => {
      fake.started.push([cmd, ...args].join(' '));
      fake.running++;
      const stdin = new PassThrough();
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let exit!: (r: { exitCode: number | undefined; signal: string | undefined }) => void;
      const exited = new Promise<{ exitCode: number | undefined; signal: string | undefined }>(
        (r) => (exit = r),
      );
      const stop = (exitCode: number) => {
        fake.running--;
        stdout.end();
        stderr.end();
        exit({ exitCode, signal: undefined });
      };
      let buffer = '';
      let transaction: string[] = [];
      let alive = true;
      stdin.setEncoding('utf8');
      stdin.on('data', (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while (alive && (nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.startsWith('#')) stdout.write(`${line}\n`);
          else if (line === 'COMMIT') {
            fake.committed.push(transaction);
            transaction = [];
          } else if (line === failOn) {
            stderr.write(`${cmd}: line 3 failed\n`);
            alive = false;
            setImmediate(() => stop(1));
          } else if (line !== '*filter') transaction.push(line);
        }
      });
      stdin.on('end', () => alive && stop(0));
      return { stdin, stdout, stderr, exited, kill: () => alive && ((alive = false), stop(137)) };
    },
  });
}

const tx = (...rules: string[]) => ['*filter', ...rules, 'COMMIT', ''].join('\n');

describe('RestoreSession', () => {
  test('one process serves many transactions, each resolved only once committed', async () => {
    const fake = fakeRestore();
    const session = new RestoreSession(fake.spawn, 'iptables-restore');
    await session.apply(tx(':tern-a - [0:0]', '-A tern-a -j RETURN'));
    expect(fake.committed).toEqual([[':tern-a - [0:0]', '-A tern-a -j RETURN']]);
    await session.apply(tx('-A tern-a -j DROP'));
    expect(fake.committed).toHaveLength(2);
    expect(fake.started).toEqual(['iptables-restore --noflush --verbose']);
    await session.close();
    expect(fake.running).toBe(0);
  });

  test('concurrent calls are committed one at a time, in call order', async () => {
    const fake = fakeRestore();
    const session = new RestoreSession(fake.spawn, 'iptables-restore');
    await Promise.all([1, 2, 3, 4].map((i) => session.apply(tx(`-A tern-a -j MARK --set-mark ${i}`))));
    expect(fake.committed.map((t) => t[0])).toEqual(
      [1, 2, 3, 4].map((i) => `-A tern-a -j MARK --set-mark ${i}`),
    );
    await session.close();
  });

  test('a failing transaction rejects with the stderr text and the next one starts a new process', async () => {
    const fake = fakeRestore();
    const session = new RestoreSession(fake.spawn, 'iptables-restore');
    await session.apply(tx('-A tern-a -j RETURN'));
    const failed = session.apply(tx('-A tern-a -j RETURN', '-A bad'));
    await expect(failed).rejects.toBeInstanceOf(CommandError);
    await expect(failed).rejects.toThrow(/line 3 failed/);
    expect(fake.committed).toHaveLength(1);
    await session.apply(tx('-A tern-b -j RETURN'));
    expect(fake.committed.at(-1)).toEqual(['-A tern-b -j RETURN']);
    expect(fake.started).toHaveLength(2);
    await session.close();
    expect(fake.running).toBe(0);
  });

  test('close() with no transaction ever applied starts nothing', async () => {
    const fake = fakeRestore();
    await new RestoreSession(fake.spawn, 'ip6tables-restore').close();
    expect(fake.started).toEqual([]);
  });
});
