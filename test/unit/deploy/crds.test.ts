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

// ---- the same objects through zod and through the CRD schemas ----
const meta = { name: 'x' };
const obj = (kind: string, spec: unknown) => ({ apiVersion: 'tern.network/v1', kind, metadata: meta, spec });
const sel = {
  matchLabels: { rack: 'r1' },
  matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }],
};
const alloc = {
  handle: 'ns/p/c1/eth0',
  namespace: 'ns',
  pod: 'p',
  containerID: 'c1',
  interface: 'eth0',
  node: 'n1',
};

const GOOD: Array<[string, unknown]> = [
  ['IPPool v4', obj('IPPool', { cidr: '10.244.0.0/16' })],
  [
    'IPPool v4 all fields',
    obj('IPPool', {
      cidr: '10.244.0.0/16',
      blockSize: 24,
      nodeSelector: sel,
      disabled: false,
      stickyHoldSeconds: 600,
    }),
  ],
  ['IPPool v6 /122', obj('IPPool', { cidr: 'fd00:244::/56', blockSize: 122 })],
  ['IPPool smaller than a block', obj('IPPool', { cidr: '10.0.0.0/28', blockSize: 28 })],
  ['IPPool blockSize 32', obj('IPPool', { cidr: '10.0.0.0/24', blockSize: 32 })],
  [
    'IPPool Exists selector',
    obj('IPPool', {
      cidr: '10.0.0.0/24',
      nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }] },
    }),
  ],
  ['IPAMBlock empty', obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'default', allocations: {} })],
  [
    'IPAMBlock with allocations',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'default',
      affinity: 'n1',
      allocations: { '0': alloc, '63': { handle: 'h' } },
    }),
  ],
  [
    'IPAMBlock sticky hold',
    obj('IPAMBlock', {
      cidr: 'fd00::/122',
      pool: 'p6',
      allocations: {
        '5': {
          handle: 'id:ns/db-0',
          binding: 'identity',
          identity: 'ns/db-0',
          source: 'sticky',
          heldUntil: '2026-01-01T00:00:00.000Z',
        },
      },
    }),
  ],
  ['BGPPeer minimal', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 65001 })],
  [
    'BGPPeer IPv6 all fields',
    obj('BGPPeer', {
      peerIP: 'fd00::1',
      asNumber: 4294967295,
      nodeSelector: sel,
      password: 'x'.repeat(80),
      holdTime: 90,
      keepaliveTime: 30,
      passive: true,
    }),
  ],
  ['BGPPeer holdTime 0', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 0 })],
  ['BGPPeer holdTime 3', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 3, node: 'n1' })],
  ['BGPConfiguration empty', obj('BGPConfiguration', {})],
  [
    'BGPConfiguration all',
    obj('BGPConfiguration', {
      asNumber: 64512,
      nodeToNodeMesh: false,
      routeReflectorSelector: sel,
      routeReflectorClusterID: '10.0.0.1',
      listenPort: 179,
      holdTime: 90,
      gracefulRestartTime: 120,
    }),
  ],
  [
    'IPReservation',
    {
      ...obj('IPReservation', {
        pods: [{ name: 'db', addresses: ['10.0.0.5', 'fd00::5'] }],
        statefulSets: [{ name: 'web', addresses: [['10.0.0.6']] }],
      }),
      metadata: { name: 'r', namespace: 'ns' },
    },
  ],
];

const BAD: Array<[string, unknown]> = [
  ['IPPool without cidr', obj('IPPool', {})],
  ['IPPool cidr with host bits', obj('IPPool', { cidr: '10.244.0.1/16' })],
  ['IPPool cidr without prefix', obj('IPPool', { cidr: '10.244.0.0' })],
  ['IPPool cidr not an address', obj('IPPool', { cidr: 'pods/16' })],
  ['IPPool blockSize shorter than the pool', obj('IPPool', { cidr: '10.0.0.0/24', blockSize: 23 })],
  ['IPPool v4 block larger than 4096 addresses', obj('IPPool', { cidr: '10.0.0.0/8', blockSize: 19 })],
  ['IPPool v4 blockSize 33', obj('IPPool', { cidr: '10.0.0.0/8', blockSize: 33 })],
  ['IPPool v6 block larger than 4096 addresses', obj('IPPool', { cidr: 'fd00::/48', blockSize: 115 })],
  ['IPPool blockSize not an integer', obj('IPPool', { cidr: '10.0.0.0/8', blockSize: 26.5 })],
  ['IPPool blockSize a string', obj('IPPool', { cidr: '10.0.0.0/8', blockSize: '26' })],
  ['IPPool disabled a string', obj('IPPool', { cidr: '10.0.0.0/8', disabled: 'yes' })],
  ['IPPool stickyHoldSeconds negative', obj('IPPool', { cidr: '10.0.0.0/8', stickyHoldSeconds: -1 })],
  [
    'IPPool selector In without values',
    obj('IPPool', { cidr: '10.0.0.0/8', nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }),
  ],
  [
    'IPPool selector Exists with values',
    obj('IPPool', {
      cidr: '10.0.0.0/8',
      nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
    }),
  ],
  [
    'IPPool selector bad operator',
    obj('IPPool', {
      cidr: '10.0.0.0/8',
      nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
    }),
  ],
  [
    'IPPool selector empty key',
    obj('IPPool', {
      cidr: '10.0.0.0/8',
      nodeSelector: { matchExpressions: [{ key: '', operator: 'Exists' }] },
    }),
  ],
  [
    'IPPool selector label value not a string',
    obj('IPPool', { cidr: '10.0.0.0/8', nodeSelector: { matchLabels: { a: 1 } } }),
  ],
  ['IPAMBlock without allocations', obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'default' })],
  ['IPAMBlock empty pool', obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: '', allocations: {} })],
  [
    'IPAMBlock allocation without handle',
    obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'p', allocations: { '1': { pod: 'x' } } }),
  ],
  [
    'IPAMBlock allocation empty handle',
    obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'p', allocations: { '1': { handle: '' } } }),
  ],
  [
    'IPAMBlock binding not identity',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'p',
      allocations: { '1': { handle: 'h', binding: 'pod' } },
    }),
  ],
  [
    'IPAMBlock unknown source',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'p',
      allocations: { '1': { handle: 'h', source: 'magic' } },
    }),
  ],
  [
    'IPAMBlock heldUntil not a time',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'p',
      allocations: { '1': { handle: 'h', heldUntil: 'tomorrow' } },
    }),
  ],
  [
    'IPAMBlock heldUntil with an offset',
    obj('IPAMBlock', {
      cidr: '10.244.1.0/26',
      pool: 'p',
      allocations: { '1': { handle: 'h', heldUntil: '2026-01-01T00:00:00+01:00' } },
    }),
  ],
  ['BGPPeer AS 0', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 0 })],
  ['BGPPeer AS 2^32', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 4294967296 })],
  ['BGPPeer AS as a string', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: '65001' })],
  ['BGPPeer without AS', obj('BGPPeer', { peerIP: '192.0.2.1' })],
  ['BGPPeer without peerIP', obj('BGPPeer', { asNumber: 65001 })],
  ['BGPPeer peerIP a CIDR', obj('BGPPeer', { peerIP: '192.0.2.1/32', asNumber: 65001 })],
  ['BGPPeer peerIP a name', obj('BGPPeer', { peerIP: 'tor1.example', asNumber: 65001 })],
  ['BGPPeer holdTime 1', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 1 })],
  ['BGPPeer holdTime 2', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 2 })],
  ['BGPPeer holdTime 65536', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: 65536 })],
  ['BGPPeer holdTime negative', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, holdTime: -3 })],
  ['BGPPeer keepaliveTime 21846', obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, keepaliveTime: 21846 })],
  [
    'BGPPeer password of 81 characters',
    obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 1, password: 'x'.repeat(81) }),
  ],
  ['BGPConfiguration AS 0', obj('BGPConfiguration', { asNumber: 0 })],
  ['BGPConfiguration listenPort 0', obj('BGPConfiguration', { listenPort: 0 })],
  ['BGPConfiguration listenPort 65536', obj('BGPConfiguration', { listenPort: 65536 })],
  ['BGPConfiguration clusterID not an address', obj('BGPConfiguration', { routeReflectorClusterID: '1' })],
  ['BGPConfiguration gracefulRestartTime 4096', obj('BGPConfiguration', { gracefulRestartTime: 4096 })],
  ['BGPConfiguration holdTime fractional', obj('BGPConfiguration', { holdTime: 1.5 })],
  ['BGPConfiguration mesh a string', obj('BGPConfiguration', { nodeToNodeMesh: 'true' })],
  [
    'IPReservation pod without addresses',
    {
      ...obj('IPReservation', { pods: [{ name: 'db', addresses: [] }] }),
      metadata: { name: 'r', namespace: 'ns' },
    },
  ],
  [
    'IPReservation three addresses',
    {
      ...obj('IPReservation', { pods: [{ name: 'db', addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] }] }),
      metadata: { name: 'r', namespace: 'ns' },
    },
  ],
  [
    'IPReservation bad address',
    {
      ...obj('IPReservation', { pods: [{ name: 'db', addresses: ['10.0.0.300'] }] }),
      metadata: { name: 'r', namespace: 'ns' },
    },
  ],
];

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
    const o = obj('IPAMBlock', { cidr: '10.244.1.0/26', pool: 'p', allocations: { first: { handle: 'h' } } });
    expect(zodAccepts(o)).toBe(false);
    expect(apiAccepts('IPAMBlock', o)).toEqual([]);
  });

  it('statefulSets address entries are free-form at the API server (string or list) and checked by the model', () => {
    const reservation = (addresses: unknown[]) => ({
      ...obj('IPReservation', { statefulSets: [{ name: 'web', addresses }] }),
      metadata: { name: 'r', namespace: 'ns' },
    });
    const documented = reservation(['10.0.0.6', ['10.0.0.7', 'fd00::7']]);
    expect(zodAccepts(documented)).toBe(true);
    expect(apiAccepts('IPReservation', documented)).toEqual([]);
    const bad = reservation(['10.0.0.300']);
    expect(zodAccepts(bad)).toBe(false);
    expect(apiAccepts('IPReservation', bad)).toEqual([]);
  });

  it('unknown spec fields are pruned by both (the API server prunes, zod strips), not rejected', () => {
    const o = obj('BGPPeer', { peerIP: '192.0.2.1', asNumber: 65001, color: 'blue' });
    expect(zodAccepts(o)).toBe(true);
    expect(apiAccepts('BGPPeer', o)).toEqual([]);
  });
});
