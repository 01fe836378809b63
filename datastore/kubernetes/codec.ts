// API objects ↔ the model, validated both ways with parseResource. The model's ObjectMeta
// knows only what tern uses; metadata fields it does not know (ownerReferences, finalizers,
// managedFields, generateName, …) ride along on the decoded object and are sent back on a
// write, so an update (a PUT of the whole object) never strips what other controllers set.
import { KINDS, ValidationError, parseResource, type Kind, type ResourceByKind } from '../../model/index.js';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Metadata fields of `raw` that parsing dropped. */
function unknownMetadata(raw: unknown, parsed: object): Json {
  const out: Json = {};
  if (!isObject(raw)) return out;
  for (const [k, v] of Object.entries(raw)) if (!Object.hasOwn(parsed, k)) out[k] = v;
  return out;
}

/**
 * Decodes an object the API server sent. List items of built-in kinds come without
 * apiVersion and kind; they are filled in from the kind asked for.
 */
export function decodeObject<K extends Kind>(kind: K, raw: unknown): ResourceByKind[K] {
  if (!isObject(raw)) throw new ValidationError('', `${kind} from the API server is not an object`);
  const filled = { ...raw, apiVersion: raw.apiVersion ?? KINDS[kind].apiVersion, kind: raw.kind ?? kind };
  const obj = parseResource(filled, kind);
  Object.assign(obj.metadata, unknownMetadata(raw.metadata, obj.metadata));
  return obj;
}

/** The body of a create or update: the validated object plus the caller's unknown metadata. */
export function encodeObject(validated: ResourceByKind[Kind], input: { metadata: object }): Json {
  return {
    ...validated,
    metadata: { ...unknownMetadata(input.metadata, validated.metadata), ...validated.metadata },
  };
}
