// The executable's side of the agent socket: connect, write one request, half-close, read the
// answer to EOF. Imported by the executable, so node built-ins only.
//
// Why not just node:net: on the plugin's start-up path every module counts. `require('node:net')`
// pulls in the stream machinery (~6–10 ms of a ~50 ms process on this class of machine, see
// docs/cni.md "Start-up"). Node's own pipe handle (the `pipe_wrap`/`stream_wrap` bindings that
// node:net is built on) does the same libuv calls without loading any of it, and the request is
// one write and one read. The bindings are internal, so they are feature-checked and node:net
// remains the fallback; the plugin ships with the node binary it was tested with (install-cni.sh
// copies the image's), so the shape does not change under it.
import { getSystemErrorName } from 'node:util';

export class AgentUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentUnreachableError';
  }
}

export interface AskOptions {
  /** No answer within this time: fail. */
  timeoutMs: number;
  /** Answers larger than this are refused. */
  maxBytes: number;
}

/** Sends `request` to the agent at `socketPath` and resolves with its whole answer. */
export function askAgent(socketPath: string, request: string, options: AskOptions): Promise<string> {
  const bindings = pipeBindings();
  return bindings
    ? askOverPipeHandle(bindings, socketPath, request, options)
    : askOverNet(socketPath, request, options);
}

// ---- the raw pipe handle ------------------------------------------------------------------------

interface Req {
  oncomplete: (status: number) => void;
}
interface PipeHandle {
  connect(req: Req, path: string): number;
  writeUtf8String(req: Req, text: string): number;
  shutdown(req: Req): number;
  readStart(): number;
  onread: (buffer: ArrayBuffer | undefined) => void;
  close(cb?: () => void): void;
}
interface PipeBindings {
  newPipe: () => PipeHandle;
  newConnectReq: () => Req;
  newWriteReq: () => Req;
  newShutdownReq: () => Req;
  /** [kReadBytesOrError] = bytes read (< 0: errno, UV_EOF at end); [kArrayBufferOffset] = offset. */
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
}

type Ctor<T> = new (arg?: number) => T;

/** Node's pipe and stream bindings, when this node has them in the shape this code was written for. */
function pipeBindings(): PipeBindings | undefined {
  const binding = (process as unknown as { binding?: (name: string) => unknown }).binding;
  if (typeof binding !== 'function' || process.env.TERN_CNI_NODE_NET) return undefined;
  try {
    // process.binding is deprecated (documentation-only; a warning under --pending-deprecation):
    // keep stderr quiet either way.
    const quiet = process.noDeprecation;
    process.noDeprecation = true;
    const pipe = binding('pipe_wrap') as Record<string, unknown>;
    const stream = binding('stream_wrap') as Record<string, unknown>;
    process.noDeprecation = quiet;
    const Pipe = pipe.Pipe as Ctor<PipeHandle> | undefined;
    const PipeConnectWrap = pipe.PipeConnectWrap as Ctor<Req> | undefined;
    const socketType = (pipe.constants as Record<string, unknown> | undefined)?.SOCKET;
    const WriteWrap = stream.WriteWrap as Ctor<Req> | undefined;
    const ShutdownWrap = stream.ShutdownWrap as Ctor<Req> | undefined;
    const state = stream.streamBaseState;
    const { kReadBytesOrError, kArrayBufferOffset } = stream;
    if (
      typeof Pipe !== 'function' ||
      typeof PipeConnectWrap !== 'function' ||
      typeof WriteWrap !== 'function' ||
      typeof ShutdownWrap !== 'function' ||
      typeof socketType !== 'number' ||
      !(state instanceof Int32Array) ||
      typeof kReadBytesOrError !== 'number' ||
      typeof kArrayBufferOffset !== 'number'
    ) {
      return undefined;
    }
    const proto = Pipe.prototype as Partial<PipeHandle>;
    for (const m of ['connect', 'writeUtf8String', 'shutdown', 'readStart', 'close'] as const) {
      if (typeof proto[m] !== 'function') return undefined;
    }
    return {
      newPipe: () => new Pipe(socketType),
      newConnectReq: () => new PipeConnectWrap(),
      newWriteReq: () => new WriteWrap(),
      newShutdownReq: () => new ShutdownWrap(),
      state,
      kReadBytesOrError,
      kArrayBufferOffset,
    };
  } catch {
    return undefined;
  }
}

/** libuv's UV_EOF. */
const UV_EOF = -4095;

function askOverPipeHandle(
  b: PipeBindings,
  socketPath: string,
  request: string,
  options: AskOptions,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const handle = b.newPipe();
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      handle.close();
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const failed = (what: string, status: number) =>
      finish(new AgentUnreachableError(`${what}: ${errnoName(status)}`));
    handle.onread = (buffer) => {
      const n = b.state[b.kReadBytesOrError]!;
      if (n > 0 && buffer) {
        size += n;
        if (size > options.maxBytes) return finish(new AgentUnreachableError('answer too large'));
        chunks.push(Buffer.from(buffer, b.state[b.kArrayBufferOffset]!, n));
      } else if (n === UV_EOF) {
        finish(
          size ? undefined : new AgentUnreachableError('the agent closed the connection without answering'),
        );
      } else if (n < 0) {
        failed('read', n);
      }
    };

    const connectReq = b.newConnectReq();
    connectReq.oncomplete = (status) => {
      if (status < 0) return failed('connect', status);
      // libuv runs the shutdown after the queued write has drained.
      const writeReq = b.newWriteReq();
      writeReq.oncomplete = (s) => {
        if (s < 0) failed('write', s);
      };
      const shutdownReq = b.newShutdownReq();
      shutdownReq.oncomplete = () => undefined;
      const err =
        handle.writeUtf8String(writeReq, request) || handle.shutdown(shutdownReq) || handle.readStart();
      if (err < 0) return failed('write', err);
      // Armed only now (a Unix socket connect ends at once, either way): the first timer of a
      // process costs a fraction of a millisecond, which this way runs while the agent works.
      timer = setTimeout(
        () => finish(new AgentUnreachableError(`no answer within ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
    };
    const err = handle.connect(connectReq, socketPath);
    if (err < 0) failed('connect', err);
  });
}

function errnoName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `errno ${status}`;
  }
}

// ---- the portable fallback ---------------------------------------------------------------------

async function askOverNet(socketPath: string, request: string, options: AskOptions): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const sock = connect(socketPath);
    sock.setTimeout(options.timeoutMs, () =>
      sock.destroy(new AgentUnreachableError(`no answer within ${options.timeoutMs} ms`)),
    );
    sock.on('connect', () => sock.end(request));
    sock.on('data', (d: Buffer) => {
      size += d.length;
      if (size > options.maxBytes) sock.destroy(new AgentUnreachableError('answer too large'));
      else chunks.push(d);
    });
    sock.on('error', (e) =>
      reject(e instanceof AgentUnreachableError ? e : new AgentUnreachableError(e.message)),
    );
    sock.on('close', (hadError) => {
      if (hadError) return;
      if (!size)
        return reject(new AgentUnreachableError('the agent closed the connection without answering'));
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    });
  });
}
