// Runs a command with optional stdin and collects its output. Plain child_process: the dataplane
// execs on the ADD hot path, and this is the cheapest way to do it from Node.
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    super(`${command} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandError';
  }
}

export function run(cmd: string, args: string[], input = '', timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => undefined); // the child may exit before reading all of it
    child.stdin.end(input);
  });
}

/** Runs and throws CommandError on a non-zero exit. */
export async function runOk(cmd: string, args: string[], input = ''): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new CommandError([cmd, ...args].join(' '), r);
  return r.stdout;
}

/** `ip -batch -` in the caller's netns, or inside the netns at `netnsPath` through nsenter. */
export function ipBatch(lines: string[], netnsPath?: string, json = false): Promise<string> {
  const ipArgs = [...(json ? ['-j'] : []), '-batch', '-'];
  const input = lines.join('\n') + '\n';
  return netnsPath
    ? runOk('nsenter', [`--net=${netnsPath}`, 'ip', ...ipArgs], input)
    : runOk('ip', ipArgs, input);
}
