// Network namespace switching for one synchronous call (netns.cc).
import { call, checkFd, loadAddon } from './addon.js';

/**
 * Runs the synchronous `fn` with the calling thread in the network namespace of `targetFd`, and puts
 * it back into `homeFd`'s afterwards, also when `fn` throws (the process aborts if it cannot go
 * back). A socket created inside `fn` stays in the target netns for its whole life.
 */
export function inNetns<T>(targetFd: number, homeFd: number, fn: () => T): T {
  checkFd(targetFd);
  checkFd(homeFd);
  const a = loadAddon();
  return call(() => a.inNetns(targetFd, homeFd, fn) as T);
}
