// Serialises work on one attachment (keyed by its deterministic host veth name) while letting
// different attachments proceed in parallel; GC takes the whole gate exclusively.

export class AttachmentLocks {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly running = new Set<Promise<unknown>>();
  private exclusive: Promise<void> | undefined;

  /** Runs `fn` after every earlier holder of `key` (and any running exclusive section) is done. */
  async withKey<T>(key: string, fn: () => Promise<T>): Promise<T> {
    while (this.exclusive) await this.exclusive;
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    const work = before.then(fn);
    this.running.add(work);
    try {
      return await work;
    } finally {
      this.running.delete(work);
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Runs `fn` alone: waits for every running keyed section, and holds new ones back until done. */
  async withAll<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive) await this.exclusive;
    let release!: () => void;
    this.exclusive = new Promise<void>((r) => (release = r));
    try {
      await Promise.allSettled([...this.running, ...this.tails.values()]);
      return await fn();
    } finally {
      this.exclusive = undefined;
      release();
    }
  }
}
