// Configuration convention for every tern executable: one zod schema per component, values
// from command-line flags > environment (TERN_<KEY>) > config file (YAML or JSON) > defaults.
// Each top-level key is taken whole from the highest source that sets it, and an error names
// the key the way its source spells it: `--as-number: ...`, `TERN_AS_NUMBER: ...`,
// `config.yaml: asNumber: ...`.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ValidationError } from './errors.js';
import { formatFieldPath } from './meta.js';

export type FlagValue = string | number | boolean | ReadonlyArray<string> | undefined;

export interface ConfigSources<T> {
  /** Parsed command-line flags keyed by flag name (`as-number`) or by key (`asNumber`). */
  flags?: Readonly<Record<string, FlagValue>>;
  /** Environment to read `TERN_<KEY>` names from; default process.env. Other names are ignored. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Path of a YAML or JSON config file; absent means no file. */
  file?: string;
  /** Lowest precedence: values used when no other source sets the key. */
  defaults?: Partial<T>;
  /** Prefix of environment names; default `TERN_`. */
  envPrefix?: string;
}

/** `asNumber` → `as-number` (the flag is `--as-number`). */
export const flagNameOf = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

/** `asNumber` → `TERN_AS_NUMBER`. */
export const envNameOf = (key: string, prefix = 'TERN_'): string =>
  prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

type Origin = { source: 'flag' | 'env' | 'file' | 'default'; label: string };

/** The type under optional/default/nullable wrappers and the input side of pipes. */
function baseDef(t: z.ZodType): { type: string; element?: z.ZodType } {
  let def = t.def as { type: string; innerType?: z.ZodType; in?: z.ZodType; element?: z.ZodType };
  for (;;) {
    if (def.innerType) def = def.innerType.def as typeof def;
    else if (def.type === 'pipe' && def.in) def = def.in.def as typeof def;
    else return def;
  }
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * Turns the text of a flag or environment variable into the type the schema expects.
 * Text that does not convert is passed through, so the schema reports it.
 */
function coerce(value: FlagValue, schema: z.ZodType): unknown {
  const def = baseDef(schema);
  if (def.type === 'array') {
    const items = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
    return Array.isArray(items) && def.element
      ? items.filter((s) => s !== '').map((s) => coerce(s, def.element!))
      : items;
  }
  if (typeof value !== 'string') return value;
  const text = value.trim();
  switch (def.type) {
    case 'number':
    case 'int':
      return text !== '' && Number.isFinite(Number(text)) ? Number(text) : value;
    case 'bigint':
      return /^-?\d+$/.test(text) ? BigInt(text) : value;
    case 'boolean':
      return TRUE.has(text.toLowerCase()) ? true : FALSE.has(text.toLowerCase()) ? false : value;
    case 'object':
    case 'record':
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return value;
      }
    default:
      return value;
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ValidationError(path, `cannot read config file: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ValidationError(
      path,
      `not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError(path, 'must be a mapping of keys to values');
  }
  return parsed as Record<string, unknown>;
}

/**
 * Loads a component's configuration. Throws ValidationError naming the bad key as its
 * source spells it; unknown flags and unknown keys in the file are errors (typos must not
 * be silently ignored); unknown TERN_* variables are not (components share the environment).
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  sources: ConfigSources<z.input<S>>,
): z.output<S> {
  const shape = schema.shape as Record<string, z.ZodType>;
  const keys = Object.keys(shape);
  const values: Record<string, unknown> = {};
  const origins = new Map<string, Origin>();
  const set = (key: string, value: unknown, origin: Origin) => {
    if (value === undefined || origins.has(key)) return;
    values[key] = value;
    origins.set(key, origin);
  };

  const byFlagName = new Map(keys.flatMap((k) => [[k, k] as const, [flagNameOf(k), k] as const]));
  for (const [name, value] of Object.entries(sources.flags ?? {})) {
    const key = byFlagName.get(name.replace(/^--/, ''));
    if (!key) throw new ValidationError(`--${flagNameOf(name.replace(/^--/, ''))}`, 'unknown flag');
    set(key, coerce(value, shape[key]!), { source: 'flag', label: `--${flagNameOf(key)}` });
  }

  const env = sources.env ?? process.env;
  for (const key of keys) {
    const name = envNameOf(key, sources.envPrefix);
    const value = env[name];
    if (value !== undefined && value !== '')
      set(key, coerce(value, shape[key]!), { source: 'env', label: name });
  }

  if (sources.file !== undefined) {
    const file = sources.file;
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      if (!Object.hasOwn(shape, key)) throw new ValidationError(`${file}: ${key}`, 'unknown key');
      set(key, value, { source: 'file', label: `${file}: ${key}` });
    }
  }

  for (const [key, value] of Object.entries(sources.defaults ?? {})) {
    set(key, value, { source: 'default', label: `defaults: ${key}` });
  }

  const result = schema.safeParse(values);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const [key, ...rest] = issue.path;
  const origin = typeof key === 'string' ? origins.get(key) : undefined;
  if (!origin) {
    const k = String(key);
    throw new ValidationError(
      k,
      `${issue.message} (set --${flagNameOf(k)}, ${envNameOf(k, sources.envPrefix)} or ${k} in the config file)`,
    );
  }
  const suffix = rest.length ? formatFieldPath(rest).replace(/^(?!\[)/, '.') : '';
  throw new ValidationError(origin.label + suffix, issue.message);
}

/**
 * Parses command-line arguments into the `flags` of loadConfig: one `--kebab-name` per key
 * of the schema (booleans take no value; arrays may repeat or use commas). Positionals are
 * returned apart. An unknown or malformed flag is a ValidationError naming it.
 */
export function parseFlags<S extends z.ZodObject>(
  schema: S,
  argv: readonly string[],
): { flags: Record<string, FlagValue>; positionals: string[] } {
  const shape = schema.shape as Record<string, z.ZodType>;
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [key, type] of Object.entries(shape)) {
    const base = baseDef(type).type;
    options[flagNameOf(key)] = {
      type: base === 'boolean' ? 'boolean' : 'string',
      multiple: base === 'array',
    };
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options,
      strict: true,
      allowPositionals: true,
    });
    return { flags: values as Record<string, FlagValue>, positionals };
  } catch (e) {
    const flag = /'(-[^']*)'/.exec((e as Error).message)?.[1]?.split(/[ =]/)[0] ?? 'arguments';
    throw new ValidationError(
      flag,
      (e as Error).message
        .replace(/^Option '[^']*' /, '')
        .replace(/^Unknown option '[^']*'.*/, 'unknown flag'),
    );
  }
}
