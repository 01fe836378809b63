// The CRD test set through the real kube-apiserver: deploy/kubernetes/crds.yaml applied as a user
// applies it, then every good object accepted and every bad one refused by the server's own
// validation (structural schema, formats, CEL), on a server-side dry run so nothing is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourcePath } from '../../../datastore/kubernetes/index.js';
import type { Kind } from '../../../model/index.js';
import { BAD, GOOD, LAX_AT_SERVER, PRUNED_FIELD } from '../../support/crd-cases.js';
import { CNP_BAD, CNP_GOOD } from '../../support/cnp-cases.js';
import { startKubeCluster, type KubeCluster } from '../../support/kube-cluster.js';

let cluster: KubeCluster;
beforeAll(async () => {
  cluster = await startKubeCluster({ name: 'crds' });
  await cluster.applyCrds();
  await cluster.createNamespace('ns');
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
});

interface Case {
  kind: Kind;
  metadata: { name: string; namespace?: string };
}

/** POSTs the object with dryRun=All: the server validates and admits it, and stores nothing. */
async function dryRunCreate(o: unknown) {
  const c = o as Case;
  const path = `${resourcePath(c.kind, { namespace: c.metadata.namespace })}?dryRun=All`;
  return cluster.request('POST', path, o);
}

const statusMessage = (body: unknown) => String((body as { message?: unknown } | undefined)?.message);

describe('the real kube-apiserver validates tern.network objects as the CRD test set says', () => {
  it.each(GOOD)('accepts %s', async (_name, o) => {
    const r = await dryRunCreate(o);
    expect(r.status, statusMessage(r.body)).toBe(201);
  });

  it.each(BAD)('refuses %s', async (_name, o) => {
    const r = await dryRunCreate(o);
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ kind: 'Status', reason: 'Invalid' });
  });

  it.each(Object.entries(LAX_AT_SERVER))('accepts %s, which only the model refuses', async (_name, o) => {
    const r = await dryRunCreate(o);
    expect(r.status, statusMessage(r.body)).toBe(201);
  });

  it('prunes an unknown spec field instead of refusing the object', async () => {
    const r = await dryRunCreate(PRUNED_FIELD.object);
    expect(r.status).toBe(201);
    const spec = (r.body as { spec: Record<string, unknown> }).spec;
    expect(spec).not.toHaveProperty(PRUNED_FIELD.field);
    expect(spec).toMatchObject({ peerIP: '192.0.2.1', asNumber: 65001 });
  });

  it('stored nothing: every dry run left the tern.network collections empty', async () => {
    for (const kind of ['IPPool', 'IPAMBlock', 'BGPPeer', 'BGPConfiguration', 'IPReservation'] as const) {
      const r = await cluster.request('GET', resourcePath(kind));
      expect(r.status).toBe(200);
      expect((r.body as { items: unknown[] }).items).toEqual([]);
    }
  });
});

describe('the real kube-apiserver validates ClusterNetworkPolicy as the model does (network-policy-api CRD)', () => {
  /** Dry-run create at the path of the object's own version (v1alpha2 and v1beta1 are both served). */
  const dryRun = (o: unknown) => {
    const version = String((o as { apiVersion: string }).apiVersion).split('/')[1];
    return cluster.request(
      'POST',
      `/apis/policy.networking.k8s.io/${version}/clusternetworkpolicies?dryRun=All`,
      o,
    );
  };

  it.each(CNP_GOOD)('accepts %s', async (_name, o) => {
    const r = await dryRun(o);
    expect(r.status, statusMessage(r.body)).toBe(201);
  });

  it.each(CNP_BAD)('refuses %s', async (_name, o) => {
    const r = await dryRun(o);
    expect(r.status, statusMessage(r.body)).toBe(422);
  });
});
