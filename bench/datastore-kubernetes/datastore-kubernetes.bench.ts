// bench/datastore-kubernetes: get and compare-and-swap update latency of one IPPool through
// KubernetesDatastore vs raw @kubernetes/client-node calls (CustomObjectsApi
// getClusterCustomObject / replaceClusterCustomObject), against the same in-process Kubernetes
// protocol server, in the same run, interleaved round by round. Prints per-call latency and
// the ratio. Asserts only correctness (every update landed), never timing.
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesDatastore } from '../../datastore/kubernetes/index.js';
import type { IPPool } from '../../model/index.js';
import { createLogger } from '../../model/log.js';
import { startKubeApiServer, type KubeApiServer } from '../../test/support/kube-api-server.js';

const N = 400; // calls per round and client
const ROUNDS = 5;
const WARMUP = 1;

let server: KubeApiServer;
let tern: KubernetesDatastore;
let raw: CustomObjectsApi;

const ref = { group: 'tern.network', version: 'v1', plural: 'ippools' };
const pool = (name: string): IPPool => ({
  apiVersion: 'tern.network/v1',
  kind: 'IPPool',
  metadata: { name, annotations: { n: '0' } },
  spec: { cidr: '10.60.0.0/16' },
});

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

beforeAll(async () => {
  server = await startKubeApiServer({ bookmarkIntervalMs: 60_000 });
  tern = new KubernetesDatastore({ server: server.url, logger: createLogger('bench', { level: 'silent' }) });
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'bench', server: server.url, skipTLSVerify: true }, { name: 'bench' });
  raw = kc.makeApiClient(CustomObjectsApi);
  await tern.create(pool('via-tern'));
  await tern.create(pool('via-raw'));
});

afterAll(async () => {
  await tern?.close();
  await server?.close();
});

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn();
  return ((performance.now() - t0) * 1000) / N; // µs per call
}

describe('kubernetes datastore: get and CAS update latency vs raw client-node', () => {
  it('measures both in the same run and every update lands', async () => {
    let ternPool = (await tern.get('IPPool', { name: 'via-tern' }))!;
    let rawPool = (await raw.getClusterCustomObject({ ...ref, name: 'via-raw' })) as IPPool;
    const samples = {
      ternGet: [] as number[],
      rawGet: [] as number[],
      ternPut: [] as number[],
      rawPut: [] as number[],
    };
    let updates = 0;
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      const keep = round >= WARMUP;
      const ternGet = await time(async () => {
        ternPool = (await tern.get('IPPool', { name: 'via-tern' }))!;
      });
      const rawGet = await time(async () => {
        rawPool = (await raw.getClusterCustomObject({ ...ref, name: 'via-raw' })) as IPPool;
      });
      const ternPut = await time(async () => {
        const n = String(Number(ternPool.metadata.annotations!.n) + 1);
        ternPool = await tern.update({ ...ternPool, metadata: { ...ternPool.metadata, annotations: { n } } });
      });
      const rawPut = await time(async () => {
        const n = String(Number(rawPool.metadata.annotations!.n) + 1);
        rawPool = (await raw.replaceClusterCustomObject({
          ...ref,
          name: 'via-raw',
          body: { ...rawPool, metadata: { ...rawPool.metadata, annotations: { n } } },
        })) as IPPool;
      });
      updates += N;
      if (keep) {
        samples.ternGet.push(ternGet);
        samples.rawGet.push(rawGet);
        samples.ternPut.push(ternPut);
        samples.rawPut.push(rawPut);
      }
    }
    const row = (op: string, t: number[], r: number[]) => ({
      op,
      'tern µs/call': Math.round(median(t)),
      'client-node µs/call': Math.round(median(r)),
      'tern / client-node': Number((median(t) / median(r)).toFixed(2)),
    });
    console.log(`\n${N} sequential calls per round, median of ${ROUNDS} rounds (after ${WARMUP} warm-up):`);
    console.table([
      row('get IPPool', samples.ternGet, samples.rawGet),
      row('CAS update IPPool', samples.ternPut, samples.rawPut),
    ]);
    // Correctness: every CAS update applied exactly once on both paths.
    expect((await tern.get('IPPool', { name: 'via-tern' }))?.metadata.annotations?.n).toBe(String(updates));
    expect((await tern.get('IPPool', { name: 'via-raw' }))?.metadata.annotations?.n).toBe(String(updates));
  });
});
