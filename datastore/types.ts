// The one datastore interface. Backends: memory (unit tests), etcd (bare metal, lab,
// integration tests), kubernetes (production; its own issue).
import type { Kind, ObjectKey, ResourceByKind } from '../model/index.js';

export type BackendName = 'memory' | 'etcd' | 'kubernetes';

export type ChangeType = 'added' | 'modified' | 'deleted';

export type WatchEvent<K extends Kind> =
  | {
      type: ChangeType;
      /** For 'deleted', the object as it was last stored. */
      object: ResourceByKind[K];
      /** Revision of this change; a watch resumed from it delivers only later changes. */
      revision: string;
    }
  | {
      /**
       * The history the watch asked for is gone (compacted, or the backend lost it). The
       * watch has ended; the consumer must list again and watch from the list's revision.
       */
      type: 'resync';
      reason: string;
    };

export interface ListResult<K extends Kind> {
  items: Array<ResourceByKind[K]>;
  /** Revision the list reflects; watch from it to see every later change. */
  revision: string;
}

export interface WatchOptions {
  /** Only objects in this namespace (namespaced kinds). */
  namespace?: string;
  /** Deliver changes after this revision (exclusive). Absent: changes from now on. */
  fromRevision?: string;
}

export interface Watch {
  /** Stops delivery; resolves when the watch is torn down. */
  close(): Promise<void>;
}

export interface Datastore {
  readonly backend: BackendName;

  get<K extends Kind>(kind: K, key: ObjectKey): Promise<ResourceByKind[K] | undefined>;

  list<K extends Kind>(kind: K, options?: { namespace?: string }): Promise<ListResult<K>>;

  /**
   * Delivers changes of `kind` in revision order. Errors the backend can recover from are
   * retried inside; a lost history ends the watch with a 'resync' event.
   */
  watch<K extends Kind>(kind: K, options: WatchOptions, onEvent: (event: WatchEvent<K>) => void): Watch;

  /** Stores a new object. Validates it first (ValidationError); AlreadyExistsError if taken. */
  create<K extends Kind>(obj: ResourceByKind[K] & { kind: K }): Promise<ResourceByKind[K]>;

  /**
   * Compare-and-swap: succeeds only when `obj.metadata.resourceVersion` is the stored one
   * (ConflictError otherwise; NotFoundError if the object is gone). Validates first.
   */
  update<K extends Kind>(obj: ResourceByKind[K] & { kind: K }): Promise<ResourceByKind[K]>;

  /**
   * Deletes; with `resourceVersion`, only if unchanged since (ConflictError otherwise).
   * NotFoundError if there is nothing to delete.
   */
  delete<K extends Kind>(kind: K, key: ObjectKey, options?: { resourceVersion?: string }): Promise<void>;

  close(): Promise<void>;
}
