// Long-lived restore processes, fed one transaction at a time, so that a small change does not
// pay a process start (40-60 ms on a busy 2-CPU node; a transaction in a running process: ~1 ms).
//
// iptables: iptables-nft commits at every COMMIT line, not at EOF (measured: a chain written
// before COMMIT is in the kernel while stdin stays open). With --verbose, comment lines are
// echoed to stdout and flushed; a marker comment after COMMIT tells us the commit is done. A
// failing transaction makes the process exit (nothing of it was committed: an nft batch is all
// or nothing); the caller sees the error and the next transaction starts a new process. Only for
// iptables-nft: iptables-legacy holds the xtables lock for the life of the process, which would
// block kube-proxy and every other iptables user on the node.
//
// ipset: `ipset restore` buffers everything until EOF, but interactive `ipset -` runs each line
// at once and prints a prompt before reading the next. Run unbuffered (stdbuf -o0) with stderr
// merged into stdout, the prompts count finished lines and whatever else is printed is an error,
// in order. Lines must not use -exist: in interactive mode it sticks for every later line.
import { CommandError, type LongLivedProcess, type Runner } from './runner.js';

type Spawn = NonNullable<Runner['spawn']>;

/** One process's view of the protocol: how a transaction is written and how its end is read. */
interface Framing {
  frame(text: string): string;
  /** Output as it arrives: 'ok' or an error once the current transaction is over, else null. */
  read(chunk: string): 'ok' | { readonly error: string } | null;
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** How long a transaction may take before the session is killed and the call fails. */
const TRANSACTION_TIMEOUT_MS = 60_000;

abstract class LongLivedSession {
  private child: LongLivedProcess | null = null;
  private framing: Framing | null = null;
  private pending: Pending | null = null;
  private stderr = '';
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly spawn: Spawn,
    /** Names the session in errors. */
    readonly name: string,
  ) {}

  protected abstract start(spawn: Spawn): { child: LongLivedProcess; framing: Framing };

  /** Applies one transaction; resolves once it is done. Calls run one at a time, in order. */
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
    const { child, framing } =
      this.child && this.framing ? { child: this.child, framing: this.framing } : this.startProcess();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new CommandError(`${this.name} (session)`, 'transaction timed out', undefined));
        child.kill();
      }, TRANSACTION_TIMEOUT_MS);
      timer.unref();
      this.pending = {
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
      child.stdin.write(framing.frame(text));
    });
  }

  private startProcess(): { child: LongLivedProcess; framing: Framing } {
    const started = this.start(this.spawn);
    const { child, framing } = started;
    this.child = child;
    this.framing = framing;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const outcome = framing.read(chunk);
      if (outcome === null || !this.pending) return;
      const done = this.pending;
      this.pending = null;
      if (outcome === 'ok') done.resolve();
      else done.reject(new CommandError(`${this.name} (session)`, outcome.error, undefined));
    });
    child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    // EPIPE when the process died mid-write; the exit below reports it.
    child.stdin.on('error', () => undefined);
    void child.exited.then(({ exitCode, signal }) => {
      if (this.child === child) {
        this.child = null;
        this.framing = null;
      }
      this.fail(
        new CommandError(
          `${this.name} (session)`,
          this.stderr || `exited (${signal ?? exitCode ?? 'unknown'})`,
          exitCode,
        ),
      );
    });
    return started;
  }

  private fail(e: Error): void {
    const pending = this.pending;
    this.pending = null;
    pending?.reject(e);
  }
}

/** A long-lived `iptables-restore` / `ip6tables-restore --noflush` (iptables-nft only). */
export class RestoreSession extends LongLivedSession {
  constructor(
    spawn: Spawn,
    private readonly command: string,
  ) {
    super(spawn, command);
  }

  protected start(spawn: Spawn): { child: LongLivedProcess; framing: Framing } {
    let seq = 0;
    let marker = '';
    let buffer = '';
    const framing: Framing = {
      frame: (text) => {
        marker = `# tern-committed ${++seq}`;
        return `${text}${marker}\n`;
      },
      read: (chunk) => {
        buffer += chunk;
        let outcome: 'ok' | null = null;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          if (buffer.slice(0, nl) === marker) outcome = 'ok';
          buffer = buffer.slice(nl + 1);
        }
        return outcome;
      },
    };
    return { child: spawn(this.command, ['--noflush', '--verbose']), framing };
  }
}

const IPSET_PROMPT = 'ipset> ';

/** A long-lived interactive `ipset -`: every line runs at once; errors do not stop it. */
export class IpsetSession extends LongLivedSession {
  constructor(spawn: Spawn) {
    super(spawn, 'ipset');
  }

  protected start(spawn: Spawn): { child: LongLivedProcess; framing: Framing } {
    // One prompt at start, then one after each line read.
    let prompts = 0;
    let target = 1;
    let errors = '';
    let tail = ''; // output after the last full prompt (a prompt may arrive split)
    const framing: Framing = {
      frame: (text) => {
        const lines = text.split('\n').filter((l) => l.trim() !== '');
        if (lines.some((l) => / -exist\b/.test(l))) {
          throw new Error('ipset session lines must not use -exist (it sticks in interactive mode)');
        }
        target += lines.length;
        errors = '';
        return lines.map((l) => `${l}\n`).join('');
      },
      read: (chunk) => {
        const parts = (tail + chunk).split(IPSET_PROMPT);
        tail = parts.pop()!;
        errors += parts.join('');
        prompts += parts.length;
        if (parts.length === 0 || prompts < target) return null;
        const error = errors.trim();
        errors = '';
        return error ? { error } : 'ok';
      },
    };
    return { child: spawn('sh', ['-c', 'exec stdbuf -o0 ipset - 2>&1']), framing };
  }
}
