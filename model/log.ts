// Logging convention: one pino root per process, a child per component. JSON lines on
// stderr (stdout is reserved: the CNI plugin writes its result there), human-readable
// through pino-pretty when stderr is a terminal. Level from TERN_LOG_LEVEL (default info).
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Overrides TERN_LOG_LEVEL. */
  level?: LogLevel;
  /** Where lines go; default stderr (fd 2). Tests pass a stream to capture lines. */
  destination?: DestinationStream;
  /** Pretty-print; default: whether stderr is a TTY (ignored when `destination` is given). */
  pretty?: boolean;
  /** Environment to read TERN_LOG_LEVEL from; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

const isLevel = (v: string): v is LogLevel => (LOG_LEVELS as readonly string[]).includes(v);

function buildRoot(options: LoggerOptions): Logger {
  const fromEnv = (options.env ?? process.env).TERN_LOG_LEVEL?.trim().toLowerCase();
  const badEnvLevel = fromEnv !== undefined && fromEnv !== '' && !isLevel(fromEnv) ? fromEnv : undefined;
  const level: LevelWithSilent = options.level ?? (fromEnv && isLevel(fromEnv) ? fromEnv : 'info');
  const destination =
    options.destination ??
    ((options.pretty ?? process.stderr.isTTY)
      ? pretty({ destination: 2, colorize: true, sync: true, ignore: 'pid,hostname' })
      : pino.destination({ fd: 2, sync: true }));
  const root = pino({ level, base: { pid: process.pid } }, destination);
  // A typo in the level must not silence or kill the process; say so loudly instead.
  if (badEnvLevel) root.warn(`TERN_LOG_LEVEL: unknown level ${JSON.stringify(badEnvLevel)}, using info`);
  return root;
}

let sharedRoot: Logger | undefined;

/**
 * A logger for `component` (every line carries `component`). Without options all
 * components share one root; options build a dedicated root (tests, tools).
 */
export function createLogger(component: string, options?: LoggerOptions): Logger {
  const root = options ? buildRoot(options) : (sharedRoot ??= buildRoot({}));
  return root.child({ component });
}
