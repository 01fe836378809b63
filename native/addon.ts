// Loading tern's one native addon (tcp_security.cc, netns.cc, netlink_request.cc) and the calling
// convention its jobs share (tcp-security.ts, netns.ts, netlink.ts): argument checks in JS, kernel
// refusals as NativeCallError. The addon is loaded on first use.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The kernel refused a socket option or call: `option` names it, `code`/`errno` say why. */
export class NativeCallError extends Error {
  override readonly name = 'NativeCallError';
  constructor(
    readonly option: string,
    readonly code: string,
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** The .node file is not there (or does not load): the message says how to build it. */
export class NativeAddonMissingError extends Error {
  override readonly name = 'NativeAddonMissingError';
}

export interface Addon {
  setMd5Key(fd: number, peer: string, key: Buffer | undefined): void;
  setTtl(fd: number, ttl: number): void;
  setMinTtl(fd: number, minTtl: number): void;
  setNetlinkNoEnobufs(fd: number): void;
  connect(
    peer: string,
    port: number,
    localAddress: string | undefined,
    key: Buffer | undefined,
    ttl: number,
    minTtl: number,
    callback: (err: Error | null, fd?: number) => void,
  ): number;
  cancelConnect(id: number): boolean;
  setSaveSyn(fd: number, on: boolean): void;
  savedSynTtl(fd: number): number;
  inNetns(targetFd: number, homeFd: number, fn: () => unknown): unknown;
  netlinkRequest(message: Buffer, callback: (err: Error | null) => void): void;
}

const ADDON_FILE = 'build/Release/tern_native.node';
const BUILD_HINT =
  'build it with `npx node-gyp rebuild --nodedir=/usr` in native/ (scripts/setup.sh does this), or set TERN_NATIVE_ADDON to the .node file';

/** Where the .node file may be: an explicit path, next to this module (source tree, image), or dist/ → repo. */
export function addonCandidates(): string[] {
  const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));
  const env = process.env.TERN_NATIVE_ADDON;
  return [...(env ? [env] : []), here(`./${ADDON_FILE}`), here(`../../native/${ADDON_FILE}`)];
}

let addon: Addon | undefined;

/** Loads the addon once; throws NativeAddonMissingError naming the paths tried and the build step. */
export function loadAddon(): Addon {
  addon ??= openAddon(addonCandidates());
  return addon;
}

/** Loads the first existing candidate; throws NativeAddonMissingError when none loads. */
export function openAddon(candidates: readonly string[]): Addon {
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new NativeAddonMissingError(
      `tern's native addon (TCP MD5 / GTSM, network namespaces, netlink) is not built (looked for ${candidates.join(', ')}): ${BUILD_HINT}`,
    );
  }
  try {
    return createRequire(import.meta.url)(found) as Addon;
  } catch (err) {
    throw new NativeAddonMissingError(
      `tern's native addon ${found} does not load (${(err as Error).message}): ${BUILD_HINT}`,
    );
  }
}

/** Whether the addon can be loaded (for tests and status output). */
export function addonAvailable(): boolean {
  try {
    loadAddon();
    return true;
  } catch {
    return false;
  }
}

export function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`fd ${fd} is not a file descriptor`);
}

/** Kernel errors from the addon carry option/code/errno; anything else passes through. */
export function typed(err: unknown): unknown {
  const e = err as { option?: unknown; code?: unknown; errno?: unknown; message?: string };
  if (e && typeof e.option === 'string' && typeof e.errno === 'number')
    return new NativeCallError(e.option, String(e.code), e.errno, e.message ?? e.option);
  return err;
}

/** Runs one addon call, its kernel refusal turned into a NativeCallError. */
export function call<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw typed(err);
  }
}
