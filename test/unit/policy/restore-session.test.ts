// RestoreSession against a scripted stand-in for `iptables-restore --noflush --verbose`: it
// commits at each COMMIT and echoes comment lines, or fails a transaction the way the real one
// does (message on stderr, process exits).
import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { CommandError, IpsetSession, RestoreSession, type LongLivedProcess } from '../../../policy/index.js';

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

/** A stand-in for interactive `ipset -` (stderr merged): a prompt at start and after each line, split across writes. */
function fakeIpset() {
  const lines: string[] = [];
  const spawn = (): LongLivedProcess => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let exit!: (r: { exitCode: number | undefined; signal: string | undefined }) => void;
    const exited = new Promise<{ exitCode: number | undefined; signal: string | undefined }>(
      (r) => (exit = r),
    );
    // Output goes out in order, one piece per event-loop turn, a prompt in two pieces.
    let queue = Promise.resolve();
    const write = (text: string) =>
      (queue = queue.then(() => new Promise<void>((r) => setImmediate(() => (stdout.write(text), r())))));
    const prompt = () => {
      void write('ips');
      void write('et> ');
    };
    prompt();
    let buffer = '';
    stdin.setEncoding('utf8');
    stdin.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        if (line.startsWith('del '))
          stdout.write("ipset v7.17: Element cannot be deleted from the set: it's not added\n");
        prompt();
      }
    });
    stdin.on('end', async () => {
      await queue;
      stdout.end();
      stderr.end();
      exit({ exitCode: 0, signal: undefined });
    });
    return { stdin, stdout, stderr, exited, kill: () => stdin.end() };
  };
  return { spawn, lines };
}

describe('IpsetSession', () => {
  test('resolves once every line of the transaction has been run, prompts split across reads', async () => {
    const fake = fakeIpset();
    const session = new IpsetSession(fake.spawn);
    await session.apply('add s 10.0.0.1\nadd s 10.0.0.2\n');
    expect(fake.lines).toEqual(['add s 10.0.0.1', 'add s 10.0.0.2']);
    await session.apply('add s 10.0.0.3\n');
    expect(fake.lines).toHaveLength(3);
    await session.close();
  });

  test('an error printed for any line fails the call with that text; the next call succeeds', async () => {
    const fake = fakeIpset();
    const session = new IpsetSession(fake.spawn);
    await expect(session.apply('add s 10.0.0.1\ndel s 10.0.0.9\nadd s 10.0.0.2\n')).rejects.toThrow(
      /cannot be deleted/,
    );
    await session.apply('add s 10.0.0.4\n');
    expect(fake.lines.at(-1)).toBe('add s 10.0.0.4');
    await session.close();
  });

  test('refuses -exist, which would stick for every later line in interactive mode', async () => {
    const fake = fakeIpset();
    const session = new IpsetSession(fake.spawn);
    await expect(session.apply('add s 10.0.0.1 -exist\n')).rejects.toThrow(/-exist/);
    expect(fake.lines).toEqual([]);
    await session.close();
  });
});
