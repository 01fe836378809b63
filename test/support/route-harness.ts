#!/usr/bin/env node
// Test and benchmark harness: runs a RouteReconciler in this process's network namespace (start it
// with `ip netns exec <ns> node dist/test/support/route-harness.js`, since Node cannot switch namespaces)
// and drives it with JSON-line commands on stdin. Each command gets one JSON-line reply on stdout:
// {"id", "ok": true, "result", "elapsedMs"} or {"id", "ok": false, "error"}; `elapsedMs` is measured
// here, from the parsed command to its completion (with "idle": true, until the kernel has answered
// every change it caused). Batch reports are emitted as {"event": "batch", ...} lines.
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { RouteReconciler } from '../../kernel/routes/reconciler.js';
import type { RouteClass } from '../../kernel/routes/types.js';

const cls = z.enum(['pod', 'block', 'bgp']);
const routeInput = z.record(z.string(), z.unknown());
const command = z.discriminatedUnion('cmd', [
  z.object({
    cmd: z.literal('start'),
    resyncIntervalMs: z.number().int().nonnegative().optional(),
    table: z.number().int().positive().optional(),
  }),
  z.object({ cmd: z.literal('setRoutes'), cls, routes: z.array(routeInput), idle: z.boolean().optional() }),
  z.object({ cmd: z.literal('upsert'), cls, route: routeInput, idle: z.boolean().optional() }),
  z.object({ cmd: z.literal('remove'), cls, dst: z.string(), idle: z.boolean().optional() }),
  z.object({ cmd: z.literal('markSynced'), cls, idle: z.boolean().optional() }),
  z.object({ cmd: z.literal('idle') }),
  z.object({ cmd: z.literal('resync') }),
  z.object({ cmd: z.literal('stats') }),
  z.object({ cmd: z.literal('stop') }),
]);
const envelope = z.object({ id: z.number() }).passthrough();

type Command = z.infer<typeof command>;

const write = (obj: unknown): void => {
  process.stdout.write(JSON.stringify(obj) + '\n');
};

let reconciler: RouteReconciler | undefined;

function need(): RouteReconciler {
  if (!reconciler) throw new Error('not started');
  return reconciler;
}

async function run(c: Command): Promise<unknown> {
  switch (c.cmd) {
    case 'start':
      if (reconciler) throw new Error('already started');
      reconciler = new RouteReconciler({
        resyncIntervalMs: c.resyncIntervalMs,
        table: c.table,
        onBatch: (b) => write({ event: 'batch', ...b }),
        logger: {
          debug: () => {},
          info: (o, m) => write({ event: 'log', level: 'info', msg: m, ...o }),
          warn: (o, m) => write({ event: 'log', level: 'warn', msg: m, ...o }),
          error: (o, m) =>
            write({ event: 'log', level: 'error', msg: m, ...o, err: String((o as { err?: unknown }).err) }),
        },
      });
      await reconciler.start();
      return need().stats();
    case 'setRoutes':
      need().setRoutes(c.cls, c.routes as never[]);
      break;
    case 'upsert':
      need().upsert(c.cls as RouteClass, c.route as never);
      break;
    case 'remove':
      need().remove(c.cls, c.dst);
      break;
    case 'markSynced':
      need().markSynced(c.cls);
      break;
    case 'idle':
      await need().whenIdle();
      return need().stats();
    case 'resync':
      await need().resync();
      return need().stats();
    case 'stats':
      return need().stats();
    case 'stop':
      await reconciler?.stop();
      reconciler = undefined;
      return undefined;
  }
  if ('idle' in c && c.idle) await need().whenIdle();
  return need().stats();
}

const lines = createInterface({ input: process.stdin });
let queue: Promise<void> = Promise.resolve();
lines.on('line', (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    let id = -1;
    try {
      const env = envelope.parse(JSON.parse(line));
      id = env.id;
      const c = command.parse(env);
      const t0 = performance.now();
      const result = await run(c);
      write({ id, ok: true, result, elapsedMs: performance.now() - t0 });
    } catch (err) {
      write({ id, ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  });
});
lines.on('close', () => {
  void queue.then(async () => {
    await reconciler?.stop();
    process.exit(0);
  });
});
write({ event: 'ready', pid: process.pid });
