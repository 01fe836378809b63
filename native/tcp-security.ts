// TCP MD5 signatures (RFC 2385) and TTL / minimum TTL (GTSM, RFC 5082) on sockets Node's `net`
// creates or wraps (tcp_security.cc), connecting with them set before the SYN, and the kernel's MD5
// drop counters for diagnosis.
import { closeSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { NativeCallError, call, checkFd, loadAddon, typed } from './addon.js';

/** The Linux limit of a TCP MD5 key (TCP_MD5SIG_MAXKEYLEN). */
export const MAX_MD5_KEY_BYTES = 80;

// ---------------------------------------------------------------- argument checks

function checkAddress(address: string, field: string): void {
  if (net.isIP(address) === 0)
    throw new TypeError(`${field} ${JSON.stringify(address)} is not an IP address`);
}

function checkTtl(ttl: number, field: string, min: number): void {
  if (!Number.isInteger(ttl) || ttl < min || ttl > 255)
    throw new RangeError(`${field} ${ttl} is out of range ${min}..255`);
}

/** A key as bytes (UTF-8 for strings); the kernel takes 1..80 bytes. */
export function md5KeyBytes(key: string | Buffer): Buffer {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (bytes.length === 0) throw new RangeError('TCP MD5 key is empty');
  if (bytes.length > MAX_MD5_KEY_BYTES)
    throw new RangeError(
      `TCP MD5 key is ${bytes.length} bytes, the kernel takes at most ${MAX_MD5_KEY_BYTES}`,
    );
  return bytes;
}

// ---------------------------------------------------------------- socket options

/** Installs (key given) or removes (key undefined) the TCP MD5 key for `peer` on a socket, typically a listener. */
export function setMd5Key(fd: number, peer: string, key: string | Buffer | undefined): void {
  checkFd(fd);
  checkAddress(peer, 'peer');
  const bytes = key === undefined ? undefined : md5KeyBytes(key);
  const a = loadAddon();
  call(() => a.setMd5Key(fd, peer, bytes));
}

/** TTL / hop limit of the packets the socket sends (IPv4 and, on IPv6 sockets, IPv6). */
export function setTtl(fd: number, ttl: number): void {
  checkFd(fd);
  checkTtl(ttl, 'ttl', 1);
  const a = loadAddon();
  call(() => a.setTtl(fd, ttl));
}

/** Segments arriving with a lower TTL / hop limit are dropped by the kernel; 0 turns the check off. */
export function setMinTtl(fd: number, minTtl: number): void {
  checkFd(fd);
  checkTtl(minTtl, 'minTtl', 0);
  const a = loadAddon();
  call(() => a.setMinTtl(fd, minTtl));
}

/** TCP_SAVE_SYN on a listener: its accepted sockets keep the headers of their SYN (see savedSynTtl). */
export function setSaveSyn(fd: number, on: boolean): void {
  checkFd(fd);
  const a = loadAddon();
  call(() => a.setSaveSyn(fd, on));
}

/** The TTL / hop limit an accepted socket's SYN arrived with; undefined when none was saved. Readable once. */
export function savedSynTtl(fd: number): number | undefined {
  checkFd(fd);
  const a = loadAddon();
  const ttl = call(() => a.savedSynTtl(fd));
  return ttl < 0 ? undefined : ttl;
}

/** The file descriptor under a net.Socket or listening net.Server (Unix only). */
export function fdOf(owner: net.Socket | net.Server): number {
  const fd = (owner as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new NativeCallError(
      'fd',
      'EBADF',
      9,
      'the socket has no file descriptor (closed, or not a TCP socket)',
    );
  return fd;
}

// ---------------------------------------------------------------- connecting

export interface SecureConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly localAddress?: string;
  /** TCP MD5 key; the SYN is already signed. */
  readonly md5Key?: string | Buffer;
  /** TTL of every packet sent, the SYN included (255 for GTSM). */
  readonly ttl?: number;
  /** Lowest TTL accepted from the peer (GTSM: 256 - hops). */
  readonly minTtl?: number;
  /** Milliseconds before the attempt is abandoned (NativeCallError option 'connect', code ETIMEDOUT). */
  readonly timeoutMs: number;
}

/** A connection in progress: `socket` settles once; `cancel()` abandons it (the promise then rejects). */
export interface PendingConnection {
  readonly socket: Promise<net.Socket>;
  cancel(): void;
}

/**
 * Connects with the options set before connect(2), without blocking and without a thread: the
 * addon watches the socket on Node's event loop. The connected fd is wrapped in a net.Socket.
 */
export function secureConnect(o: SecureConnectOptions): PendingConnection {
  checkAddress(o.host, 'host');
  if (o.localAddress !== undefined) checkAddress(o.localAddress, 'localAddress');
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)
    throw new RangeError(`port ${o.port} is out of range`);
  if (o.ttl !== undefined) checkTtl(o.ttl, 'ttl', 1);
  if (o.minTtl !== undefined) checkTtl(o.minTtl, 'minTtl', 0);
  if (!(o.timeoutMs > 0)) throw new RangeError(`timeoutMs ${o.timeoutMs} must be positive`);
  const key = o.md5Key === undefined ? undefined : md5KeyBytes(o.md5Key);
  const a = loadAddon();
  let settle: { resolve(s: net.Socket): void; reject(e: unknown): void } | undefined;
  const socket = new Promise<net.Socket>((resolve, reject) => (settle = { resolve, reject }));
  const finish = (f: (s: NonNullable<typeof settle>) => void) => {
    clearTimeout(timer);
    const s = settle;
    settle = undefined;
    if (s) f(s);
  };
  const id = call(() =>
    a.connect(o.host, o.port, o.localAddress, key, o.ttl ?? 0, o.minTtl ?? 0, (err, fd) => {
      if (err || fd === undefined) return finish((s) => s.reject(typed(err)));
      if (!settle) return closeSync(fd);
      try {
        const sock = new net.Socket({ fd, readable: true, writable: true });
        finish((s) => s.resolve(sock));
      } catch (e) {
        closeSync(fd);
        finish((s) => s.reject(e));
      }
    }),
  );
  const abandon = (option: string, code: string, errno: number, message: string) => {
    a.cancelConnect(id);
    finish((s) => s.reject(new NativeCallError(option, code, errno, message)));
  };
  const timer = setTimeout(() => abandon('connect', 'ETIMEDOUT', 110, 'connect: timed out'), o.timeoutMs);
  return { socket, cancel: () => abandon('connect', 'ECANCELED', 125, 'connect: cancelled') };
}

// ---------------------------------------------------------------- diagnosis

/** The namespace-wide TCP MD5 drop counters (TcpExt in /proc/net/netstat). */
export interface Md5Counters {
  /** Signed segments expected, none came (the peer has no key). */
  readonly notFound: number;
  /** Signed segments that were not expected (we have no key for the peer). */
  readonly unexpected: number;
  /** Signatures that did not verify (keys differ). */
  readonly failure: number;
}

export function md5Counters(file = '/proc/net/netstat'): Md5Counters {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { notFound: 0, unexpected: 0, failure: 0 };
  }
  return parseMd5Counters(text);
}

export function parseMd5Counters(text: string): Md5Counters {
  const lines = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const get = (n: string) => {
    const i = names.indexOf(n);
    return i > 0 ? Number(values[i]) || 0 : 0;
  };
  return {
    notFound: get('TCPMD5NotFound'),
    unexpected: get('TCPMD5Unexpected'),
    failure: get('TCPMD5Failure'),
  };
}
