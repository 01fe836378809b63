// Network namespaces for integration tests: unique names, and removal even when a test fails.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

/** A short random suffix so parallel test files never collide. */
export const uniqueSuffix = (bytes = 3): string => randomBytes(bytes).toString('hex');

export class NetnsSet {
  readonly suffix = uniqueSuffix();
  private readonly created: string[] = [];

  /** Creates `t<suffix>-<role>` with loopback up and returns its name. */
  async add(role: string): Promise<string> {
    const name = `t${this.suffix}-${role}`;
    await execa('ip', ['netns', 'add', name]);
    this.created.push(name);
    await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Connects two namespaces with a veth pair and addresses (CIDR notation) on each end. */
  async link(a: string, aIf: string, aAddr: string, b: string, bIf: string, bAddr: string): Promise<void> {
    await execa('ip', ['-n', a, 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b]);
    await execa('ip', ['-n', a, 'addr', 'add', aAddr, 'dev', aIf, ...(aAddr.includes(':') ? ['nodad'] : [])]);
    await execa('ip', ['-n', b, 'addr', 'add', bAddr, 'dev', bIf, ...(bAddr.includes(':') ? ['nodad'] : [])]);
    await execa('ip', ['-n', a, 'link', 'set', aIf, 'up']);
    await execa('ip', ['-n', b, 'link', 'set', bIf, 'up']);
  }

  /** Runs a command inside a namespace. */
  exec(ns: string, cmd: string, args: string[], options: { reject?: boolean; timeout?: number } = {}) {
    return execa('ip', ['netns', 'exec', ns, cmd, ...args], {
      reject: options.reject ?? true,
      timeout: options.timeout,
    });
  }

  /** Deletes every namespace this set created (veths inside go with them). Never throws. */
  async cleanup(): Promise<void> {
    for (const name of this.created.splice(0).reverse()) {
      await execa('ip', ['netns', 'del', name], { reject: false });
    }
  }
}

/** Stops a process we started: SIGTERM, then SIGKILL after `graceMs`. Resolves when it is gone. */
export async function stopProcess(pid: number | undefined, graceMs = 3000): Promise<void> {
  if (!pid) return;
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    while (alive()) await new Promise((r) => setTimeout(r, 20));
  }
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
  );
}
