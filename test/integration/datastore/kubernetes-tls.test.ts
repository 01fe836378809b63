// The kubernetes backend over TLS as a real cluster serves it: a kubeconfig with the cluster's
// CA, and a client certificate or a bearer token. Certificates are made for the test by openssl.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesDatastore } from '../../../datastore/kubernetes/index.js';
import { UnavailableError, type Namespace } from '../../../model/index.js';
import { createLogger } from '../../../model/log.js';
import { startKubeApiServer, type KubeApiServer, type RequestInfo } from '../../support/kube-api-server.js';
import { waitFor } from '../../support/netns.js';

const quiet = createLogger('kubernetes-tls-test', { level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'tern-kube-tls-'));
const file = (name: string) => join(dir, name);
const b64 = (name: string) => readFileSync(file(name)).toString('base64');
const ns = (name: string): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

async function openssl(...args: string[]): Promise<void> {
  await execa('openssl', args, { cwd: dir });
}

/** A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate (CN tern-node). */
async function makeCertificates(): Promise<void> {
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
  );
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=kube-apiserver',
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '1',
    '-extfile',
    'san.ext',
  );
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'client.key',
    '-out',
    'client.csr',
    '-subj',
    '/CN=tern-node',
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    'client.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'client.crt',
    '-days',
    '1',
  );
  // Another CA, which signed nothing the server presents.
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'other.key',
    '-out',
    'other.crt',
    '-days',
    '1',
    '-subj',
    '/CN=other-ca',
  );
}

function kubeconfig(name: string, server: string, caFile: string, user: string): string {
  const path = file(name);
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: c, cluster: {server: "${server}", certificate-authority-data: "${b64(caFile)}"}}]`,
      `users: [{name: u, user: ${user}}]`,
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ].join('\n'),
  );
  return path;
}

describe('kubernetes datastore over TLS', () => {
  let mtls: KubeApiServer;
  const seen: RequestInfo[] = [];
  beforeAll(async () => {
    await makeCertificates();
    mtls = await startKubeApiServer({
      tls: {
        key: readFileSync(file('server.key'), 'utf8'),
        cert: readFileSync(file('server.crt'), 'utf8'),
        ca: readFileSync(file('ca.crt'), 'utf8'),
      },
    });
    mtls.beforeRequest = (r) => void seen.push(r);
  }, 60_000);
  afterAll(async () => {
    await mtls?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('authenticates with the kubeconfig client certificate, verifies the server by its CA, and watches', async () => {
    const path = kubeconfig(
      'cert',
      mtls.url,
      'ca.crt',
      `{client-certificate-data: "${b64('client.crt')}", client-key-data: "${b64('client.key')}"}`,
    );
    const store = new KubernetesDatastore({ kubeconfigPath: path, logger: quiet });
    try {
      const { revision } = await store.list('Namespace');
      const events: string[] = [];
      const w = store.watch('Namespace', { fromRevision: revision }, (e) => {
        if (e.type !== 'resync') events.push(`${e.type} ${e.object.metadata.name}`);
      });
      const a = await store.create(ns('over-tls'));
      expect(await store.get('Namespace', { name: 'over-tls' })).toEqual(a);
      await waitFor('watch event over TLS', () => events.length >= 1, 10_000, 10);
      await w.close();
      expect(events).toEqual(['added over-tls']);
      expect(seen.length).toBeGreaterThanOrEqual(3);
      expect(new Set(seen.map((r) => r.clientCommonName))).toEqual(new Set(['tern-node']));
    } finally {
      await store.close();
    }
  });

  it('sends the kubeconfig bearer token', async () => {
    // Token users still need a certificate here, since this server demands one; the token rides along.
    const path = kubeconfig(
      'token',
      mtls.url,
      'ca.crt',
      `{token: t0ken, client-certificate-data: "${b64('client.crt')}", client-key-data: "${b64('client.key')}"}`,
    );
    const store = new KubernetesDatastore({ kubeconfigPath: path, logger: quiet });
    seen.length = 0;
    try {
      await store.list('Pod');
      expect(seen.map((r) => r.authorization)).toEqual(['Bearer t0ken']);
    } finally {
      await store.close();
    }
  });

  it('refuses a server whose certificate the kubeconfig CA did not sign', async () => {
    const path = kubeconfig(
      'wrong-ca',
      mtls.url,
      'other.crt',
      `{client-certificate-data: "${b64('client.crt')}", client-key-data: "${b64('client.key')}"}`,
    );
    const store = new KubernetesDatastore({ kubeconfigPath: path, logger: quiet, retries: 0 });
    seen.length = 0;
    try {
      const err = await store.get('Namespace', { name: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toMatch(/certificate/i);
      expect(seen).toHaveLength(0);
    } finally {
      await store.close();
    }
  });
});
