import { describe, expect, it } from 'vitest';
import { agentConfigSchema, ipamGcEnabled } from '../../../felix/config.js';
import { loadConfig } from '../../../model/config.js';

const load = (env: Record<string, string>) => loadConfig(agentConfigSchema, { env, flags: {} });

describe('agent configuration of the cluster IPAM GC', () => {
  it('is on by default with the kubernetes datastore and off with etcd (no Pod objects are guaranteed there)', () => {
    expect(ipamGcEnabled(load({ TERN_DATASTORE: 'kubernetes' }))).toBe(true);
    expect(ipamGcEnabled(load({ TERN_DATASTORE: 'etcd' }))).toBe(false);
    expect(ipamGcEnabled(load({}))).toBe(false);
  });

  it('TERN_IPAM_GC_ENABLED overrides the default either way', () => {
    expect(ipamGcEnabled(load({ TERN_DATASTORE: 'kubernetes', TERN_IPAM_GC_ENABLED: 'false' }))).toBe(false);
    expect(ipamGcEnabled(load({ TERN_DATASTORE: 'etcd', TERN_IPAM_GC_ENABLED: 'true' }))).toBe(true);
  });

  it('reads grace, interval and the Lease from the environment, with defaults', () => {
    const defaults = load({});
    expect(defaults).toMatchObject({
      ipamGcGraceSeconds: 600,
      ipamGcIntervalSeconds: 60,
      leaderElectionNamespace: 'tern-system',
      leaderElectionLeaseName: 'tern-ipam-gc',
    });
    const set = load({
      TERN_IPAM_GC_GRACE_SECONDS: '120',
      TERN_IPAM_GC_INTERVAL_SECONDS: '15',
      TERN_LEADER_ELECTION_NAMESPACE: 'kube-system',
      TERN_LEADER_ELECTION_LEASE_NAME: 'gc',
    });
    expect(set).toMatchObject({
      ipamGcGraceSeconds: 120,
      ipamGcIntervalSeconds: 15,
      leaderElectionNamespace: 'kube-system',
      leaderElectionLeaseName: 'gc',
    });
    expect(() => load({ TERN_IPAM_GC_GRACE_SECONDS: '-1' })).toThrow(/TERN_IPAM_GC_GRACE_SECONDS/);
  });
});
