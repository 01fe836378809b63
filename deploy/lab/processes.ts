// Starting and stopping the lab's long-running processes (etcd, the ToR daemon, agents,
// pod servers). Each is detached with its output in a log file, and its PID recorded with
// its command line so `down` never kills a recycled PID that is not ours.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import type { LabProcess } from './state.js';

export interface StartOptions {
  role: string;
  /** Run inside this network namespace (via `ip netns exec`). */
  netns?: string;
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export function startProcess(o: StartOptions): LabProcess {
  const argv = o.netns ? ['ip', 'netns', 'exec', o.netns, o.command, ...o.args] : [o.command, ...o.args];
  const log = openSync(o.logFile, 'a');
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: o.cwd,
      env: { ...process.env, ...o.env },
    });
    if (child.pid === undefined) throw new Error(`could not start ${o.role}: ${argv.join(' ')}`);
    child.unref();
    // `ip netns exec` execs the command, so the PID is the command's own.
    return { role: o.role, pid: child.pid, cmdline: [o.command, ...o.args].join(' ') };
  } finally {
    closeSync(log);
  }
}

export function isOurs(p: LabProcess): boolean {
  try {
    const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    // Until `ip netns exec` has exec'd the command, the PID still shows the wrapper.
    return (
      cmdline === p.cmdline || (cmdline.startsWith('ip netns exec ') && cmdline.endsWith(` ${p.cmdline}`))
    );
  } catch {
    return false;
  }
}

/**
 * The process has exited. Not the same as !isOurs: between fork and exec a child still shows its
 * parent's command line, so a process that was just started may not look like ours for a moment.
 */
export function hasExited(p: LabProcess): boolean {
  try {
    process.kill(p.pid, 0);
  } catch {
    return true;
  }
  try {
    // A zombie (exited, not yet reaped) counts as exited.
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p.pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

export async function stopLabProcess(p: LabProcess, graceMs = 3000): Promise<void> {
  if (!isOurs(p)) return;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isOurs(p) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isOurs(p)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (isOurs(p)) await new Promise((r) => setTimeout(r, 20));
  }
}
