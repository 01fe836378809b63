// How the applier runs iptables/ipset: on the host, or inside a network namespace (tests, lab).
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { execa } from 'execa';

/** A long-lived child with piped stdio; `exited` settles (never rejects) when it is gone. */
export interface LongLivedProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<{ exitCode: number | undefined; signal: string | undefined }>;
  kill(): void;
}

/** Runs a command with optional stdin and returns stdout; rejects with stderr in the message. */
export interface Runner {
  (cmd: string, args: readonly string[], input?: string): Promise<string>;
  /**
   * Starts a long-lived process in the same place the calls run (host or namespace). Runners
   * without it (test doubles) get one process per call.
   */
  readonly spawn?: (cmd: string, args: readonly string[]) => LongLivedProcess;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | undefined,
  ) {
    super(
      `${command} failed (exit ${exitCode ?? '?'}): ${stderr.trim().split('\n').slice(0, 5).join(' | ')}`,
    );
    this.name = 'CommandError';
  }
}

function execaRunner(prefix: readonly string[]): Runner {
  const run = async (cmd: string, args: readonly string[], input?: string): Promise<string> => {
    const argv = [...prefix, cmd, ...args];
    const r = await execa(argv[0]!, argv.slice(1), {
      input: input ?? '',
      reject: false,
      stripFinalNewline: false,
    });
    if (r.exitCode !== 0 || r.failed) {
      throw new CommandError(`${cmd} ${args.join(' ')}`, String(r.stderr || r.message || ''), r.exitCode);
    }
    return String(r.stdout);
  };
  const spawn = (cmd: string, args: readonly string[]): LongLivedProcess => {
    const argv = [...prefix, cmd, ...args];
    const child = execa(argv[0]!, argv.slice(1), { buffer: false, reject: false, stdin: 'pipe' });
    // A session idles between transactions: it must not keep the agent (or a test) alive, and it
    // exits by itself when we do (its stdin reaches EOF).
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as Partial<Socket>).unref?.();
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exited: child.then(
        (r) => ({ exitCode: r.exitCode, signal: r.signal }),
        () => ({ exitCode: undefined, signal: undefined }),
      ),
      kill: () => child.kill(),
    };
  };
  return Object.assign(run, { spawn });
}

export const hostRunner = (): Runner => execaRunner([]);

export const netnsRunner = (netns: string): Runner => execaRunner(['ip', 'netns', 'exec', netns]);
