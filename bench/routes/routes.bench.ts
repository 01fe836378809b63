// bench/routes: install and remove 10k /32 routes through the route reconciler vs `ip -batch` of
// the same routes, in the same run, in a bench netns with a veth. Prints routes/s and the ratio.
// Asserts only correctness (every route installed, every route removed), never timing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet } from '../../test/support/netns.js';
import { Harness, buildHarness } from '../../test/integration/kernel-routes/harness-client.js';

const N = 10_000;
const ROUNDS = 5;
/** Untimed first round for both (JIT warm-up for the long-running agent, caches for ip). */
const WARMUP = 1;
const DEV = 'veth0';

const nets = new NetnsSet();
const dir = mkdtempSync(join(tmpdir(), 'tern-bench-routes-'));
let ns = '';
let harness: Harness | undefined;

const dsts = Array.from({ length: N }, (_, i) => `10.100.${i >> 8}.${i & 255}/32`);

async function countProto(proto: number): Promise<number> {
  const { stdout } = await execa('ip', ['-n', ns, 'route', 'show', 'proto', String(proto)]);
  return stdout ? stdout.split('\n').length : 0;
}

async function timeIpBatch(file: string): Promise<number> {
  const t0 = performance.now();
  await execa('ip', ['-n', ns, '-batch', file]);
  return performance.now() - t0;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (ms: number): number => Math.round((N / ms) * 1000);

beforeAll(async () => {
  await buildHarness();
  ns = await nets.add('rbench');
  await execa('ip', ['-n', ns, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', 'veth1']);
  await execa('ip', ['-n', ns, 'link', 'set', DEV, 'up']);
  await execa('ip', ['-n', ns, 'link', 'set', 'veth1', 'up']);
  writeFileSync(
    join(dir, 'add'),
    dsts.map((d) => `route add ${d} dev ${DEV} proto 90 scope link\n`).join(''),
  );
  writeFileSync(
    join(dir, 'del'),
    dsts.map((d) => `route del ${d} dev ${DEV} proto 90 scope link\n`).join(''),
  );
  writeFileSync(join(dir, 'empty'), '');
});

afterAll(async () => {
  await harness?.close();
  await nets.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('bench/routes', () => {
  it(`installs and removes ${N} /32 routes: reconciler vs ip -batch`, async () => {
    const routes = dsts.map((dst) => ({ dst, dev: DEV }));
    const t = {
      ternAdd: [] as number[],
      ternDel: [] as number[],
      ipAdd: [] as number[],
      ipDel: [] as number[],
    };
    // ip's own start-up (exec, netns switch, cache warm-up), measured so it can be taken out of its time.
    const ipStartup = median(await Promise.all([0, 1, 2].map(() => timeIpBatch(join(dir, 'empty')))));
    let totals = { added: 0, failed: 0, overruns: 0, batches: 0 };
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      const timed = round >= WARMUP;
      // The reconciler runs only during its own phase: it would (rightly) remove ip's proto-90
      // routes, and reading their notifications would compete with ip for the CPU. The process
      // stays up between rounds, as the agent does.
      if (!harness) harness = await Harness.launch(ns, { resyncIntervalMs: 0 });
      else await harness.call({ cmd: 'start', resyncIntervalMs: 0 });
      const h = harness;
      const add = await h.call({ cmd: 'setRoutes', cls: 'pod', routes, idle: true });
      if (timed) t.ternAdd.push(add.elapsedMs);
      expect(await countProto(90)).toBe(N);
      const del = await h.call({ cmd: 'setRoutes', cls: 'pod', routes: [], idle: true });
      if (timed) t.ternDel.push(del.elapsedMs);
      expect(await countProto(90)).toBe(0);
      const s = await h.stats();
      totals = {
        added: totals.added + s.added,
        failed: totals.failed + s.failed,
        overruns: totals.overruns + s.overruns,
        batches: totals.batches + s.batches,
      };
      await h.call({ cmd: 'stop' });

      const ipAdd = (await timeIpBatch(join(dir, 'add'))) - ipStartup;
      if (timed) t.ipAdd.push(ipAdd);
      expect(await countProto(90)).toBe(N);
      const ipDel = (await timeIpBatch(join(dir, 'del'))) - ipStartup;
      if (timed) t.ipDel.push(ipDel);
      expect(await countProto(90)).toBe(0);
    }
    expect(totals.failed).toBe(0);
    expect(totals.added).toBe(N * (WARMUP + ROUNDS));

    const row = (what: string, tern: number[], ip: number[]) => ({
      operation: what,
      'tern ms (median)': median(tern).toFixed(1),
      'tern routes/s': rate(median(tern)),
      'ip -batch ms (median)': median(ip).toFixed(1),
      'ip -batch routes/s': rate(median(ip)),
      'ratio tern/ip': (median(ip) / median(tern)).toFixed(2),
    });
    console.log(
      `\nbench/routes: ${N} /32 routes via ${DEV}, ${ROUNDS} rounds after ${WARMUP} warm-up, median; ip -batch time minus its start-up (${ipStartup.toFixed(1)} ms)`,
    );
    console.table([row(`install ${N}`, t.ternAdd, t.ipAdd), row(`remove ${N}`, t.ternDel, t.ipDel)]);
    console.log(
      `tern: ${totals.batches} batches, ${totals.overruns} notification overruns, ${totals.failed} failures`,
    );
  });
});
