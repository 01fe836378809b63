// Makes the three executables declared in package.json runnable after `tsc` emitted them.
import { chmodSync, readFileSync, existsSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
for (const [name, path] of Object.entries(pkg.bin)) {
  const file = new URL(`../${path}`, import.meta.url);
  if (!existsSync(file)) {
    console.error(`build: executable ${name} (${path}) was not emitted`);
    process.exit(1);
  }
  chmodSync(file, 0o755);
}
