// The edge every backend's writes pass: nothing reaches storage unless it parses.
import {
  KINDS,
  ValidationError,
  keyOf,
  parseResource,
  type Kind,
  type ObjectKey,
  type ResourceByKind,
} from '../model/index.js';

export interface ValidatedWrite<K extends Kind> {
  kind: K;
  key: ObjectKey;
  object: ResourceByKind[K];
}

/** Validates an object about to be written (kind taken from the object itself). */
export function validateWrite<K extends Kind>(input: ResourceByKind[K] & { kind: K }): ValidatedWrite<K> {
  const object = parseResource(input as unknown) as ResourceByKind[K];
  const kind = object.kind as K;
  return { kind, key: keyOf(object.metadata), object };
}

/** The resourceVersion an update or conditional delete compares against. */
export function requireResourceVersion(obj: { metadata: { resourceVersion?: string } }): string {
  const rv = obj.metadata.resourceVersion;
  if (rv === undefined || rv === '') {
    throw new ValidationError(
      'metadata.resourceVersion',
      'must be set: an update is a compare-and-swap on the version that was read',
    );
  }
  return rv;
}

/** Checks a key against the kind's scope before a read or delete. */
export function validateKey(kind: Kind, key: ObjectKey): void {
  if (!Object.hasOwn(KINDS, kind)) throw new ValidationError('kind', `unknown kind ${JSON.stringify(kind)}`);
  if (!key.name) throw new ValidationError('name', 'must not be empty');
  if (key.name.includes('/') || key.namespace?.includes('/')) {
    throw new ValidationError(key.name.includes('/') ? 'name' : 'namespace', 'must not contain "/"');
  }
  if (KINDS[kind].namespaced && !key.namespace) {
    throw new ValidationError('namespace', `must be set: ${kind} is namespaced`);
  }
  if (!KINDS[kind].namespaced && key.namespace) {
    throw new ValidationError('namespace', `must be absent: ${kind} is cluster-scoped`);
  }
}
