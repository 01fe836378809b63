// Per-peer transport security for BGP: TCP MD5 signatures (RFC 2385) and GTSM (RFC 5082).
// Peers without either use plain node:net; the others go through the native addon (native/).
//   dial()            outgoing connection, options set before the SYN
//   ListenerSecurity  MD5 keys on the shared listening socket, per-peer minimum TTL on accepted ones
import net from 'node:net';
import type { Logger } from 'pino';
import { ValidationError } from '../model/errors.js';
import {
  MAX_MD5_KEY_BYTES,
  fdOf,
  md5Counters,
  savedSynTtl,
  secureConnect,
  setMd5Key,
  setMinTtl,
  setSaveSyn,
  setTtl,
  type Md5Counters,
  type PendingConnection,
} from '../native/tcp-security.js';
import { NativeCallError, loadAddon } from '../native/addon.js';

export interface TransportSecurity {
  /** TCP MD5 key shared with the peer (1..80 bytes UTF-8). */
  readonly password?: string;
  /** GTSM: the peer is at most this many hops away (1 = directly connected); we send TTL 255. */
  readonly ttlSecurity?: number;
}

export const needsNative = (s: TransportSecurity | undefined): boolean =>
  !!s && (s.password !== undefined || s.ttlSecurity !== undefined);

/** Checks the values (ValidationError naming the field) and that the addon is there when needed. */
export function checkSecurity(s: TransportSecurity): void {
  if (s.password !== undefined) {
    const n = Buffer.byteLength(s.password, 'utf8');
    if (n < 1 || n > MAX_MD5_KEY_BYTES)
      throw new ValidationError('password', `must be 1..${MAX_MD5_KEY_BYTES} bytes (TCP MD5 key), got ${n}`);
  }
  if (
    s.ttlSecurity !== undefined &&
    (!Number.isInteger(s.ttlSecurity) || s.ttlSecurity < 1 || s.ttlSecurity > 254)
  )
    throw new ValidationError('ttlSecurity', `must be 1..254 hops, got ${s.ttlSecurity}`);
  if (needsNative(s)) loadAddon();
}

/** GTSM: lowest TTL a peer `hops` away can arrive with when it sends 255. */
export const minTtlFor = (hops: number): number => 256 - hops;

export interface DialTarget {
  readonly host: string;
  readonly port: number;
  readonly localAddress?: string;
}

/** Opens a BGP transport connection; `cancel()` abandons it (the promise then rejects). */
export function dial(
  target: DialTarget,
  security: TransportSecurity | undefined,
  timeoutMs: number,
): PendingConnection {
  if (needsNative(security)) return dialSecured(target, security!, timeoutMs);
  const socket = net.connect({
    host: target.host,
    port: target.port,
    ...(target.localAddress ? { localAddress: target.localAddress } : {}),
  });
  const promise = new Promise<net.Socket>((resolve, reject) => {
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.setTimeout(timeoutMs, () => fail(new Error('timed out')));
    socket.once('close', () => reject(new Error('cancelled')));
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.removeListener('error', fail);
      socket.removeAllListeners('close');
      resolve(socket);
    });
  });
  return { socket: promise, cancel: () => socket.destroy() };
}

function dialSecured(target: DialTarget, s: TransportSecurity, timeoutMs: number): PendingConnection {
  const before = s.password !== undefined ? md5Counters() : undefined;
  const pending = secureConnect({
    ...target,
    timeoutMs,
    ...(s.password !== undefined ? { md5Key: s.password } : {}),
    ...(s.ttlSecurity !== undefined ? { ttl: 255, minTtl: minTtlFor(s.ttlSecurity) } : {}),
  });
  const socket = pending.socket.catch((err: unknown) => {
    if (before && err instanceof NativeCallError && err.code === 'ETIMEDOUT')
      throw new NativeCallError(err.option, err.code, err.errno, explainMd5Timeout(before, md5Counters()));
    throw err;
  });
  return { socket, cancel: pending.cancel };
}

/** The kernel drops segments with a missing or wrong signature without a word; say what the counters saw. */
export function explainMd5Timeout(before: Md5Counters, after: Md5Counters): string {
  const d = {
    failure: after.failure - before.failure,
    notFound: after.notFound - before.notFound,
    unexpected: after.unexpected - before.unexpected,
  };
  const seen = [
    d.failure > 0 ? `${d.failure} with a wrong signature (TCPMD5Failure: the keys differ)` : '',
    d.notFound > 0 ? `${d.notFound} unsigned where a key is set (TCPMD5NotFound: the peer has no key)` : '',
    d.unexpected > 0 ? `${d.unexpected} signed where no key is set (TCPMD5Unexpected)` : '',
  ].filter(Boolean);
  return seen.length
    ? `timed out; TCP MD5 segments dropped in this network namespace meanwhile: ${seen.join(', ')}`
    : 'timed out (TCP MD5 is on for this peer: the kernel drops segments whose signature does not match, silently)';
}

/**
 * TCP MD5 keys and TTLs on the speaker's listening socket. Keys live on the listener (the kernel
 * verifies the SYN there and copies the key to the accepted socket); GTSM is per peer, so the
 * minimum TTL goes on each accepted socket, and the listener answers with TTL 255 once any peer
 * uses GTSM (its SYN-ACK must pass that peer's minimum TTL). The listener then also saves SYNs, so
 * a connection from a GTSM peer that is too far away is refused at accept, before any of its data
 * is read, by the TTL its SYN came with.
 */
export class ListenerSecurity {
  private readonly peers = new Map<string, TransportSecurity>();
  private server: net.Server | undefined;
  private gtsmListener = false;

  constructor(private readonly log: Logger) {}

  /** Applies every known key to a listener that just started listening. */
  attach(server: net.Server): void {
    this.server = server;
    this.gtsmListener = false;
    for (const [address, s] of this.peers) this.apply(address, s);
  }

  detach(): void {
    this.server = undefined;
  }

  /** Records a peer's security (undefined: removed or none) and updates the listener. */
  setPeer(address: string, security: TransportSecurity | undefined): void {
    const old = this.peers.get(address);
    if (needsNative(security)) this.peers.set(address, security!);
    else this.peers.delete(address);
    if (!this.server) return;
    if (old?.password !== undefined && security?.password === undefined) this.removeKey(address);
    if (security) this.apply(address, security);
  }

  /**
   * GTSM on a connection accepted from a configured peer: undefined when it may go on, else why it
   * is refused (its SYN came from too far away, or the options could not be set).
   */
  secureAccepted(socket: net.Socket, security: TransportSecurity | undefined): string | undefined {
    if (security?.ttlSecurity === undefined) return undefined;
    const min = minTtlFor(security.ttlSecurity);
    try {
      const fd = fdOf(socket);
      const ttl = savedSynTtl(fd);
      if (ttl !== undefined && ttl < min)
        return `connection refused by GTSM: its SYN arrived with TTL ${ttl}, below ${min} (ttlSecurity ${security.ttlSecurity})`;
      setTtl(fd, 255);
      setMinTtl(fd, min);
      return undefined;
    } catch (err) {
      this.log.error(
        { err, peer: socket.remoteAddress },
        'cannot apply TTL security to an accepted connection',
      );
      return `TTL security not applied: ${(err as Error).message}`;
    }
  }

  private apply(address: string, s: TransportSecurity): void {
    const fd = fdOf(this.server!);
    if (s.password !== undefined) {
      try {
        setMd5Key(fd, address, s.password);
      } catch (err) {
        // An IPv4-only listener cannot hold an IPv6 peer's key (nor take its connections).
        if (err instanceof NativeCallError && err.code === 'EAFNOSUPPORT') {
          this.log.warn({ peer: address }, 'listener of the other address family: MD5 key not installed');
          return;
        }
        throw err;
      }
    }
    if (s.ttlSecurity !== undefined && !this.gtsmListener) {
      setTtl(fd, 255);
      setSaveSyn(fd, true);
      this.gtsmListener = true;
    }
  }

  private removeKey(address: string): void {
    try {
      setMd5Key(fdOf(this.server!), address, undefined);
    } catch (err) {
      if (!(err instanceof NativeCallError && (err.code === 'ENOENT' || err.code === 'EAFNOSUPPORT')))
        throw err;
    }
  }
}

/** The security part of a peer's options; undefined when it has none. */
export function securityOf(o: TransportSecurity): TransportSecurity | undefined {
  if (!needsNative(o)) return undefined;
  return {
    ...(o.password !== undefined ? { password: o.password } : {}),
    ...(o.ttlSecurity !== undefined ? { ttlSecurity: o.ttlSecurity } : {}),
  };
}
