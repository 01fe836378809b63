// One long-lived `iptables-restore --noflush` per family, fed a transaction at a time.
//
// iptables-nft commits at every COMMIT line, not at EOF (measured: a chain written before COMMIT
// is in the kernel while stdin stays open), so one process can serve every sync. That saves the
// process start, which dominates a small change: on a busy 2-CPU node, spawning a trivial
// restore costs 40-60 ms, a transaction in a running one a few. With --verbose, comment lines
// are echoed to stdout and flushed; a marker comment after COMMIT tells us the commit is done.
// A failing transaction makes the process exit (nothing of it was committed: an nft batch is
// all or nothing); the caller sees the error and the next transaction starts a new process.
//
// Only for iptables-nft: iptables-legacy takes the xtables lock for the life of the process,
// which would block kube-proxy and every other iptables user on the node.
import { CommandError, type LongLivedProcess, type Runner } from './runner.js';

interface Pending {
  readonly marker: string;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** How long a transaction may take before the session is killed and the call fails. */
const TRANSACTION_TIMEOUT_MS = 60_000;

export class RestoreSession {
  private child: LongLivedProcess | null = null;
  private pending: Pending | null = null;
  private stdout = '';
  private stderr = '';
  private seq = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly spawn: NonNullable<Runner['spawn']>,
    private readonly command: string,
  ) {}

  /** Applies one `*filter … COMMIT` text; resolves once it is committed. Calls run one at a time. */
  apply(text: string): Promise<void> {
    const run = this.tail.catch(() => undefined).then(() => this.applyNow(text));
    this.tail = run;
    return run;
  }

  /** Ends the process (EOF on stdin) and waits for it. */
  async close(): Promise<void> {
    await this.tail.catch(() => undefined);
    const child = this.child;
    this.child = null;
    if (!child) return;
    child.stdin.end();
    await child.exited;
  }

  private applyNow(text: string): Promise<void> {
    const child = this.child ?? this.start();
    const marker = `# tern-committed ${++this.seq}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new CommandError(`${this.command} (session)`, 'transaction timed out', undefined));
        child.kill();
      }, TRANSACTION_TIMEOUT_MS);
      timer.unref();
      this.pending = {
        marker,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.stderr = '';
      child.stdin.write(`${text}${marker}\n`);
    });
  }

  private start(): LongLivedProcess {
    const child = this.spawn(this.command, ['--noflush', '--verbose']);
    this.child = child;
    this.stdout = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.stdout += chunk;
      let nl: number;
      while ((nl = this.stdout.indexOf('\n')) >= 0) {
        const line = this.stdout.slice(0, nl);
        this.stdout = this.stdout.slice(nl + 1);
        if (this.pending && line === this.pending.marker) {
          const done = this.pending;
          this.pending = null;
          done.resolve();
        }
      }
    });
    child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    // EPIPE when the process died mid-write; the exit below reports it.
    child.stdin.on('error', () => undefined);
    void child.exited.then(({ exitCode, signal }) => {
      if (this.child === child) this.child = null;
      this.fail(
        new CommandError(
          `${this.command} --noflush (session)`,
          this.stderr || `exited (${signal ?? exitCode ?? 'unknown'})`,
          exitCode,
        ),
      );
    });
    return child;
  }

  private fail(e: Error): void {
    const pending = this.pending;
    this.pending = null;
    pending?.reject(e);
  }
}
