// The CustomResourceDefinitions of tern's kinds (group tern.network, version v1), built here once
// and written to crds.yaml (test/unit/deploy/crds.test.ts fails when the file is stale and
// rewrites it with TERN_UPDATE_CRDS=1). The OpenAPI v3 schemas mirror model/tern.ts: what the zod
// schemas reject, the API server rejects too, so a bad object never reaches the agents.
//
// Patterns are RE2 (the API server's regex engine): no look-around, no back-references. Checks a
// structural schema cannot express are CEL rules (x-kubernetes-validations); the CIDR ones use
// Kubernetes' CIDR library (Kubernetes >= 1.31).
import { TERN_GROUP } from '../../model/meta.js';
import { MD5_KEY_MAX_BYTES, MIN_BLOCK_PREFIX } from '../../model/tern.js';

/** The subset of a JSON-Schema / OpenAPI v3 node that tern's CRDs use. */
export interface SchemaNode {
  type?: 'object' | 'array' | 'string' | 'integer' | 'boolean';
  description?: string;
  format?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: SchemaNode;
  items?: SchemaNode;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  enum?: Array<string | number | boolean>;
  anyOf?: SchemaNode[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-validations'?: Array<{ rule: string; message: string; fieldPath?: string }>;
}

// ---- address patterns ----
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = `${OCTET}(\\.${OCTET}){3}`;
const H = '[0-9a-fA-F]{1,4}';
/** Every textual form of RFC 4291 section 2.2 (full, compressed, with an IPv4 tail). */
const IPV6 = [
  `(${H}:){7}${H}`,
  `(${H}:){1,7}:`,
  `(${H}:){1,6}:${H}`,
  `(${H}:){1,5}(:${H}){1,2}`,
  `(${H}:){1,4}(:${H}){1,3}`,
  `(${H}:){1,3}(:${H}){1,4}`,
  `(${H}:){1,2}(:${H}){1,5}`,
  `${H}:(:${H}){1,6}`,
  `:((:${H}){1,7}|:)`,
  `(${H}:){6}${IPV4}`,
  `::(${H}:){0,5}${IPV4}`,
  `${H}::(${H}:){0,4}${IPV4}`,
  `(${H}:){1}${H}::(${H}:){0,3}${IPV4}`,
  `(${H}:){2}${H}::(${H}:){0,2}${IPV4}`,
  `(${H}:){3}${H}::(${H}:){0,1}${IPV4}`,
  `(${H}:){4}${H}::${IPV4}`,
].join('|');

export const PATTERNS = {
  ip: `^(${IPV4}|${IPV6})$`,
  cidr: `^(${IPV4}/(3[0-2]|[12]?[0-9])|(${IPV6})/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$`,
  /** RFC 3339 in UTC, as zod's z.iso.datetime() accepts by default. */
  utcTime: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$',
} as const;

/**
 * The CEL rules the CRDs carry, by name. The unit tests evaluate each with a JavaScript
 * equivalent keyed by the rule text, so a rule cannot be added or changed without its twin.
 */
export const CEL = {
  networkAddress: 'cidr(self).masked() == cidr(self)',
  blockSizeInPool:
    `!has(self.blockSize) || (cidr(self.cidr).ip().family() == 4` +
    ` ? self.blockSize >= [cidr(self.cidr).prefixLength(), ${MIN_BLOCK_PREFIX[4]}].max() && self.blockSize <= 32` +
    ` : self.blockSize >= [cidr(self.cidr).prefixLength(), ${MIN_BLOCK_PREFIX[6]}].max() && self.blockSize <= 128)`,
  /** maxLength counts characters; the kernel's TCP MD5 limit is in bytes of UTF-8. */
  md5KeyBytes: `size(bytes(self)) <= ${MD5_KEY_MAX_BYTES}`,
  selectorValues:
    "(self.operator == 'In' || self.operator == 'NotIn') == (has(self.values) && size(self.values) > 0)",
} as const;

// ---- building blocks ----
const str = (extra: SchemaNode = {}): SchemaNode => ({ type: 'string', ...extra });
const int = (minimum: number, maximum: number, extra: SchemaNode = {}): SchemaNode => ({
  type: 'integer',
  minimum,
  maximum,
  ...extra,
});
const bool = (description: string): SchemaNode => ({ type: 'boolean', description });

// maxLength bounds the CEL cost estimate; the longest IPv6 text is 45 characters.
const ip = (description: string): SchemaNode => str({ description, pattern: PATTERNS.ip, maxLength: 64 });
const cidr = (description: string): SchemaNode =>
  str({
    description,
    pattern: PATTERNS.cidr,
    maxLength: 64,
    'x-kubernetes-validations': [{ rule: CEL.networkAddress, message: 'host bits must be zero' }],
  });
const asNumber = (description: string): SchemaNode =>
  int(1, 4294967295, { description: `${description} (1..4294967295, 4-byte AS)`, format: 'int64' });

const labelSelector = (description: string): SchemaNode => ({
  type: 'object',
  description,
  properties: {
    matchLabels: { type: 'object', additionalProperties: str() },
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'operator'],
        'x-kubernetes-validations': [
          {
            rule: CEL.selectorValues,
            message: 'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
          },
        ],
        properties: {
          key: str({ minLength: 1 }),
          operator: str({ enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }),
          values: { type: 'array', items: str() },
        },
      },
    },
  },
});

const object = (properties: Record<string, SchemaNode>, required: string[] = [], extra: SchemaNode = {}) => ({
  type: 'object' as const,
  properties,
  ...(required.length ? { required } : {}),
  ...extra,
});

// ---- the specs (field for field with model/tern.ts) ----
const ipPoolSpec = object(
  {
    cidr: cidr('The pool, e.g. 10.244.0.0/16 or fd00:244::/56.'),
    blockSize: int(0, 128, {
      description: `Prefix length of the pool's blocks; default 26 (IPv4) / 122 (IPv6). At least /${MIN_BLOCK_PREFIX[4]} (IPv4) / /${MIN_BLOCK_PREFIX[6]} (IPv6) and not shorter than the pool.`,
    }),
    nodeSelector: labelSelector('Nodes that take blocks from this pool; absent = every node.'),
    disabled: bool('No new allocations from this pool; existing ones stay.'),
    stickyHoldSeconds: int(0, 31_536_000, {
      description: 'How long a sticky address stays held for its pod identity after the pod is gone.',
    }),
  },
  ['cidr'],
  { 'x-kubernetes-validations': [{ rule: CEL.blockSizeInPool, message: 'blockSize out of range for cidr' }] },
);

const allocation = object(
  {
    handle: str({ minLength: 1 }),
    namespace: str(),
    pod: str(),
    containerID: str(),
    interface: str(),
    node: str(),
    binding: str({ enum: ['identity'] }),
    identity: str({ minLength: 3 }),
    source: str({ enum: ['ordinal', 'reservation', 'sticky'] }),
    owner: str(),
    heldUntil: str({ pattern: PATTERNS.utcTime }),
  },
  ['handle'],
);

const ipamBlockSpec = object(
  {
    cidr: cidr('The block.'),
    pool: str({ minLength: 1, description: 'Name of the IPPool the block was cut from.' }),
    affinity: str({ description: 'Node that claimed the block; absent while unclaimed.' }),
    allocations: {
      type: 'object',
      description: 'Allocated addresses, keyed by their offset in the block (decimal).',
      // Keys are not checked here: a CEL rule over up to 4096 keys exceeds the API server's cost
      // budget. The agents reject a non-numeric key when they parse the block (model/tern.ts).
      maxProperties: 4096,
      additionalProperties: allocation,
    },
  },
  ['cidr', 'pool', 'allocations'],
);

const bgpPeerSpec = object(
  {
    peerIP: ip('Address of the peer.'),
    asNumber: asNumber("The peer's AS"),
    nodeSelector: labelSelector('Nodes that peer with it; absent = every node.'),
    node: str({ description: 'A single node that peers with it (instead of nodeSelector).' }),
    password: str({
      minLength: 1,
      maxLength: MD5_KEY_MAX_BYTES,
      description: `TCP MD5 (RFC 2385) key, 1..${MD5_KEY_MAX_BYTES} bytes of UTF-8.`,
      'x-kubernetes-validations': [
        {
          rule: CEL.md5KeyBytes,
          message: `must be at most ${MD5_KEY_MAX_BYTES} bytes of UTF-8 (TCP MD5 key limit)`,
        },
      ],
    }),
    holdTime: int(0, 65535, {
      description: 'Seconds: 0 (no keepalives) or 3..65535.',
      anyOf: [{ enum: [0] }, { minimum: 3 }],
    }),
    keepaliveTime: int(0, 21845),
    bfd: object(
      {
        desiredMinTxMs: int(10, 60000, { description: 'Milliseconds between our BFD packets; default 300.' }),
        requiredMinRxMs: int(10, 60000, {
          description: "Fastest rate we accept the peer's BFD packets at, ms; default 300.",
        }),
        multiplier: int(1, 255, {
          description: 'Packets missed before BFD declares the path down; default 3.',
        }),
      },
      [],
      { description: 'BFD (RFC 5880/5881) to the peer: a BFD failure takes the BGP session down at once.' },
    ),
    passive: bool('Wait for the peer to connect.'),
    ttlSecurity: int(1, 254, {
      description: 'GTSM (RFC 5082): maximum hops to the peer (1 = directly connected); TTL 255 is sent.',
    }),
  },
  ['peerIP', 'asNumber'],
);

const bgpConfigurationSpec = object({
  asNumber: asNumber('AS of nodes that set none; default 64512'),
  nodeToNodeMesh: bool('Full iBGP mesh among nodes; default true.'),
  routeReflectorSelector: labelSelector('Nodes that act as route reflectors when the mesh is off.'),
  routeReflectorClusterID: ip('Route reflector cluster ID (RFC 4456).'),
  listenPort: int(1, 65535),
  holdTime: { type: 'integer' },
  gracefulRestartTime: int(0, 4095),
});

const addresses = { type: 'array' as const, minItems: 1, maxItems: 2, items: ip('An address.') };
const ipReservationSpec = object({
  pods: {
    type: 'array',
    items: object({ name: str({ minLength: 1 }), addresses }, ['name', 'addresses']),
  },
  statefulSets: {
    type: 'array',
    items: object(
      {
        name: str({ minLength: 1 }),
        addresses: {
          type: 'array',
          minItems: 1,
          description: 'Entry i is for ordinal i: one address, or an IPv4 + IPv6 pair.',
          // A string or a list: no structural type fits, and a CEL check of an untyped value
          // exceeds the API server's cost budget. The agents validate the entries (model/tern.ts).
          items: { 'x-kubernetes-preserve-unknown-fields': true },
        },
      },
      ['name', 'addresses'],
    ),
  },
});

// ---- the CRDs ----
export interface CrdDef {
  kind: string;
  plural: string;
  scope: 'Cluster' | 'Namespaced';
  spec: SchemaNode;
  columns?: Array<{ name: string; jsonPath: string; type: 'string' | 'integer' | 'boolean' }>;
}

export const CRD_DEFS: readonly CrdDef[] = [
  {
    kind: 'IPPool',
    plural: 'ippools',
    scope: 'Cluster',
    spec: ipPoolSpec,
    columns: [
      { name: 'CIDR', jsonPath: '.spec.cidr', type: 'string' },
      { name: 'Block', jsonPath: '.spec.blockSize', type: 'integer' },
      { name: 'Disabled', jsonPath: '.spec.disabled', type: 'boolean' },
    ],
  },
  {
    kind: 'IPAMBlock',
    plural: 'ipamblocks',
    scope: 'Cluster',
    spec: ipamBlockSpec,
    columns: [
      { name: 'CIDR', jsonPath: '.spec.cidr', type: 'string' },
      { name: 'Pool', jsonPath: '.spec.pool', type: 'string' },
      { name: 'Node', jsonPath: '.spec.affinity', type: 'string' },
    ],
  },
  {
    kind: 'BGPPeer',
    plural: 'bgppeers',
    scope: 'Cluster',
    spec: bgpPeerSpec,
    columns: [
      { name: 'Peer', jsonPath: '.spec.peerIP', type: 'string' },
      { name: 'AS', jsonPath: '.spec.asNumber', type: 'integer' },
    ],
  },
  { kind: 'BGPConfiguration', plural: 'bgpconfigurations', scope: 'Cluster', spec: bgpConfigurationSpec },
  { kind: 'IPReservation', plural: 'ipreservations', scope: 'Namespaced', spec: ipReservationSpec },
];

/** The CustomResourceDefinition objects, in the order of CRD_DEFS. */
export function ternCrds(): object[] {
  return CRD_DEFS.map((d) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${d.plural}.${TERN_GROUP}` },
    spec: {
      group: TERN_GROUP,
      scope: d.scope,
      names: {
        kind: d.kind,
        listKind: `${d.kind}List`,
        plural: d.plural,
        singular: d.kind.toLowerCase(),
        categories: ['tern'],
      },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          ...(d.columns ? { additionalPrinterColumns: d.columns } : {}),
          schema: {
            openAPIV3Schema: {
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: d.spec,
              },
            },
          },
        },
      ],
    },
  }));
}
