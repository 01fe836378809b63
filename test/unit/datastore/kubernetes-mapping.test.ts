// Kind → API path, and the inverse the test server routes with.
import { describe, expect, it } from 'vitest';
import { PLURALS, parseResourcePath, resourceOf, resourcePath } from '../../../datastore/kubernetes/index.js';
import { CRD_DEFS } from '../../../deploy/kubernetes/crds.js';
import { KINDS, TERN_GROUP, ValidationError, type Kind } from '../../../model/index.js';

describe('resourcePath', () => {
  it.each<[Kind, { namespace?: string; name?: string }, string]>([
    ['Pod', {}, '/api/v1/pods'],
    ['Pod', { namespace: 'a' }, '/api/v1/namespaces/a/pods'],
    ['Pod', { namespace: 'a', name: 'x' }, '/api/v1/namespaces/a/pods/x'],
    ['Namespace', { name: 'a' }, '/api/v1/namespaces/a'],
    ['Node', { name: 'n1' }, '/api/v1/nodes/n1'],
    [
      'NetworkPolicy',
      { namespace: 'a', name: 'deny' },
      '/apis/networking.k8s.io/v1/namespaces/a/networkpolicies/deny',
    ],
    ['IPPool', { name: 'p' }, '/apis/tern.network/v1/ippools/p'],
    ['IPAMBlock', {}, '/apis/tern.network/v1/ipamblocks'],
    ['BGPPeer', { name: 'tor' }, '/apis/tern.network/v1/bgppeers/tor'],
    ['BGPConfiguration', { name: 'default' }, '/apis/tern.network/v1/bgpconfigurations/default'],
    ['IPReservation', { namespace: 'db', name: 'r' }, '/apis/tern.network/v1/namespaces/db/ipreservations/r'],
    // A namespace filter on a cluster-scoped kind means nothing and is dropped.
    ['IPPool', { namespace: 'a' }, '/apis/tern.network/v1/ippools'],
  ])('%s %j → %s', (kind, key, path) => {
    expect(resourcePath(kind, key)).toBe(path);
  });

  it('maps Lease to coordination.k8s.io/v1 leases, namespaced, once the model has the kind', () => {
    expect(PLURALS.Lease).toBe('leases');
    if (!Object.hasOwn(KINDS, 'Lease')) return; // the model's Lease kind lands separately
    expect(resourcePath('Lease' as Kind, { namespace: 'kube-system', name: 'tern-gc' })).toBe(
      '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/tern-gc',
    );
  });

  it('has a plural for every kind of the model, and the CRDs use the same plurals and scopes', () => {
    for (const kind of Object.keys(KINDS) as Kind[]) expect(resourceOf(kind).plural).toBeTruthy();
    for (const crd of CRD_DEFS) {
      const r = resourceOf(crd.kind as Kind);
      expect([r.group, r.plural, r.namespaced]).toEqual([TERN_GROUP, crd.plural, crd.scope === 'Namespaced']);
    }
    const ternKinds = (Object.keys(KINDS) as Kind[]).filter((k) => resourceOf(k).group === TERN_GROUP);
    expect(ternKinds.sort()).toEqual(CRD_DEFS.map((d) => d.kind).sort());
  });

  it('escapes names in paths and refuses unknown kinds', () => {
    expect(resourcePath('Namespace', { name: 'a b' })).toBe('/api/v1/namespaces/a%20b');
    expect(() => resourcePath('Secret' as Kind)).toThrow(ValidationError);
  });
});

describe('parseResourcePath', () => {
  it('inverts resourcePath for every kind, collection and object, namespaced or not', () => {
    for (const kind of Object.keys(KINDS) as Kind[]) {
      const r = resourceOf(kind);
      const keys = r.namespaced
        ? [{}, { namespace: 'ns1' }, { namespace: 'ns1', name: 'o1' }]
        : [{}, { name: 'o1' }];
      for (const key of keys) {
        const parsed = parseResourcePath(resourcePath(kind, key));
        expect(parsed?.resource.kind).toBe(kind);
        expect({ namespace: parsed?.namespace, name: parsed?.name }).toEqual({
          namespace: undefined,
          name: undefined,
          ...key,
        });
      }
    }
  });

  it.each([
    '/api/v1/secrets',
    '/apis/tern.network/v2/ippools',
    '/apis/tern.network/v1/namespaces/a/ippools', // cluster-scoped kind under a namespace
    '/api/v1/namespaces/a/pods/x/status',
    '/healthz',
  ])('names no kind for %s', (path) => {
    expect(parseResourcePath(path)).toBeUndefined();
  });
});
