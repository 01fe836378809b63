// How the applier runs iptables/ipset: on the host, or inside a network namespace (tests, lab).
import { execa } from 'execa';

/** Runs a command with optional stdin and returns stdout; rejects with stderr in the message. */
export type Runner = (cmd: string, args: readonly string[], input?: string) => Promise<string>;

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
  return async (cmd, args, input) => {
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
}

export const hostRunner = (): Runner => execaRunner([]);

export const netnsRunner = (netns: string): Runner => execaRunner(['ip', 'netns', 'exec', netns]);
