// IPAMBlocks as this process knows them, and the one way to change one: read (the cached
// copy when there is one), decide, write with compare-and-swap, and on a lost race read
// again and decide again, a bounded number of times with jittered backoff. Writes to one
// block from this process are serialised, so they never race each other.
import type { Datastore } from '../datastore/types.js';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  UnavailableError,
  type IPAMBlock,
} from '../model/index.js';
import { KeyedMutex } from './mutex.js';

export interface RetryPolicy {
  /** Writes tried per change before giving up with UnavailableError. */
  maxAttempts: number;
  /** Cap of the random backoff between attempts, in ms. */
  maxBackoffMs: number;
  random: () => number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 20, maxBackoffMs: 50, random: Math.random };

/** What a decision wants done: nothing, store this version (create or update), or delete. */
export interface Decision<T> {
  result: T;
  write?: IPAMBlock | 'delete';
}

/**
 * Decides a change from the block's current content (undefined: no such block). `fresh`
 * says whether `current` was just read from the datastore or is the cached copy.
 */
export type Decide<T> = (current: IPAMBlock | undefined, fresh: boolean) => Decision<T>;

export interface ModifyOptions {
  /**
   * Re-decide on a fresh read before accepting a decision that writes nothing or throws:
   * a stale cached copy must never be the reason for an error ("address taken") or for a
   * "nothing to do". Off where a cheap "no" is fine (the caller looks elsewhere next).
   */
  confirmNegative?: boolean;
  /** Re-decide on a fresh read before accepting a thrown error only; a cached "nothing to do" stands. */
  confirmErrors?: boolean;
}

const lostRace = (e: unknown) =>
  e instanceof ConflictError || e instanceof NotFoundError || e instanceof AlreadyExistsError;

export class BlockStore {
  private readonly cache = new Map<string, IPAMBlock>();
  private readonly locks = new KeyedMutex();

  constructor(
    private readonly datastore: Datastore,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  cached(): IterableIterator<IPAMBlock> {
    return this.cache.values();
  }

  /** Every block, read now. Refreshes the cached copies of the blocks it returns. */
  async list(): Promise<IPAMBlock[]> {
    const { items } = await this.datastore.list('IPAMBlock');
    const seen = new Set<string>();
    for (const b of items) {
      seen.add(b.metadata.name);
      if (this.cache.has(b.metadata.name)) this.cache.set(b.metadata.name, b);
    }
    for (const name of this.cache.keys()) if (!seen.has(name)) this.cache.delete(name);
    return items;
  }

  remember(block: IPAMBlock): void {
    this.cache.set(block.metadata.name, block);
  }

  async read(name: string): Promise<IPAMBlock | undefined> {
    const b = await this.datastore.get('IPAMBlock', { name });
    if (b) this.cache.set(name, b);
    else this.cache.delete(name);
    return b;
  }

  async modify<T>(name: string, decide: Decide<T>, options: ModifyOptions = {}): Promise<T> {
    return this.locks.run(name, async () => {
      let fresh = !this.cache.has(name);
      let current = fresh ? await this.read(name) : this.cache.get(name);
      for (let attempt = 1; ;) {
        let decision: Decision<T>;
        try {
          decision = decide(current, fresh);
        } catch (e) {
          if (fresh || !(options.confirmNegative || options.confirmErrors)) throw e;
          current = await this.read(name);
          fresh = true;
          continue;
        }
        if (decision.write === undefined) {
          if (fresh || !options.confirmNegative) return decision.result;
          current = await this.read(name);
          fresh = true;
          continue;
        }
        try {
          await this.write(name, current, decision.write);
          return decision.result;
        } catch (e) {
          if (!lostRace(e)) throw e;
          if (attempt >= this.retry.maxAttempts) {
            throw new UnavailableError(
              `IPAMBlock ${name}: gave up after ${attempt} conflicting writes (${(e as Error).message})`,
              { cause: e },
            );
          }
          if (attempt > 1) await this.backoff(attempt);
          attempt++;
          current = await this.read(name);
          fresh = true;
        }
      }
    });
  }

  private async write(
    name: string,
    current: IPAMBlock | undefined,
    next: IPAMBlock | 'delete',
  ): Promise<void> {
    if (next === 'delete') {
      if (!current) return;
      await this.datastore.delete(
        'IPAMBlock',
        { name },
        { resourceVersion: current.metadata.resourceVersion },
      );
      this.cache.delete(name);
      return;
    }
    const stored = current
      ? await this.datastore.update<'IPAMBlock'>({
          ...next,
          metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion },
        })
      : await this.datastore.create<'IPAMBlock'>({ ...next, metadata: { name: next.metadata.name } });
    this.cache.set(name, stored);
  }

  private backoff(attempt: number): Promise<void> {
    const cap = Math.min(this.retry.maxBackoffMs, 2 ** attempt);
    return new Promise((resolve) => setTimeout(resolve, this.retry.random() * cap));
  }
}
