// Daemons a test support module started and folders it made, killed and removed when the worker
// exits, even if afterAll never ran (a crashed or timed-out file). Add on start, delete on stop.
import { rmSync } from 'node:fs';

export const runningPids = new Set<number>();
export const ownedDirs = new Set<string>();

process.once('exit', () => {
  for (const pid of runningPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
});
