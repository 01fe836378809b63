// Runs the route reconciler harness (test/support/route-harness.ts, compiled) inside a network namespace
// and talks to it over JSON lines. Shared by the integration tests and bench/routes.
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { stopProcess } from '../../support/netns.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
export const harnessJs = `${root}dist/test/support/route-harness.js`;

/** Compiles only the reconciler and what it imports (other folders' compile errors do not matter). */
export async function buildHarness(): Promise<string> {
  await execa('npx', ['tsc', '-p', `${root}test/integration/kernel-routes/tsconfig.harness.json`], {
    cwd: root,
    reject: false,
  });
  if (!existsSync(harnessJs)) throw new Error(`harness did not compile to ${harnessJs}`);
  return harnessJs;
}

export interface Reply {
  ok: boolean;
  result?: unknown;
  error?: string;
  elapsedMs: number;
}

export interface HarnessStats {
  added: number;
  replaced: number;
  deleted: number;
  failed: number;
  driftRepaired: number;
  resyncs: number;
  overruns: number;
  batches: number;
  installed: number;
  waiting: number;
  conflicts: number;
  keptUntilSynced: number;
  desired: Record<string, number>;
}

type HarnessProc = ResultPromise<{ stdin: 'pipe'; stdout: 'pipe'; stderr: 'inherit'; reject: false }>;

export class Harness {
  readonly events: Record<string, unknown>[] = [];
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private readonly exited: Promise<unknown>;

  private constructor(private readonly proc: HarnessProc) {
    const lines = createInterface({ input: proc.stdout });
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { id?: number; event?: string } & Reply & Record<string, unknown>;
      if (msg.event) this.events.push(msg);
      else if (msg.id !== undefined) this.waiting.get(msg.id)?.(msg);
    });
    this.exited = proc.then(() => undefined);
  }

  /** Starts the harness in `ns` and the reconciler in it. */
  static async launch(ns: string, options: { resyncIntervalMs?: number } = {}): Promise<Harness> {
    const proc = execa('ip', ['netns', 'exec', ns, 'node', harnessJs], {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'inherit',
      reject: false,
    });
    const h = new Harness(proc);
    await h.call({ cmd: 'start', ...options });
    return h;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  async call(cmd: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve) => this.waiting.set(id, resolve));
    this.proc.stdin.write(JSON.stringify({ id, ...cmd }) + '\n');
    const r = await Promise.race([
      reply,
      this.exited.then((): Reply => ({ ok: false, error: 'harness exited', elapsedMs: 0 })),
    ]);
    this.waiting.delete(id);
    if (!r.ok) throw new Error(`harness ${String(cmd.cmd)}: ${r.error}`);
    return r;
  }

  async stats(): Promise<HarnessStats> {
    return (await this.call({ cmd: 'stats' })).result as HarnessStats;
  }

  /** Graceful: the reconciler stops (routes stay) and the process exits. */
  async close(): Promise<void> {
    this.proc.stdin.end();
    const timer = setTimeout(() => void stopProcess(this.proc.pid), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Crash: SIGKILL, no chance to clean anything up. */
  async kill9(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}
