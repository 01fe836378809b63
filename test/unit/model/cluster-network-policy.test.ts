// ClusterNetworkPolicy validation against the network-policy-api project's own CRD test cases
// (pkg/crdtest/testdata, copied from the module by scripts/network-policy-api.mjs) and the
// limits of its API types: what the API server accepts we accept, what it refuses we refuse.
import { describe, expect, it } from 'vitest';
import { CNP_API_VERSION, ValidationError, parseResource } from '../../../model/index.js';
import { CNP_BAD, CNP_GOOD } from '../../support/cnp-cases.js';

describe('the ClusterNetworkPolicy test set (upstream pkg/crdtest cases and the API limits)', () => {
  it.each(CNP_GOOD)('accepts %s', (_name, obj) => {
    const cnp = parseResource(obj, 'ClusterNetworkPolicy');
    expect(cnp.apiVersion).toBe(CNP_API_VERSION); // v1alpha2 objects are stored as v1beta1
  });
  it.each(CNP_BAD)('refuses %s', (_name, obj) => {
    expect(() => parseResource(obj, 'ClusterNetworkPolicy')).toThrow(ValidationError);
  });
});

const base = (spec: Record<string, unknown>): unknown => ({
  apiVersion: CNP_API_VERSION,
  kind: 'ClusterNetworkPolicy',
  metadata: { name: 'p' },
  spec: { tier: 'Admin', priority: 0, subject: { namespaces: {} }, ...spec },
});
const rule = { action: 'Deny', from: [{ namespaces: {} }] } as const;
const fieldOf = (obj: unknown): string => {
  try {
    parseResource(obj, 'ClusterNetworkPolicy');
  } catch (e) {
    if (e instanceof ValidationError) return e.field;
    throw e;
  }
  return '(accepted)';
};

describe('limits of the API types', () => {
  it('25 rules per direction, 25 peers and protocols per rule; one more is refused with the field named', () => {
    expect(fieldOf(base({ ingress: Array(25).fill(rule) }))).toBe('(accepted)');
    expect(fieldOf(base({ ingress: Array(26).fill(rule) }))).toBe('spec.ingress');
    const egress = { action: 'Accept', to: [{ namespaces: {} }] };
    expect(fieldOf(base({ egress: Array(26).fill(egress) }))).toBe('spec.egress');
    expect(fieldOf(base({ ingress: [{ ...rule, from: Array(26).fill({ namespaces: {} }) }] }))).toBe(
      'spec.ingress[0].from',
    );
    const tcp = { tcp: { destinationPort: { number: 80 } } };
    expect(fieldOf(base({ ingress: [{ ...rule, protocols: Array(26).fill(tcp) }] }))).toBe(
      'spec.ingress[0].protocols',
    );
  });

  it('priority 0 and 1000 are the bounds; fractions are refused', () => {
    expect(fieldOf(base({ priority: 0 }))).toBe('(accepted)');
    expect(fieldOf(base({ priority: 1000 }))).toBe('(accepted)');
    expect(fieldOf(base({ priority: 1.5 }))).toBe('spec.priority');
  });

  it('networks: 1..25 unique CIDRs of either family, at most 43 characters, host bits clear', () => {
    const to = (networks: string[]) => base({ egress: [{ action: 'Deny', to: [{ networks }] }] });
    expect(fieldOf(to(['0.0.0.0/0', '::/0', 'fd00:1::/64']))).toBe('(accepted)');
    expect(fieldOf(to([]))).toBe('spec.egress[0].to[0].networks');
    expect(fieldOf(to(['10.0.0.0/8', '10.0.0.0/8']))).toBe('spec.egress[0].to[0].networks[1]');
    expect(fieldOf(to(['fd00::1/64']))).toBe('spec.egress[0].to[0].networks[0]');
    expect(fieldOf(to(['10.0.0.0']))).toBe('spec.egress[0].to[0].networks[0]');
  });

  it('a port is a number or a range, not both; a protocol sets one of tcp, udp, sctp, destinationNamedPort', () => {
    const withProtocol = (p: unknown) => base({ ingress: [{ ...rule, protocols: [p] }] } as never);
    expect(fieldOf(withProtocol({ sctp: { destinationPort: { range: { start: 1, end: 65535 } } } }))).toBe(
      '(accepted)',
    );
    expect(
      fieldOf(withProtocol({ tcp: { destinationPort: { number: 80, range: { start: 1, end: 2 } } } })),
    ).toBe('spec.ingress[0].protocols[0].tcp.destinationPort.range');
    expect(
      fieldOf(
        withProtocol({ tcp: { destinationPort: { number: 1 } }, udp: { destinationPort: { number: 1 } } }),
      ),
    ).toBe('spec.ingress[0].protocols[0].udp');
    expect(fieldOf(withProtocol({}))).toBe('spec.ingress[0].protocols[0]');
    expect(fieldOf(withProtocol({ icmp: {} }))).toBe('spec.ingress[0].protocols[0]');
  });

  it('ingress peers are namespaces or pods only: nodes and networks are egress peers', () => {
    expect(fieldOf(base({ ingress: [{ ...rule, from: [{ networks: ['10.0.0.0/8'] }] }] } as never))).toBe(
      'spec.ingress[0].from[0]',
    );
  });

  it('a rule name is at most 100 characters', () => {
    expect(fieldOf(base({ ingress: [{ ...rule, name: 'x'.repeat(100) }] } as never))).toBe('(accepted)');
    expect(fieldOf(base({ ingress: [{ ...rule, name: 'x'.repeat(101) }] } as never))).toBe(
      'spec.ingress[0].name',
    );
  });
});
