// A small OpenAPI v3 validator over exactly the keywords tern's CRDs use, with the API server's
// semantics where they differ from plain JSON Schema: unknown object fields are pruned, not
// rejected (structural schemas), and CEL rules (x-kubernetes-validations) are evaluated through
// JavaScript twins keyed by the rule text. A keyword it does not know is an error in
// `structuralProblems`, so a schema can never rely on a check that this validator skips.
import type { SchemaNode } from '../../../deploy/kubernetes/crds.js';

const VALUE_KEYWORDS = [
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'maxProperties',
  'enum',
] as const;
const KNOWN = new Set<string>([
  'type',
  'description',
  'format',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'anyOf',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-validations',
  ...VALUE_KEYWORDS,
]);
/** Inside anyOf the API server allows value validations only (no types, no structure). */
const ALLOWED_IN_JUNCTOR = new Set<string>(VALUE_KEYWORDS);
const TYPES = new Set(['object', 'array', 'string', 'integer', 'boolean']);
const FORMATS = new Set(['int64', 'int32']);

/** Constructs the API server's regex engine (RE2) has no counterpart for. */
const NOT_RE2 = /\(\?[=!<]|\\[1-9]|\\k</;

/** Structural-schema problems (empty when the schema is one the API server accepts and we can check). */
export function structuralProblems(node: SchemaNode, at = 'schema', inJunctor = false): string[] {
  const out: string[] = [];
  for (const key of Object.keys(node)) {
    if (!KNOWN.has(key)) out.push(`${at}: keyword ${key} is not supported by the test validator`);
    if (inJunctor && !ALLOWED_IN_JUNCTOR.has(key)) out.push(`${at}: ${key} is not allowed inside anyOf`);
  }
  if (!inJunctor) {
    if (!node.type && !node['x-kubernetes-preserve-unknown-fields']) out.push(`${at}: missing type`);
    if (node.type && !TYPES.has(node.type)) out.push(`${at}: unknown type ${node.type}`);
  }
  if (node.format && !FORMATS.has(node.format)) out.push(`${at}: unknown format ${node.format}`);
  if (node.pattern !== undefined) {
    try {
      new RegExp(node.pattern, 'u');
    } catch (e) {
      out.push(`${at}: pattern does not compile: ${(e as Error).message}`);
    }
    if (NOT_RE2.test(node.pattern)) out.push(`${at}: pattern uses a construct RE2 does not have`);
    if (!node.pattern.startsWith('^') || !node.pattern.endsWith('$'))
      out.push(`${at}: pattern is not anchored`);
  }
  if (node.properties && node.type !== 'object') out.push(`${at}: properties on a non-object`);
  if (node.additionalProperties && node.properties)
    out.push(`${at}: both properties and additionalProperties`);
  for (const r of node.required ?? []) {
    if (!node.properties?.[r]) out.push(`${at}: required field ${r} is not a property`);
  }
  if (node.type === 'array' && !node.items) out.push(`${at}: array without items`);
  if (node.minimum !== undefined && node.maximum !== undefined && node.minimum > node.maximum) {
    out.push(`${at}: minimum > maximum`);
  }
  for (const [k, v] of Object.entries(node.properties ?? {}))
    out.push(...structuralProblems(v, `${at}.${k}`));
  if (node.additionalProperties) out.push(...structuralProblems(node.additionalProperties, `${at}.*`));
  if (node.items) out.push(...structuralProblems(node.items, `${at}[]`));
  (node.anyOf ?? []).forEach((s, i) => out.push(...structuralProblems(s, `${at}.anyOf[${i}]`, true)));
  return out;
}

export type CelTwins = Readonly<Record<string, (self: unknown) => boolean>>;

/** Validates `value` against `node`; returns the problems (empty = the API server would accept it). */
export function validate(node: SchemaNode, value: unknown, cel: CelTwins, at = ''): string[] {
  const out: string[] = [];
  const fail = (msg: string) => out.push(`${at || '<root>'}: ${msg}`);
  switch (node.type) {
    case 'object':
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return [`${at}: must be an object`];
      break;
    case 'array':
      if (!Array.isArray(value)) return [`${at}: must be an array`];
      break;
    case 'string':
      if (typeof value !== 'string') return [`${at}: must be a string`];
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return [`${at}: must be an integer`];
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return [`${at}: must be a boolean`];
      break;
  }
  if (typeof value === 'string') {
    if (node.pattern !== undefined && !new RegExp(node.pattern, 'u').test(value))
      fail('does not match pattern');
    if (node.minLength !== undefined && [...value].length < node.minLength) fail('too short');
    if (node.maxLength !== undefined && [...value].length > node.maxLength) fail('too long');
  }
  if (typeof value === 'number') {
    if (node.minimum !== undefined && value < node.minimum) fail(`below ${node.minimum}`);
    if (node.maximum !== undefined && value > node.maximum) fail(`above ${node.maximum}`);
  }
  if (node.enum && !node.enum.includes(value as string | number | boolean)) fail('not in enum');
  if (Array.isArray(value)) {
    if (node.minItems !== undefined && value.length < node.minItems) fail('too few items');
    if (node.maxItems !== undefined && value.length > node.maxItems) fail('too many items');
    if (node.items) value.forEach((v, i) => out.push(...validate(node.items!, v, cel, `${at}[${i}]`)));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    if (node.maxProperties !== undefined && Object.keys(obj).length > node.maxProperties)
      fail('too many fields');
    for (const r of node.required ?? []) if (obj[r] === undefined) fail(`${r} is required`);
    for (const [k, v] of Object.entries(obj)) {
      const sub = node.properties?.[k] ?? node.additionalProperties;
      // No schema for the field: the API server prunes it (zod's z.object strips it likewise).
      if (sub && v !== undefined) out.push(...validate(sub, v, cel, at ? `${at}.${k}` : k));
    }
  }
  if (node.anyOf && !node.anyOf.some((s) => validate(s, value, cel, at).length === 0))
    fail('matches no anyOf');
  // As the API server: CEL rules run only on a value that passed the structural checks.
  if (out.length === 0) {
    for (const { rule, message } of node['x-kubernetes-validations'] ?? []) {
      const twin = cel[rule];
      if (!twin) throw new Error(`no JavaScript twin for the CEL rule ${rule}`);
      if (!twin(value)) fail(message);
    }
  }
  return out;
}
