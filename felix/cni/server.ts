// The agent's side of the CNI socket: one request per connection, bounded in size and time.
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import {
  CNI_CODE,
  MAX_REQUEST_BYTES,
  errorJson,
  parseWireRequest,
  type WireRequest,
  type WireResponse,
} from '../../cni/wire.js';

export interface CniServerOptions {
  socketPath: string;
  handle: (request: WireRequest) => Promise<WireResponse>;
  maxRequestBytes?: number;
  /** A client must send its whole request within this time. */
  readTimeoutMs?: number;
  /** Deadline of one request's handling; past it the client gets code 11 (the work may still finish). */
  requestTimeoutMs?: number;
  onError?: (err: Error) => void;
}

export class CniServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly options: CniServerOptions) {}

  get socketPath(): string {
    return this.options.socketPath;
  }

  /** Listens on the socket (replacing a stale one), mode 0600 in a 0700 directory it creates. */
  async start(): Promise<void> {
    const path = this.options.socketPath;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await unlink(path).catch(() => undefined);
    const server = createServer({ allowHalfOpen: true }, (s) => this.serve(s));
    server.on('error', (e) => this.options.onError?.(e));
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    await chmod(path, 0o600);
    this.server = server;
  }

  /** Stops accepting, waits for requests being handled, removes the socket. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([...this.inFlight]);
    for (const s of this.sockets) s.destroy();
    await unlink(this.options.socketPath).catch(() => undefined);
  }

  private serve(socket: Socket): void {
    const max = this.options.maxRequestBytes ?? MAX_REQUEST_BYTES;
    const chunks: Buffer[] = [];
    let size = 0;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.options.readTimeoutMs ?? 10_000, () => socket.destroy());
    socket.on('data', (d: Buffer) => {
      size += d.length;
      if (size > max) {
        socket.end(JSON.stringify(failure(CNI_CODE.io, `request larger than ${max} bytes`)));
        socket.removeAllListeners('data');
        return;
      }
      chunks.push(d);
    });
    socket.on('end', () => {
      if (size > max) return;
      socket.setTimeout(0);
      const work = this.answer(Buffer.concat(chunks).toString('utf8'));
      this.inFlight.add(work);
      void work.then((response) => {
        this.inFlight.delete(work);
        if (!socket.destroyed) socket.end(JSON.stringify(response));
      });
    });
  }

  private async answer(text: string): Promise<WireResponse> {
    let request: WireRequest;
    try {
      request = parseWireRequest(text);
    } catch (e) {
      return failure(CNI_CODE.decode, `malformed request from the tern executable: ${(e as Error).message}`);
    }
    const limit = this.options.requestTimeoutMs ?? 120_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<WireResponse>((resolve) => {
      timer = setTimeout(
        () =>
          resolve(failure(CNI_CODE.tryAgainLater, `try again later: request not done within ${limit} ms`)),
        limit,
      );
    });
    try {
      return await Promise.race([
        this.options.handle(request).catch((e: unknown) => failure(CNI_CODE.internal, String(e))),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function failure(code: number, msg: string, cniVersion = '1.1.0'): WireResponse {
  return { exitCode: 1, stdout: errorJson(cniVersion, code, msg) };
}
