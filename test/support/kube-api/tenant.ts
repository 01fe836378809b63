// One simulated API server's storage: a global resourceVersion counter, the objects, and the
// change history watches replay from (until the test compacts it).
import { randomUUID } from 'node:crypto';
import { parseResource, ValidationError, type Kind } from '../../../model/index.js';
import type { ResourceInfo } from '../../../datastore/kubernetes/resources.js';
import * as status from './status.js';

export type Json = Record<string, unknown> & { metadata: Meta };
interface Meta {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  [k: string]: unknown;
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  rv: number;
  kind: Kind;
  type: EventType;
  object: Json;
  /** The object before the change (undefined for ADDED), to rebuild older snapshots. */
  prev: Json | undefined;
}

export interface Subscriber {
  kind: Kind;
  namespace?: string;
  send(change: Change): void;
}

const clone = <T>(v: T): T => structuredClone(v);

export class Tenant {
  rv = 1;
  compactedThrough = 0;
  readonly objects = new Map<string, Json>();
  readonly history: Change[] = [];
  readonly subscribers = new Set<Subscriber>();

  static storageKey(kind: Kind, namespace: string | undefined, name: string): string {
    return `${kind}/${namespace ?? ''}/${name}`;
  }

  /** Objects of a kind (and namespace) as they were at `atRv`, sorted by key. */
  snapshot(kind: Kind, namespace: string | undefined, atRv: number): Array<[string, Json]> {
    const state = new Map([...this.objects].filter(([k]) => k.startsWith(`${kind}/`)));
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.rv > atRv; i--) {
      const c = this.history[i]!;
      if (c.kind !== kind) continue;
      const k = Tenant.storageKey(kind, c.object.metadata.namespace, c.object.metadata.name);
      if (c.prev) state.set(k, c.prev);
      else state.delete(k);
    }
    return [...state]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Validates as the API server would (CRD schemas, built-in validation), via the model. */
  static validate(r: ResourceInfo, body: Json): void {
    try {
      parseResource(body, r.kind);
    } catch (e) {
      if (e instanceof ValidationError) throw status.invalid(r, body.metadata.name, e.field, e.message);
      throw e;
    }
  }

  create(r: ResourceInfo, body: Json): Json {
    const m = body.metadata;
    const k = Tenant.storageKey(r.kind, m.namespace, m.name);
    if (this.objects.has(k)) throw status.alreadyExists(r, m.name);
    const stored = clone(body);
    stored.metadata.uid = randomUUID();
    stored.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return this.commit(r.kind, 'ADDED', k, stored, undefined);
  }

  update(r: ResourceInfo, body: Json): Json {
    const m = body.metadata;
    const k = Tenant.storageKey(r.kind, m.namespace, m.name);
    const current = this.objects.get(k);
    if (!current) throw status.notFound(r, m.name);
    if (m.resourceVersion && m.resourceVersion !== current.metadata.resourceVersion)
      throw status.conflict(r, m.name);
    const stored = clone(body);
    stored.metadata.uid = current.metadata.uid;
    stored.metadata.creationTimestamp = current.metadata.creationTimestamp;
    return this.commit(r.kind, 'MODIFIED', k, stored, current);
  }

  delete(r: ResourceInfo, namespace: string | undefined, name: string, preconditionRv?: string): Json {
    const k = Tenant.storageKey(r.kind, namespace, name);
    const current = this.objects.get(k);
    if (!current) throw status.notFound(r, name);
    const storedRv = current.metadata.resourceVersion!;
    if (preconditionRv !== undefined && preconditionRv !== storedRv)
      throw status.preconditionFailed(r, name, preconditionRv, storedRv);
    // As in Kubernetes, the DELETED event's object carries the delete's resourceVersion.
    return this.commit(r.kind, 'DELETED', k, clone(current), current);
  }

  private commit(kind: Kind, type: EventType, key: string, obj: Json, prev: Json | undefined): Json {
    obj.metadata.resourceVersion = String(++this.rv);
    if (type === 'DELETED') this.objects.delete(key);
    else this.objects.set(key, obj);
    const change: Change = { rv: this.rv, kind, type, object: obj, prev };
    this.history.push(change);
    for (const s of this.subscribers) {
      if (s.kind === kind && (s.namespace === undefined || s.namespace === obj.metadata.namespace))
        s.send(change);
    }
    return clone(obj);
  }

  /** Forgets history up to `through` (default: now); older watches and continue tokens get 410. */
  compact(through = this.rv): void {
    this.compactedThrough = Math.max(this.compactedThrough, through);
    let drop = 0;
    while (drop < this.history.length && this.history[drop]!.rv <= this.compactedThrough) drop++;
    this.history.splice(0, drop);
  }
}
