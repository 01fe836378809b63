import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { ARROWS } from '../../../scripts/lint/arrows.js';

// Lints snippets as if they were files of the repository, with the repository's own eslint config,
// so what is proven here is what `npm run lint` (and CI) enforces.
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const eslint = new ESLint({ cwd: REPO });

async function arrowErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(REPO, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'tern/arrows').map((m) => m.message);
}

describe('the arrows lint rule', () => {
  it('fails an import against an arrow: bgp/ importing felix/', async () => {
    const errors = await arrowErrors(
      'bgp/violation.ts',
      "import { Agent } from '../felix/agent.js';\nvoid Agent;\n",
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("'bgp/' may not import 'felix/'");
  });

  it('fails re-exports and dynamic imports too', async () => {
    const code = "export * from '../ipam/index.js';\nexport const m = import('../datastore/index.js');\n";
    expect(await arrowErrors('policy/violation.ts', code)).toHaveLength(2);
  });

  it('resolves the path: ../x from a subfolder stays inside the part', async () => {
    // kernel/routes/ importing ../netlink/ is kernel/netlink/, not a part called netlink
    expect(await arrowErrors('model/sub/ok.ts', "import { x } from '../cidr.js';\nvoid x;\n")).toEqual([]);
    expect(
      await arrowErrors('model/sub/bad.ts', "import { x } from '../../datastore/index.js';\nvoid x;\n"),
    ).toHaveLength(1);
  });

  it('lets a part import what its arrows allow, and tests import anything', async () => {
    expect(await arrowErrors('ipam/ok.ts', "import { x } from '../datastore/index.js';\nvoid x;\n")).toEqual(
      [],
    );
    expect(
      await arrowErrors('test/unit/ok.test.ts', "import { x } from '../../felix/agent.js';\nvoid x;\n"),
    ).toEqual([]);
  });

  it('model/ imports nothing of tern', () => {
    expect(ARROWS.model).toEqual([]);
  });
});
