import { describe, expect, it } from 'vitest';
import { AttachmentLocks } from '../../../../felix/cni/locks.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('AttachmentLocks', () => {
  it('serialises work on one key and runs different keys in parallel', async () => {
    const locks = new AttachmentLocks();
    const log: string[] = [];
    const job = (key: string, name: string) =>
      locks.withKey(key, async () => {
        log.push(`start ${name}`);
        await tick();
        log.push(`end ${name}`);
      });
    await Promise.all([job('a', 'a1'), job('a', 'a2'), job('b', 'b1')]);
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
  });

  it('an exclusive section waits for running keyed work and holds new keyed work back', async () => {
    const locks = new AttachmentLocks();
    const log: string[] = [];
    const first = locks.withKey('a', async () => {
      await tick(20);
      log.push('keyed before');
    });
    await tick(1);
    const gc = locks.withAll(async () => {
      log.push('gc start');
      await tick(20);
      log.push('gc end');
    });
    await tick(1);
    const later = locks.withKey('b', async () => void log.push('keyed after'));
    await Promise.all([first, gc, later]);
    expect(log).toEqual(['keyed before', 'gc start', 'gc end', 'keyed after']);
  });

  it('a failing holder releases the key', async () => {
    const locks = new AttachmentLocks();
    await expect(locks.withKey('a', () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await expect(locks.withKey('a', async () => 1)).resolves.toBe(1);
  });
});
