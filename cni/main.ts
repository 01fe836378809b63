#!/usr/bin/env node
// The `tern` CNI plugin executable. Deliberately thin: a Node process costs tens of milliseconds to
// start, so it imports only node built-ins, answers VERSION itself and hands every other request
// (its CNI_* environment and stdin bytes) to the node agent over a Unix socket, where the work is
// done warm. It prints the agent's answer verbatim and exits with the agent's exit code.
//
// Installed as one CommonJS file (scripts/build-cni-bundle.mjs). On the ADD path it touches
// neither process.stdout/stdin nor node:net: both would load the stream machinery, which costs more
// than everything else this process does (docs/cni.md, "Start-up").
import { readSync, writeSync } from 'node:fs';
import { AgentUnreachableError, askAgent } from './agent-client.js';
import {
  CNI_CODE,
  DEFAULT_AGENT_SOCKET,
  MAX_RESPONSE_BYTES,
  SUPPORTED_VERSIONS,
  errorJson,
  parseWireResponse,
  type WireRequest,
  type WireResponse,
} from './wire.js';

/** How long the executable waits for the agent; the agent has its own, shorter, deadline per request. */
const CLIENT_TIMEOUT_MS = Number(process.env.TERN_CNI_TIMEOUT_MS) || 300_000;

const FORWARDED_COMMANDS = new Set(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']);

function finish(r: WireResponse): void {
  if (r.stdout) writeAll(1, r.stdout);
  if (r.stderr) writeAll(2, r.stderr);
  process.exitCode = r.exitCode;
}

/** Blocks this thread for `ms` (between retries of a non-blocking descriptor). */
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const isEagain = (e: unknown) => (e as NodeJS.ErrnoException).code === 'EAGAIN';

/** Writes all of `text` to `fd`, also when the runtime handed us a non-blocking pipe. */
function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let off = 0; off < bytes.length;) {
    try {
      off += writeSync(fd, bytes, off);
    } catch (e) {
      if (!isEagain(e)) return; // nobody is listening: nothing better to do
      pause(1);
    }
  }
}

/** Reads `fd` to its end, also when it is a non-blocking pipe. */
function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(65536);
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if (isEagain(e)) {
        pause(1);
        continue;
      }
      throw e;
    }
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
    size += n;
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

function fail(cniVersion: string, code: number, msg: string, details?: string): void {
  finish({ exitCode: 1, stdout: errorJson(cniVersion, code, msg, details) });
}

/** The config's cniVersion and agentSocket, without validating anything else (that is the agent's job). */
function peekConfig(stdin: string): { cniVersion?: string; agentSocket?: string } {
  try {
    const v: unknown = JSON.parse(stdin);
    if (typeof v !== 'object' || v === null) return {};
    const o = v as Record<string, unknown>;
    return {
      ...(typeof o.cniVersion === 'string' ? { cniVersion: o.cniVersion } : {}),
      ...(typeof o.agentSocket === 'string' && o.agentSocket ? { agentSocket: o.agentSocket } : {}),
    };
  } catch {
    return {};
  }
}

/** VERSION needs no stdin (skel ignores it), but echoes the config's cniVersion when one is given. */
function readOptionalStdin(timeoutMs: number): Promise<string> {
  if (process.stdin.isTTY) return Promise.resolve('');
  return new Promise((resolve) => {
    let text = '';
    const done = () => {
      clearTimeout(timer);
      process.stdin.pause();
      process.stdin.removeAllListeners();
      resolve(text);
    };
    const timer = setTimeout(done, timeoutMs);
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => (text += d));
    process.stdin.on('end', done);
    process.stdin.on('error', done);
  });
}

async function ask(socketPath: string, request: WireRequest): Promise<WireResponse> {
  const text = await askAgent(socketPath, JSON.stringify(request), {
    timeoutMs: CLIENT_TIMEOUT_MS,
    maxBytes: MAX_RESPONSE_BYTES,
  });
  try {
    return parseWireResponse(text);
  } catch (e) {
    throw new AgentUnreachableError(`unreadable answer from the agent: ${(e as Error).message}`);
  }
}

async function main(): Promise<void> {
  const command = process.env.CNI_COMMAND ?? '';
  if (command === 'VERSION') {
    const cniVersion = peekConfig(await readOptionalStdin(1000)).cniVersion ?? '1.1.0';
    finish({
      exitCode: 0,
      stdout: JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS }) + '\n',
    });
    return;
  }
  if (!FORWARDED_COMMANDS.has(command)) {
    const msg = command
      ? `unknown CNI_COMMAND ${JSON.stringify(command)}`
      : 'required env variables [CNI_COMMAND] missing';
    fail(
      '1.1.0',
      CNI_CODE.invalidEnv,
      msg,
      `CNI_COMMAND must be one of VERSION, ${[...FORWARDED_COMMANDS].join(', ')}`,
    );
    return;
  }
  let stdin: string;
  try {
    stdin = readAll(0);
  } catch (e) {
    fail('1.1.0', CNI_CODE.io, 'failed to read the network configuration from stdin', (e as Error).message);
    return;
  }
  const peek = peekConfig(stdin);
  const cniVersion = peek.cniVersion ?? '1.1.0';
  const socketPath = process.env.TERN_CNI_SOCKET || peek.agentSocket || DEFAULT_AGENT_SOCKET;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('CNI_') && v !== undefined) env[k] = v;
  try {
    finish(await ask(socketPath, { env, stdin }));
  } catch (e) {
    const why = `the tern node agent is not reachable at ${socketPath}: ${(e as Error).message}`;
    if (command === 'STATUS') fail(cniVersion, CNI_CODE.notReady, 'tern node agent is not ready', why);
    else fail(cniVersion, CNI_CODE.tryAgainLater, 'try again later: tern node agent unavailable', why);
  }
}

// Out as soon as the answer is written (synchronously, above): a natural exit first drains the loop
// (closed handles' callbacks, beforeExit), which costs the plugin ~0.5 ms per call.
void main().then(() => process.exit());
