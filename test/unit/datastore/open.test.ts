import { describe, expect, it } from 'vitest';
import {
  EtcdDatastore,
  MemoryDatastore,
  openDatastore,
  parseEtcdEndpoint,
} from '../../../datastore/index.js';
import { KubernetesDatastore } from '../../../datastore/kubernetes/index.js';
import { ValidationError } from '../../../model/index.js';

describe('openDatastore', () => {
  it('opens the memory backend', async () => {
    const ds = await openDatastore({ backend: 'memory' });
    expect(ds).toBeInstanceOf(MemoryDatastore);
    expect(ds.backend).toBe('memory');
  });

  it('opens the etcd backend lazily (no connection needed to construct)', async () => {
    const ds = await openDatastore({ backend: 'etcd', etcdEndpoints: ['127.0.0.1:1'] });
    expect(ds).toBeInstanceOf(EtcdDatastore);
    await ds.close();
  });

  it.each([
    [{ backend: 'etcd' as const }, 'etcdEndpoints'],
    [{ backend: 'etcd' as const, etcdEndpoints: [] }, 'etcdEndpoints'],
    [{ backend: 'etcd' as const, etcdEndpoints: ['https://10.0.0.1:2379'] }, 'etcdEndpoints'],
    [{ backend: 'kubernetes' as const, kubeconfig: '/nonexistent/kubeconfig' }, 'kubeconfig'],
  ])('rejects %j naming %s', async (config, field) => {
    const err = await openDatastore(config).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });

  it('opens the kubernetes backend lazily against an explicit server URL (no connection needed)', async () => {
    const ds = await openDatastore({ backend: 'kubernetes', kubeServer: 'http://127.0.0.1:1' });
    expect(ds).toBeInstanceOf(KubernetesDatastore);
    expect(ds.backend).toBe('kubernetes');
    await ds.close();
  });
});

describe('parseEtcdEndpoint', () => {
  it.each([
    ['http://127.0.0.1:2379', 'http://127.0.0.1:2379'],
    ['127.0.0.1:2379', 'http://127.0.0.1:2379'],
    ['http://etcd.local:2379/', 'http://etcd.local:2379'],
    ['[::1]:2379', 'http://[::1]:2379'],
    ['unix:///run/tern/etcd.sock:0', 'unix:///run/tern/etcd.sock:0'],
    ['unix:relative.sock', 'unix:relative.sock'],
  ])('%s → %s', (input, expected) => {
    expect(parseEtcdEndpoint(input)).toBe(expected);
  });

  it.each(['', 'etcd', 'http://127.0.0.1', 'ftp://x:1', 'unix://', 'https://127.0.0.1:2379'])(
    'rejects %j',
    (input) => {
      expect(() => parseEtcdEndpoint(input)).toThrow(ValidationError);
    },
  );
});
