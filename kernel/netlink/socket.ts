// rtnetlink sockets on top of the `netlink` package's native socket: a request socket that
// pipelines many route changes into few sendmsg calls, and a monitor socket for notifications.
import { RawNetlinkSocket } from 'netlink';
import type { DumpType } from './codec.js';
import { OverrunGuard } from './overrun-guard.js';
import {
  NLM_F,
  NLMSG,
  MAX_ROUTE_REQUEST_LEN,
  doneCode,
  dumpRequest,
  errorCode,
  splitMessages,
  writeRouteRequest,
  type KernelRoute,
  type RawMessage,
  type RouteOp,
} from './codec.js';

const NETLINK_ROUTE = 0;
/** Socket buffers: the kernel caps them at net.core.[rw]mem_max (and doubles the value). */
const SOCKET_BUFFER = 8 * 1024 * 1024;
/** Route requests per sendmsg: one skb the kernel processes message by message. */
const CHUNK = 512;
/** sendmsg calls whose outcome is not known yet; bounds the error replies queued at once. */
const WINDOW = 4;

export class NetlinkOverrunError extends Error {
  constructor(what: string) {
    super(`${what}: netlink receive buffer overrun (ENOBUFS), replies or notifications were lost`);
  }
}

interface Waiter {
  firstSeq: number;
  lastSeq: number;
  onMessage(msg: RawMessage): void;
  fail(err: Error): void;
}

/**
 * The native socket calls us from C++; an exception escaping a callback there aborts the process
 * ("terminate called ... Napi::Error"). Defer it to a normal uncaught exception instead.
 */
function guarded<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      fn(...args);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  };
}

function openSocket(): RawNetlinkSocket {
  const sock = new RawNetlinkSocket(NETLINK_ROUTE, {
    recvBufferSize: SOCKET_BUFFER,
    sendBufferSize: SOCKET_BUFFER,
  });
  return sock;
}

export interface RouteRequest {
  op: RouteOp;
  route: KernelRoute;
}

/** Request/response rtnetlink socket: dumps and pipelined route changes. */
export class RtnlRequestSocket {
  private readonly sock = openSocket();
  private seq = 1;
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(private readonly timeoutMs = 30_000) {
    this.sock.on(
      'message',
      guarded((datagram: Buffer) => this.receive(datagram)),
    );
    this.sock.on(
      'error',
      guarded((err: Error & { code?: string }) => {
        const e = err.code === 'ENOBUFS' ? new NetlinkOverrunError('rtnetlink requests') : err;
        for (const w of this.waiters.splice(0)) w.fail(e);
      }),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.fail(new Error('rtnetlink socket closed'));
    this.sock.close();
  }

  private nextSeqs(n: number): number {
    const first = this.seq;
    this.seq += n;
    if (this.seq > 0x7fffffff) this.seq = 1;
    return first;
  }

  private receive(datagram: Buffer): void {
    for (const msg of splitMessages(datagram)) {
      const w = this.waiters.find((x) => msg.seq >= x.firstSeq && msg.seq <= x.lastSeq);
      if (w) w.onMessage(msg);
    }
  }

  private wait(firstSeq: number, lastSeq: number, handle: (msg: RawMessage, done: () => void) => void) {
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: Error) => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        if (err) reject(err);
        else resolve();
      };
      const waiter: Waiter = {
        firstSeq,
        lastSeq,
        onMessage: (msg) => handle(msg, () => finish()),
        fail: (err) => finish(err),
      };
      const timer = setTimeout(
        () => finish(new Error(`rtnetlink: no reply within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.waiters.push(waiter);
    });
  }

  private failRange(seq: number, err: Error): void {
    this.waiters.find((w) => seq >= w.firstSeq && seq <= w.lastSeq)?.fail(err);
  }

  private send(buf: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.sock.send(
        buf,
        {},
        guarded((err?: Error) => (err ? reject(err) : resolve())),
      ),
    );
  }

  /**
   * Dumps routes or links of one family and decodes each message with `decode`. Retries when the
   * kernel flags the dump as interrupted (the table changed while it was being read).
   */
  async dump<T>(type: DumpType, family: number, decode: (payload: Buffer) => T | undefined): Promise<T[]> {
    for (let attempt = 0; ; attempt++) {
      const items: T[] = [];
      let interrupted = false;
      let failure = 0;
      const seq = this.nextSeqs(1);
      const done = this.wait(seq, seq, (msg, finish) => {
        if (msg.flags & NLM_F.DUMP_INTR) interrupted = true;
        if (msg.type === NLMSG.DONE) {
          failure = doneCode(msg.payload);
          finish();
        } else if (msg.type === NLMSG.ERROR) {
          failure = errorCode(msg.payload);
          finish();
        } else {
          const item = decode(msg.payload);
          if (item !== undefined) items.push(item);
        }
      });
      done.catch(() => undefined); // awaited below, after the send
      await this.send(dumpRequest(type, family, seq)).catch((err: Error) => {
        this.failRange(seq, err);
        throw err;
      });
      await done;
      if (failure !== 0) throw new Error(`rtnetlink dump failed: errno ${failure}`);
      if (!interrupted || attempt >= 4) return items;
    }
  }

  /**
   * Sends route requests, CHUNK per sendmsg and WINDOW sendmsg calls in flight, asking for an
   * acknowledgement only on the last request of each chunk (the kernel processes a chunk in order
   * and reports each failure on its own). Returns the errno of every request, 0 for success.
   */
  async apply(requests: readonly RouteRequest[]): Promise<Int32Array> {
    const results = new Int32Array(requests.length);
    const inflight: Promise<void>[] = [];
    for (let start = 0; start < requests.length; start += CHUNK) {
      const end = Math.min(start + CHUNK, requests.length);
      const buf = Buffer.allocUnsafe((end - start) * MAX_ROUTE_REQUEST_LEN);
      const firstSeq = this.nextSeqs(end - start);
      let off = 0;
      for (let i = start; i < end; i++) {
        const r = requests[i]!;
        off = writeRouteRequest(buf, off, r.op, r.route, firstSeq + (i - start), i === end - 1);
      }
      const lastSeq = firstSeq + (end - start - 1);
      const acked = this.wait(firstSeq, lastSeq, (msg, finish) => {
        if (msg.type !== NLMSG.ERROR) return;
        results[start + (msg.seq - firstSeq)] = errorCode(msg.payload);
        if (msg.seq === lastSeq) finish();
      });
      const sent = this.send(buf.subarray(0, off)).catch((err: Error) => {
        this.failRange(firstSeq, err);
        throw err;
      });
      const outcome = Promise.all([sent, acked]).then(() => undefined);
      outcome.catch(() => undefined); // awaited below; keeps a later chunk's failure from going unhandled
      inflight.push(outcome);
      if (inflight.length >= WINDOW) await inflight.shift();
    }
    await Promise.all(inflight);
    return results;
  }
}

export interface MonitorHandlers {
  message(msg: RawMessage): void;
  /** Notifications were lost: the caller must re-read the state it follows. */
  overrun(): void;
  /** The socket could not be guarded against netlink@0.3.0's abort on an overrun (see OverrunGuard). */
  unprotected?(reason: string): void;
}

/** A socket subscribed to rtnetlink multicast groups. */
export class RtnlMonitor {
  private readonly sock = openSocket();
  private readonly guard: OverrunGuard;

  constructor(groups: readonly number[], handlers: MonitorHandlers) {
    this.sock.on(
      'message',
      guarded((datagram: Buffer) => {
        for (const msg of splitMessages(datagram)) handlers.message(msg);
      }),
    );
    // netlink@0.3.0's native poll handler aborts the process when the kernel reports an overrun as
    // a socket error, before this listener could run; the guard turns that report off and watches
    // the drop counter instead. Without the addon, this listener is all there is.
    this.guard = new OverrunGuard(this.sock.address().port, {
      onDrops: () => handlers.overrun(),
      onUnprotected: (reason) => handlers.unprotected?.(reason),
    });
    this.sock.on(
      'error',
      guarded((err: Error & { code?: string }) => {
        if (err.code === 'ENOBUFS') handlers.overrun();
      }),
    );
    for (const g of groups) this.sock.addMembership(g);
  }

  /** Leaves or re-joins groups (notifications already queued stay readable). */
  setMembership(groups: readonly number[], member: boolean): void {
    for (const g of groups) {
      if (member) this.sock.addMembership(g);
      else this.sock.dropMembership(g);
    }
  }

  close(): void {
    this.guard.close();
    this.sock.close();
  }
}
