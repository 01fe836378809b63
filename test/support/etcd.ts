// A private etcd for one test file: its own data dir, its own client/peer listeners (free
// loopback ports, or Unix sockets inside the data dir), stopped by PID and removed after.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { ownedDirs, runningPids } from './exit-cleanup.js';
import { stopProcess } from './netns.js';

export const ETCD_BINARY = '/usr/bin/etcd';

export interface EtcdServerOptions {
  /** `tcp`: 127.0.0.1 on free ports (default). `unix`: sockets in the data dir, no ports. */
  transport?: 'tcp' | 'unix';
  /** How long to wait for the server to answer; default 20 s. */
  readyTimeoutMs?: number;
  /** The etcd executable; default Debian's (ETCD_BINARY). kube-cluster.ts passes the 3.6 it builds. */
  binary?: string;
}

export interface EtcdServer {
  /** Client endpoint for EtcdDatastore / etcd3: `http://127.0.0.1:<port>` or `unix://<path>`. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** PID of the running etcd; undefined while stopped. */
  readonly pid: number | undefined;
  /** Stops etcd (SIGTERM, then SIGKILL) and starts it again on the same data dir and listeners. */
  restart(): Promise<void>;
  /** Compacts the history up to `revision` (physically), so older watches must resync. */
  compact(revision: string | number): Promise<void>;
  /** The server's current revision. */
  revision(): Promise<string>;
  /** Stops etcd and removes its data dir. Safe to call twice and after a failed start. */
  stop(): Promise<void>;
}

/** Ports handed out by this process, so two servers in one file never get the same one. */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        srv.close(() =>
          addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port')),
        );
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

interface Listeners {
  client: string;
  peer: string;
  endpoint: string;
}

async function chooseListeners(transport: 'tcp' | 'unix', dir: string): Promise<Listeners> {
  if (transport === 'unix') {
    // etcd 3.4 insists on host:port in unix URLs and binds `<host>:<port>` relative to its cwd.
    return {
      client: 'unix://client.sock:0',
      peer: 'unix://peer.sock:0',
      endpoint: `unix://${dir}/client.sock:0`,
    };
  }
  const [c, p] = [await freePort(), await freePort()];
  return {
    client: `http://127.0.0.1:${c}`,
    peer: `http://127.0.0.1:${p}`,
    endpoint: `http://127.0.0.1:${c}`,
  };
}

export async function startEtcd(options: EtcdServerOptions = {}): Promise<EtcdServer> {
  const transport = options.transport ?? 'tcp';
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  // tmpfs when there is one: etcd fsyncs every write, and the tests measure tern, not the disk.
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'tern-etcd-'));
  ownedDirs.add(dir);
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'etcd.log');
  let listeners: Listeners = await chooseListeners(transport, dir);
  let pid: number | undefined;
  let client: Etcd3 | undefined;

  const logTail = () => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const launch = async () => {
    const out = openSync(logFile, 'a');
    const child = spawn(
      options.binary ?? ETCD_BINARY,
      [
        '--name=tern-test',
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${listeners.client}`,
        `--advertise-client-urls=${listeners.client}`,
        `--listen-peer-urls=${listeners.peer}`,
        `--initial-advertise-peer-urls=${listeners.peer}`,
        `--initial-cluster=tern-test=${listeners.peer}`,
        '--log-level=warn',
      ],
      { cwd: dir, stdio: ['ignore', out, out], detached: false },
    );
    closeSync(out);
    pid = child.pid;
    if (pid) runningPids.add(pid);
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `etcd exited (code ${code}, signal ${signal})`;
      if (child.pid) runningPids.delete(child.pid);
      if (pid === child.pid) pid = undefined;
    });
    client ??= new Etcd3({
      hosts: listeners.endpoint,
      dialTimeout: 1000,
      // etcd3's default breaker refuses calls for 5 s after 3 failures: every probe during
      // startup would fail. Probing needs plain attempts.
      faultHandling: { host: () => noop, global: noop },
      // grpc-js backs off 1 s, 1.6 s, 2.6 s… between dials; a restart should not cost seconds.
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 500 },
    });
    const probe = client;
    const deadline = Date.now() + readyTimeoutMs;

    for (;;) {
      if (exited) throw new Error(`${exited}\n--- etcd log ---\n${logTail()}`);
      try {
        await probe
          .get('/tern-test-probe')
          .options({ deadline: Date.now() + 1000 })
          .exec();
        return;
      } catch (e) {
        if (Date.now() > deadline) {
          throw new Error(
            `etcd did not answer within ${readyTimeoutMs} ms: ${String(e)}\n--- etcd log ---\n${logTail()}`,
          );
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const stopServer = async () => {
    const p = pid;
    await stopProcess(p);
    if (p) runningPids.delete(p);
    pid = undefined;
  };

  let removed = false;
  const stop = async () => {
    client?.close();
    client = undefined;
    await stopServer();
    if (!removed) {
      removed = true;
      rmSync(dir, { recursive: true, force: true });
      ownedDirs.delete(dir);
    }
  };

  try {
    // A free port can be taken between our probe and etcd's bind (another file's server);
    // then start over with fresh ports.
    for (let attempt = 1; ; attempt++) {
      try {
        await launch();
        break;
      } catch (e) {
        await stopServer();
        client?.close();
        client = undefined;
        if (transport === 'unix' || attempt >= 3 || !/address already in use/.test(String(e))) throw e;
        rmSync(dataDir, { recursive: true, force: true });
        listeners = await chooseListeners(transport, dir);
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const raw = () => {
    if (!client) throw new Error('etcd test server is stopped');
    return client;
  };

  return {
    get endpoint() {
      return listeners.endpoint;
    },
    dataDir,
    get pid() {
      return pid;
    },
    restart: async () => {
      await stopServer();
      await launch();
    },
    compact: async (revision) => {
      await raw().kv.compact({ revision: String(revision), physical: true });
    },
    revision: async () => (await raw().get('/tern-test-probe').exec()).header.revision,
    stop,
  };
}
