#!/usr/bin/env node
// Bundles the `tern` CNI executable (cni/main.ts and the built-ins-only modules it imports) into one
// CommonJS file: the form in which the plugin is installed. A runtime starts the plugin once per
// CNI call, and one CommonJS file skips the ESM loader and every module resolution (docs/cni.md,
// "Start-up"). The file starts with a shebang, so it is installed as `tern` and exec'd directly,
// without a sh wrapper in between.
//
//   node scripts/build-cni-bundle.mjs [--file dist/cni/tern.cjs] [--node /path/to/node]
//
// --file  where to write the bundle (default dist/cni/tern.cjs, relative to the repository root)
// --node  the interpreter in the shebang (default: `/usr/bin/env node`, i.e. node on PATH)
//
// The file is written under a temporary name and renamed into place (a runtime may be exec'ing the
// previous one: CNI checklist item 11), mode 0755.
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { rolldown } from 'rolldown';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = resolve(ROOT, 'cni/main.ts');

/** Builds the bundle and writes it to `file`; returns the bundle's text. */
export async function buildCniBundle({ file = resolve(ROOT, 'dist/cni/tern.cjs'), node } = {}) {
  if (node !== undefined && (!isAbsolute(node) || /\s/.test(node))) {
    throw new Error(`--node must be an absolute path without whitespace, got ${JSON.stringify(node)}`);
  }
  const bundle = await rolldown({ input: ENTRY, platform: 'node', logLevel: 'warn' });
  let code;
  try {
    const { output } = await bundle.generate({ format: 'cjs', sourcemap: false });
    if (output.length !== 1 || output[0].type !== 'chunk') {
      throw new Error(`expected one chunk, rolldown produced ${output.map((o) => o.fileName).join(', ')}`);
    }
    code = output[0].code;
  } finally {
    await bundle.close();
  }
  // Only node built-ins may remain as requires: the plugin is installed without node_modules.
  const foreign = [...code.matchAll(/\brequire\(["']([^"']+)["']\)/g)]
    .map((m) => m[1])
    .filter((id) => !id.startsWith('node:'));
  if (foreign.length)
    throw new Error(`the plugin must import node built-ins only, found ${foreign.join(', ')}`);
  const body = code.replace(/^#![^\n]*\n/, '');
  const text = `#!${node ?? '/usr/bin/env node'}\n${body}`;
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp.${process.pid}`;
  await writeFile(tmp, text, { mode: 0o755 });
  await chmod(tmp, 0o755);
  await rename(tmp, file);
  return text;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { file: { type: 'string' }, node: { type: 'string' } } });
  const file = values.file ? resolve(process.cwd(), values.file) : undefined;
  buildCniBundle({ file, node: values.node }).then(
    () => console.log(`build-cni-bundle: wrote ${file ?? 'dist/cni/tern.cjs'}`),
    (e) => {
      console.error(`build-cni-bundle: ${e.message}`);
      process.exit(1);
    },
  );
}
