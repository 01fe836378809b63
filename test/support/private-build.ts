// Test builds of our executables in a private directory outside dist/ (which other builds rewrite
// at any moment): compiled once, under a lock that parallel test files share, and again only when
// a source is newer than every output.
import { createHash } from 'node:crypto';
import { mkdir, readdir, rmdir, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { waitFor } from './netns.js';

export const REPO = path.resolve(import.meta.dirname, '../..');

/**
 * A private build directory of this checkout: several worktrees (each its own layout) test on one
 * machine at once, and one directory shared between them would serve one tree's build to another.
 */
export const privateBuildDir = (name: string): string =>
  path.join(tmpdir(), `${name}-${createHash('sha1').update(REPO).digest('hex').slice(0, 8)}`);

export interface PrivateBuild {
  /** The private output directory (an ESM package with a link to the repo's node_modules). */
  dir: string;
  /** tsconfig (relative to the repo) naming the entry files. */
  tsconfig: string;
  /** Source folders (relative to the repo) whose .ts files the outputs depend on. */
  sources: readonly string[];
  /** Files the build must produce (absolute). */
  outputs: readonly string[];
  /** Extra steps after tsc (e.g. bundling), inside the lock. */
  after?: () => Promise<void>;
}

async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const e of await readdir(path.join(REPO, dir), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts'))
      newest = Math.max(newest, (await stat(path.join(e.parentPath, e.name))).mtimeMs);
  }
  return newest;
}

async function isStale(b: PrivateBuild): Promise<boolean> {
  const built = await Promise.all(
    b.outputs.map((f) =>
      stat(f).then(
        (s) => s.mtimeMs,
        () => 0,
      ),
    ),
  );
  const sources = await Promise.all(b.sources.map(newestSource));
  return Math.min(...built) < Math.max(...sources);
}

/** A lock directory; one older than 5 minutes belongs to a build that died. */
async function lock(dir: string): Promise<void> {
  await waitFor(
    `the build lock ${dir}`,
    async () => {
      try {
        await mkdir(dir);
        return true;
      } catch {
        const s = await stat(dir).catch(() => undefined);
        if (s && Date.now() - s.mtimeMs > 300_000) await rmdir(dir).catch(() => undefined);
        return false;
      }
    },
    300_000,
    200,
  );
}

export async function buildPrivately(b: PrivateBuild): Promise<void> {
  const lockDir = `${b.dir}.lock`;
  await lock(lockDir);
  try {
    if (!(await isStale(b))) return;
    await mkdir(b.dir, { recursive: true });
    await writeFile(path.join(b.dir, 'package.json'), '{"type":"module"}\n');
    await symlink(path.join(REPO, 'node_modules'), path.join(b.dir, 'node_modules')).catch(() => undefined);
    const r = await execa('npx', ['tsc', '-p', path.join(REPO, b.tsconfig), '--outDir', b.dir], {
      cwd: REPO,
      reject: false,
    });
    // Compiled code that loads tern's native addon looks for it next to itself (native/addon.js).
    if (await stat(path.join(b.dir, 'native')).catch(() => undefined)) {
      await symlink(path.join(REPO, 'native/build'), path.join(b.dir, 'native/build')).catch(() => undefined);
    }
    await b.after?.();
    for (const f of b.outputs) {
      await stat(f).catch(() => {
        throw new Error(`private build did not produce ${f}: ${r.stdout}\n${r.stderr}`);
      });
    }
  } finally {
    await rmdir(lockDir).catch(() => undefined);
  }
}
