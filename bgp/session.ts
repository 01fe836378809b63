// One BGP session: the RFC 4271 finite-state machine over node:net, with ConnectRetry, Hold and
// Keepalive timers, active and passive opening, collision detection and reconnect backoff.
// It knows nothing of routes: decoded UPDATEs go to the handler.
import type net from 'node:net';
import type { Logger } from 'pino';
import { Afi, CeaseSubcode, ErrorCode, MessageType, OpenSubcode, Safi } from './wire/constants.js';
import { BgpError } from './wire/errors.js';
import {
  type AfiSafi,
  type BgpMessage,
  type GracefulRestartCapability,
  type OpenMessage,
  type RouteRefreshMessage,
  type UpdateMessage,
  KEEPALIVE,
  MessageFramer,
  decodeMessage,
  encodeNotification,
  encodeOpen,
} from './wire/messages.js';
import { parseIpv4 } from './wire/prefix.js';
import { dial, type TransportSecurity } from './tcp-security.js';
import type { PendingConnection } from '../native/tcp-security.js';

export type SessionState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

export interface SessionConfig {
  readonly localAsn: number;
  readonly routerId: string;
  readonly peerAddress: string;
  readonly peerAsn: number;
  readonly localAddress?: string;
  /** The peer's TCP port for outgoing connections. */
  readonly port: number;
  readonly passive: boolean;
  /** Seconds; 0 disables hold and keepalive timers. */
  readonly holdTime: number;
  /** Seconds; default a third of the negotiated hold time. */
  readonly keepaliveTime?: number;
  readonly connectRetryTime: number;
  readonly families: readonly AfiSafi[];
  readonly gracefulRestart?: GracefulRestartCapability;
  /** TCP MD5 / GTSM for this peer's connections (the native addon; plain node:net without). */
  readonly security?: TransportSecurity;
  /** Advertise enhanced route refresh (RFC 7313); default true. */
  readonly enhancedRouteRefresh?: boolean;
}

/** What both OPENs agreed on. */
export interface Negotiated {
  readonly peerRouterId: string;
  readonly peerAsn: number;
  readonly holdTime: number;
  readonly keepaliveTime: number;
  readonly fourOctetAs: boolean;
  readonly families: readonly AfiSafi[];
  readonly routeRefresh: boolean;
  /** Both sides advertised RFC 7313: refreshes are framed by BoRR / EoRR. */
  readonly enhancedRouteRefresh: boolean;
  readonly gracefulRestart?: GracefulRestartCapability;
  readonly localAddress: string;
  readonly remoteAddress: string;
}

export interface SessionHandler {
  established(session: Session, negotiated: Negotiated): void;
  update(session: Session, update: UpdateMessage): void;
  routeRefresh(session: Session, message: RouteRefreshMessage): void;
  /** The Established session ended; `cause` tells whether a NOTIFICATION was exchanged (graceful restart). */
  down(session: Session, reason: string, cause: DownCause): void;
  stateChanged?(session: Session, state: SessionState): void;
}

/** How an Established session ended: the transport failed, or a NOTIFICATION was sent or received. */
export type DownCause =
  | { readonly kind: 'transport' }
  | {
      readonly kind: 'notification';
      readonly sent: boolean;
      readonly code: number;
      readonly subcode: number;
    };

const OPEN_HOLD_TIME_MS = 240_000;
const MAX_BACKOFF_MS = 60_000;
/** Above this many queued bytes the socket counts as busy (the RIB-Out waits for drain). */
const HIGH_WATER = 1 << 20;

/** One TCP connection and its OPEN exchange; a session may briefly hold two (collision). */
class Connection {
  readonly framer = new MessageFramer();
  state: 'OpenSent' | 'OpenConfirm' | 'Established' = 'OpenSent';
  peerOpen: OpenMessage | undefined;
  negotiated: Negotiated | undefined;
  lastReceived = Date.now();
  holdTimer: NodeJS.Timeout | undefined;
  keepaliveTimer: NodeJS.Timeout | undefined;
  corked = false;
  closed = false;

  constructor(
    readonly socket: net.Socket,
    readonly outbound: boolean,
  ) {}

  send(buf: Buffer): boolean {
    if (this.closed) return false;
    if (!this.corked) {
      // Batch every write of this tick into one writev.
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    return this.socket.write(buf);
  }

  clearTimers(): void {
    clearTimeout(this.holdTimer);
    clearInterval(this.keepaliveTimer);
    this.holdTimer = this.keepaliveTimer = undefined;
  }
}

const routerIdNumber = (id: string) => parseIpv4(id);
const normalizeAddress = (a: string | undefined) => (a?.startsWith('::ffff:') ? a.slice(7) : (a ?? ''));

export class Session {
  private conns: Connection[] = [];
  private connecting: PendingConnection | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private running = false;
  private failures = 0;
  private stateValue: SessionState = 'Idle';
  private established: Connection | undefined;
  /** Wall-clock ms of the last state change. */
  since = Date.now();
  lastError: string | undefined;

  constructor(
    public config: SessionConfig,
    private readonly handler: SessionHandler,
    private readonly log: Logger,
  ) {}

  get state(): SessionState {
    return this.stateValue;
  }

  get negotiated(): Negotiated | undefined {
    return this.established?.negotiated;
  }

  /** True when the socket has room; otherwise `onDrain` fires later. */
  get writable(): boolean {
    const c = this.established;
    return !!c && !c.closed && c.socket.writableLength < HIGH_WATER;
  }

  onDrain(cb: () => void): void {
    this.established?.socket.once('drain', cb);
  }

  /** Sends an already-encoded message on the Established connection. */
  send(buf: Buffer): void {
    this.established?.send(buf);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    this.begin();
  }

  /** Stops for good (until start()): NOTIFICATION Cease with `subcode`, no reconnect. */
  stop(subcode: number = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, reason = 'stopped'): void {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.connecting?.cancel();
    this.connecting = undefined;
    for (const c of [...this.conns])
      this.closeConnection(c, reason, new BgpError(ErrorCode.CEASE, subcode, reason));
    this.setState('Idle');
  }

  /** An incoming TCP connection from this peer's address. */
  accept(socket: net.Socket): void {
    if (!this.running || this.established) {
      const why = !this.running
        ? CeaseSubcode.ADMINISTRATIVE_SHUTDOWN
        : CeaseSubcode.CONNECTION_COLLISION_RESOLUTION;
      socket.on('error', () => {});
      socket.end(encodeNotification(ErrorCode.CEASE, why));
      setTimeout(() => socket.destroy(), 200).unref();
      return;
    }
    if (this.conns.some((c) => !c.outbound)) {
      socket.destroy();
      return;
    }
    this.attach(socket, false);
  }

  // ------------------------------------------------------------ connecting

  private begin(): void {
    if (!this.running) return;
    if (this.config.passive) {
      this.setState('Active');
      return;
    }
    this.connect();
  }

  private connect(): void {
    if (!this.running || this.established || this.conns.some((c) => c.outbound)) return;
    this.setState('Connect');
    let attempt: PendingConnection;
    const fail = (err: Error) => {
      if (this.connecting !== attempt) return;
      this.connecting = undefined;
      this.lastError = `connect: ${err.message.replace(/^connect: /, '')}`;
      this.log.debug({ peer: this.config.peerAddress, err: err.message }, 'connect failed');
      if (this.conns.length === 0) this.setState('Active');
      this.scheduleRetry(this.config.connectRetryTime * 1000);
    };
    try {
      attempt = dial(
        {
          host: this.config.peerAddress,
          port: this.config.port,
          ...(this.config.localAddress ? { localAddress: this.config.localAddress } : {}),
        },
        this.config.security,
        this.config.connectRetryTime * 1000,
      );
    } catch (err) {
      // A socket option the kernel refused before the SYN: reported like a failed connect.
      attempt = { socket: Promise.reject(err as Error), cancel: () => {} };
    }
    this.connecting = attempt;
    attempt.socket.then((socket) => {
      if (this.connecting !== attempt) return void socket.destroy();
      this.connecting = undefined;
      this.attach(socket, true);
    }, fail);
  }

  private scheduleRetry(ms: number): void {
    clearTimeout(this.retryTimer);
    if (!this.running) return;
    // ±10 % jitter so that two speakers do not retry in lockstep.
    const delay = ms * (0.9 + Math.random() * 0.2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.conns.length === 0 && !this.connecting) this.begin();
    }, delay);
  }

  private attach(socket: net.Socket, outbound: boolean): void {
    socket.setNoDelay(true);
    const c = new Connection(socket, outbound);
    this.conns.push(c);
    socket.on('data', (chunk: Buffer) => this.receive(c, chunk));
    socket.on('error', (err) => this.closeConnection(c, `socket error: ${err.message}`));
    socket.on('close', () => this.closeConnection(c, 'connection closed by peer'));
    c.send(
      encodeOpen({
        asn: this.config.localAsn,
        holdTime: this.config.holdTime,
        routerId: this.config.routerId,
        families: this.config.families,
        enhancedRouteRefresh: this.config.enhancedRouteRefresh !== false,
        ...(this.config.gracefulRestart ? { gracefulRestart: this.config.gracefulRestart } : {}),
      }),
    );
    this.armHold(c, OPEN_HOLD_TIME_MS);
    this.refreshState();
  }

  // ------------------------------------------------------------ receiving

  private receive(c: Connection, chunk: Buffer): void {
    if (c.closed) return;
    c.lastReceived = Date.now();
    try {
      c.framer.push(chunk, (msg) => {
        if (c.closed) return;
        this.handle(c, decodeMessage(msg, { fourOctetAs: c.negotiated?.fourOctetAs ?? false }));
      });
    } catch (err) {
      if (err instanceof BgpError) {
        this.closeConnection(c, `protocol error: ${err.message}`, err);
      } else {
        this.log.error({ err, peer: this.config.peerAddress }, 'internal error while handling a message');
        this.closeConnection(
          c,
          `internal error: ${(err as Error).message}`,
          new BgpError(ErrorCode.CEASE, 0, 'internal error'),
        );
      }
    }
  }

  private handle(c: Connection, m: BgpMessage): void {
    switch (m.type) {
      case MessageType.NOTIFICATION:
        this.closeConnection(c, `NOTIFICATION received: code ${m.code} subcode ${m.subcode}`, undefined, {
          kind: 'notification',
          sent: false,
          code: m.code,
          subcode: m.subcode,
        });
        return;
      case MessageType.OPEN:
        if (c.state !== 'OpenSent') throw fsmError('OPEN');
        this.receiveOpen(c, m);
        return;
      case MessageType.KEEPALIVE:
        if (c.state === 'OpenConfirm') this.becomeEstablished(c);
        else if (c.state !== 'Established') throw fsmError('KEEPALIVE');
        return;
      case MessageType.UPDATE:
        if (c.state !== 'Established') throw fsmError('UPDATE');
        this.handler.update(this, m);
        return;
      case MessageType.ROUTE_REFRESH:
        if (c.state !== 'Established') throw fsmError('ROUTE-REFRESH');
        this.handler.routeRefresh(this, m);
        return;
    }
  }

  private receiveOpen(c: Connection, open: OpenMessage): void {
    const peerAsn = open.capabilities.fourOctetAs ?? open.myAs;
    if (peerAsn !== this.config.peerAsn) {
      const data = Buffer.alloc(2);
      data.writeUInt16BE(open.myAs);
      throw new BgpError(
        ErrorCode.OPEN_MESSAGE,
        OpenSubcode.BAD_PEER_AS,
        `peer AS ${peerAsn}, expected ${this.config.peerAsn}`,
        data,
      );
    }
    if (peerAsn === this.config.localAsn && open.routerId === this.config.routerId) {
      throw new BgpError(
        ErrorCode.OPEN_MESSAGE,
        OpenSubcode.BAD_BGP_IDENTIFIER,
        `peer uses our router ID ${open.routerId}`,
      );
    }
    // Collision detection (RFC 4271 §6.8): the connection opened by the higher router ID wins.
    for (const other of this.conns) {
      if (other === c || other.closed || other.state === 'OpenSent') continue;
      const localWins = routerIdNumber(this.config.routerId) > routerIdNumber(open.routerId);
      const loser = localWins === c.outbound ? other : c;
      this.closeConnection(
        loser,
        'connection collision',
        new BgpError(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION, 'collision'),
      );
      if (loser === c) return;
    }
    for (const cap of open.capabilities.ignored) {
      this.log.warn(
        { peer: this.config.peerAddress, capability: cap.code, length: cap.length },
        'capability with an unexpected length ignored',
      );
    }
    const peerFamilies = open.capabilities.multiprotocol.length
      ? open.capabilities.multiprotocol
      : [{ afi: Afi.IPV4, safi: Safi.UNICAST }];
    const families = this.config.families.filter((f) =>
      peerFamilies.some((p) => p.afi === f.afi && p.safi === f.safi),
    );
    const holdTime = Math.min(this.config.holdTime, open.holdTime);
    const keepaliveTime =
      holdTime === 0 ? 0 : Math.min(this.config.keepaliveTime ?? Infinity, Math.floor(holdTime / 3)) || 1;
    c.peerOpen = open;
    c.negotiated = {
      peerRouterId: open.routerId,
      peerAsn,
      holdTime,
      keepaliveTime,
      fourOctetAs: open.capabilities.fourOctetAs !== undefined,
      families,
      routeRefresh: open.capabilities.routeRefresh || open.capabilities.enhancedRouteRefresh,
      enhancedRouteRefresh:
        this.config.enhancedRouteRefresh !== false && open.capabilities.enhancedRouteRefresh,
      ...(open.capabilities.gracefulRestart ? { gracefulRestart: open.capabilities.gracefulRestart } : {}),
      localAddress: normalizeAddress(c.socket.localAddress),
      remoteAddress: normalizeAddress(c.socket.remoteAddress),
    };
    c.state = 'OpenConfirm';
    c.send(KEEPALIVE);
    this.startKeepalives(c);
    this.armHold(c, holdTime === 0 ? 0 : holdTime * 1000);
    this.refreshState();
  }

  private becomeEstablished(c: Connection): void {
    c.state = 'Established';
    this.established = c;
    this.failures = 0;
    this.lastError = undefined;
    clearTimeout(this.retryTimer);
    this.connecting?.cancel();
    this.connecting = undefined;
    for (const other of this.conns) {
      if (other !== c) {
        this.closeConnection(
          other,
          'connection collision',
          new BgpError(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION, 'collision'),
        );
      }
    }
    this.refreshState();
    this.log.info({ peer: this.config.peerAddress, negotiated: c.negotiated }, 'session established');
    this.handler.established(this, c.negotiated!);
  }

  // ------------------------------------------------------------ timers

  private armHold(c: Connection, ms: number): void {
    clearTimeout(c.holdTimer);
    c.holdTimer = undefined;
    if (ms === 0) return;
    // Checked lazily against the last receive time, so data does not re-arm a timer per chunk.
    const check = () => {
      const idle = Date.now() - c.lastReceived;
      if (idle >= ms) {
        this.closeConnection(
          c,
          'hold timer expired',
          new BgpError(ErrorCode.HOLD_TIMER_EXPIRED, 0, 'hold timer expired'),
        );
      } else {
        c.holdTimer = setTimeout(check, ms - idle);
      }
    };
    c.holdTimer = setTimeout(check, ms);
  }

  private startKeepalives(c: Connection): void {
    clearInterval(c.keepaliveTimer);
    const kt = c.negotiated?.keepaliveTime ?? 0;
    if (kt > 0) c.keepaliveTimer = setInterval(() => c.send(KEEPALIVE), kt * 1000);
  }

  // ------------------------------------------------------------ teardown

  private closeConnection(c: Connection, reason: string, notify?: BgpError, received?: DownCause): void {
    if (c.closed) return;
    const cause: DownCause = notify
      ? { kind: 'notification', sent: true, code: notify.errorCode, subcode: notify.errorSubcode }
      : (received ?? { kind: 'transport' });
    if (notify) {
      try {
        c.socket.end(encodeNotification(notify.errorCode, notify.errorSubcode, notify.data));
      } catch {
        /* socket already unusable */
      }
    }
    c.closed = true;
    c.clearTimers();
    c.socket.removeAllListeners('data');
    c.socket.on('error', () => {});
    // Give the NOTIFICATION a moment to leave, then drop the socket.
    if (notify) setTimeout(() => c.socket.destroy(), 200).unref();
    else c.socket.destroy();
    this.conns = this.conns.filter((x) => x !== c);
    const wasEstablished = this.established === c;
    if (wasEstablished) this.established = undefined;
    if (reason !== 'connection collision') this.lastError = reason;
    this.log.info({ peer: this.config.peerAddress, reason, wasEstablished }, 'connection closed');
    if (wasEstablished) this.handler.down(this, reason, cause);
    if (this.conns.length === 0 && !this.connecting) {
      if (!this.running) {
        this.setState('Idle');
      } else if (reason === 'connection collision') {
        this.refreshState();
      } else {
        this.failures++;
        this.setState('Idle');
        const backoff = Math.min(1000 * 2 ** (this.failures - 1), MAX_BACKOFF_MS);
        this.scheduleRetry(Math.min(backoff, this.config.connectRetryTime * 1000));
      }
    } else {
      this.refreshState();
    }
  }

  private refreshState(): void {
    const order: SessionState[] = ['OpenSent', 'OpenConfirm', 'Established'];
    let best: SessionState | undefined;
    for (const c of this.conns) if (!best || order.indexOf(c.state) > order.indexOf(best)) best = c.state;
    if (best) this.setState(best);
    else if (this.connecting) this.setState('Connect');
    else if (this.running) this.setState('Active');
  }

  private setState(s: SessionState): void {
    if (s === this.stateValue) return;
    this.stateValue = s;
    this.since = Date.now();
    this.handler.stateChanged?.(this, s);
  }
}

const fsmError = (what: string) => new BgpError(ErrorCode.FSM, 0, `unexpected ${what} in this state`);
