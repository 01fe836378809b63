import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { CEL, CRD_DEFS, PATTERNS, ternCrds, type SchemaNode } from '../../../deploy/kubernetes/crds.js';
import {
  KINDS,
  MIN_BLOCK_PREFIX,
  parseCidr,
  parseIp,
  parseResource,
  type Kind,
} from '../../../model/index.js';
import { BAD, GOOD, LAX_AT_SERVER, PRUNED_FIELD, statefulSetReservation } from '../../support/crd-cases.js';
import { structuralProblems, validate, type CelTwins } from './openapi-subset.js';

const CRDS_YAML = fileURLToPath(new URL('../../../deploy/kubernetes/crds.yaml', import.meta.url));
const HEADER =
  '# Generated from deploy/kubernetes/crds.ts: edit that file, then run\n' +
  '#   TERN_UPDATE_CRDS=1 npx vitest run test/unit/deploy/crds.test.ts\n';

const generated =
  HEADER +
  ternCrds()
    .map((c) => stringify(c, { lineWidth: 0, singleQuote: true }))
    .join('---\n');
if (process.env.TERN_UPDATE_CRDS === '1') writeFileSync(CRDS_YAML, generated);

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular: string; listKind: string };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: SchemaNode };
    }>;
  };
}
const crds = parseAllDocuments(readFileSync(CRDS_YAML, 'utf8')).map((d) => d.toJS() as Crd);
const schemaOf = (kind: string): SchemaNode => {
  const crd = crds.find((c) => c.spec.names.kind === kind);
  if (!crd) throw new Error(`no CRD for ${kind}`);
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
};

const strictCidr = (v: unknown): boolean => {
  try {
    parseCidr(v as string);
    return true;
  } catch {
    return false;
  }
};
/** JavaScript twins of the CEL rules, keyed by the exact rule text the CRDs carry. */
const CEL_TWINS: CelTwins = {
  [CEL.networkAddress]: strictCidr,
  [CEL.blockSizeInPool]: (self) => {
    const spec = self as { cidr: string; blockSize?: number };
    if (spec.blockSize === undefined) return true;
    const c = parseCidr(spec.cidr);
    const min = Math.max(c.prefixLength, MIN_BLOCK_PREFIX[c.family]);
    return spec.blockSize >= min && spec.blockSize <= (c.family === 4 ? 32 : 128);
  },
  [CEL.md5KeyBytes]: (self) => Buffer.byteLength(self as string, 'utf8') <= 80,
  [CEL.selectorValues]: (self) => {
    const r = self as { operator: string; values?: string[] };
    return (
      (r.operator === 'In' || r.operator === 'NotIn') === (r.values !== undefined && r.values.length > 0)
    );
  },
};

const zodAccepts = (obj: unknown): boolean => {
  try {
    parseResource(obj);
    return true;
  } catch {
    return false;
  }
};
const apiAccepts = (kind: string, obj: unknown): string[] => validate(schemaOf(kind), obj, CEL_TWINS);

describe('CRD manifests', () => {
  it('crds.yaml is exactly what deploy/kubernetes/crds.ts generates (regenerate with TERN_UPDATE_CRDS=1)', () => {
    expect(readFileSync(CRDS_YAML, 'utf8')).toBe(generated);
  });

  it('there is one CRD per tern.network kind of the model, with its scope, names and one served storage version', () => {
    const ternKinds = (Object.keys(KINDS) as Kind[]).filter((k) => KINDS[k].apiVersion === 'tern.network/v1');
    expect(crds.map((c) => c.spec.names.kind).sort()).toEqual([...ternKinds].sort());
    for (const crd of crds) {
      const kind = crd.spec.names.kind as Kind;
      expect(crd.spec.group).toBe('tern.network');
      expect(crd.metadata.name).toBe(`${crd.spec.names.plural}.tern.network`);
      expect(crd.spec.scope).toBe(KINDS[kind].namespaced ? 'Namespaced' : 'Cluster');
      expect(crd.spec.names.singular).toBe(kind.toLowerCase());
      expect(crd.spec.names.listKind).toBe(`${kind}List`);
      expect(crd.spec.versions).toHaveLength(1);
      expect(crd.spec.versions[0]).toMatchObject({ name: 'v1', served: true, storage: true });
    }
  });

  it.each(CRD_DEFS.map((d) => d.kind))(
    '%s has a structural schema whose patterns compile and are RE2-safe',
    (kind) => {
      const root = schemaOf(kind);
      expect(structuralProblems(root)).toEqual([]);
      expect(root.required).toContain('spec');
    },
  );

  it('the test validator itself flags what the API server rejects: untyped nodes, types in anyOf, bad patterns', () => {
    expect(structuralProblems({ type: 'object', properties: { a: {} } })).toHaveLength(1);
    expect(structuralProblems({ type: 'integer', anyOf: [{ type: 'integer' }] })).toHaveLength(1);
    expect(structuralProblems({ type: 'string', pattern: '^(?=a)b$' })).toHaveLength(1);
    expect(structuralProblems({ type: 'string', pattern: '^(a$' })).toHaveLength(1);
    expect(structuralProblems({ type: 'object', required: ['x'] })).toHaveLength(1);
  });
});

describe('address patterns agree with model/cidr.ts', () => {
  const ipRe = new RegExp(PATTERNS.ip, 'u');
  const cidrRe = new RegExp(PATTERNS.cidr, 'u');

  it('every IPv4 and IPv6 text form fast-check generates matches the IP pattern and parses', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (addr) => {
        expect(() => parseIp(addr)).not.toThrow();
        expect(ipRe.test(addr)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('every IPv4 and IPv6 prefix matches the CIDR pattern', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })),
          fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })),
        ),
        ([addr, len]) => {
          expect(cidrRe.test(`${addr}/${len}`)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it.each([
    '256.0.0.1',
    '10.0.0',
    '10.0.0.1.2',
    '1.2.3.4 ',
    '',
    'fd00:::1',
    '1:2:3:4:5:6:7:8:9',
    'fd00::1%eth0',
    'g::1',
    '10.0.0.1/32',
    '::ffff:300.1.1.1',
  ])('the IP pattern and parseIp both reject %j', (text) => {
    expect(() => parseIp(text)).toThrow();
    expect(ipRe.test(text)).toBe(false);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', '10.0.0.0', '10.0.0.0/', '10.0.0.0/-1', 'fd00::/1a', '10.0.0.0/8/8'])(
    'the CIDR pattern and parseCidr both reject %j',
    (text) => {
      expect(() => parseCidr(text, 'cidr', false)).toThrow();
      expect(cidrRe.test(text)).toBe(false);
    },
  );
});

// ---- the same objects through zod and through the CRD schemas (test/support/crd-cases.ts) ----
describe('the CRD schemas accept and reject what the zod model does', () => {
  it.each(GOOD)('accepts %s', (_name, o) => {
    expect(zodAccepts(o)).toBe(true);
    expect(apiAccepts((o as { kind: string }).kind, o)).toEqual([]);
  });

  it.each(BAD)('rejects %s', (_name, o) => {
    expect(zodAccepts(o)).toBe(false);
    expect(apiAccepts((o as { kind: string }).kind, o)).not.toEqual([]);
  });

  // Known, deliberate gaps: the API server is laxer here, and the agents' parse at the edge rejects.
  it('an IPAMBlock allocation keyed by a non-number passes the API server but not the model (CEL over 4096 keys exceeds the cost budget)', () => {
    const o = LAX_AT_SERVER.ipamBlockNonNumericKey;
    expect(zodAccepts(o)).toBe(false);
    expect(apiAccepts('IPAMBlock', o)).toEqual([]);
  });

  it('statefulSets address entries are free-form at the API server (string or list) and checked by the model', () => {
    const documented = statefulSetReservation(['10.0.0.6', ['10.0.0.7', 'fd00::7']]);
    expect(zodAccepts(documented)).toBe(true);
    expect(apiAccepts('IPReservation', documented)).toEqual([]);
    const bad = LAX_AT_SERVER.statefulSetBadAddress;
    expect(zodAccepts(bad)).toBe(false);
    expect(apiAccepts('IPReservation', bad)).toEqual([]);
  });

  it('unknown spec fields are pruned by both (the API server prunes, zod strips), not rejected', () => {
    const o = PRUNED_FIELD.object;
    expect(zodAccepts(o)).toBe(true);
    expect(apiAccepts('BGPPeer', o)).toEqual([]);
  });
});
