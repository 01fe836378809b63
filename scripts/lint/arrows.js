// The arrows of docs/architecture.md ("Parts and arrows") as an eslint rule: a module of one part may
// import another part only when an arrow allows it. Paths are resolved, so `../ipam/x.js` from
// `felix/cni/` (i.e. `felix/ipam/`) and from `felix/` (top-level `ipam/`) are told apart.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Part → the parts it may import (besides itself). Keep equal to docs/architecture.md.
 * Folders not listed here (test/, bench/, scripts/) may import anything.
 */
export const ARROWS = {
  model: [],
  native: [],
  datastore: ['model'],
  ipam: ['model', 'datastore'],
  bgp: ['model', 'native'],
  policy: ['model'],
  // the executable and the CNI protocol (wire, request parsing, results); the service is felix/cni/.
  cni: ['model'],
  // the kernel library: rtnetlink codec and sockets, the kernel tables (routes today), sysfs.
  kernel: ['model', 'native'],
  felix: ['model', 'native', 'kernel', 'datastore', 'ipam', 'bgp', 'policy', 'cni'],
  // ternctl: the speaker's control client and status types, IPAM's binding type, the lab.
  cli: ['model', 'bgp', 'ipam', 'deploy'],
  // the lab: its datastore, ternctl's agent client and the speaker's control client (tern ToR).
  deploy: ['model', 'datastore', 'cli', 'bgp'],
};

function partOf(absolute) {
  const rel = path.relative(REPO, absolute);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  const first = rel.split(path.sep)[0];
  return Object.hasOwn(ARROWS, first) ? first : undefined;
}

/** @type {import('eslint').Rule.RuleModule} */
export const arrowsRule = {
  meta: {
    type: 'problem',
    docs: { description: 'imports between parts follow the arrows of docs/architecture.md' },
    schema: [],
    messages: {
      broken:
        "'{{from}}/' may not import '{{to}}/' (docs/architecture.md, Parts and arrows: {{from}} → {{allowed}})",
    },
  },
  create(context) {
    const file = context.filename ?? context.getFilename();
    const from = partOf(path.resolve(file));
    if (from === undefined) return {};
    const allowed = ARROWS[from];
    const check = (source) => {
      if (!source || source.type !== 'Literal' || typeof source.value !== 'string') return;
      const spec = source.value;
      if (!spec.startsWith('.')) return;
      const to = partOf(path.resolve(path.dirname(file), spec));
      if (to === undefined || to === from || allowed.includes(to)) return;
      context.report({
        node: source,
        messageId: 'broken',
        data: { from, to, allowed: allowed.length > 0 ? allowed.join(', ') : 'nothing of tern' },
      });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
    };
  },
};

export default { rules: { arrows: arrowsRule } };
