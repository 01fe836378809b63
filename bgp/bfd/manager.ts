// BFD sessions per peer address for the BGP speaker: creates them, demultiplexes received
// packets to them (RFC 5880 §6.8.6: by Your Discriminator, else by source and local address),
// and reports state changes. One BfdTransport carries every session.
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { ValidationError } from '../../model/errors.js';
import { type BfdOptions, resolveBfdOptions } from './options.js';
import { BfdPacketError, BfdState, decodeBfdPacket, encodeBfdPacket } from './packet.js';
import { BfdSession, type BfdSessionDeps, type BfdSessionStatus, type BfdStateChange } from './session.js';
import { BFD_CONTROL_PORT, BfdTransport, sourceAddressFor } from './transport.js';

export interface BfdManagerOptions extends BfdSessionDeps {
  /** UDP port listened on and sent to (default 3784); tests use another. */
  readonly port?: number;
  readonly logger?: Logger;
}

export interface BfdPeerOptions extends BfdOptions {
  /** Our address towards the peer; default the kernel's source address for it. */
  readonly localAddress?: string;
}

export interface BfdPeerStatus extends BfdSessionStatus {
  readonly peer: string;
  readonly localAddress?: string;
  /** ISO time of the last state change. */
  readonly since: string;
  /** Why the local address or the sockets are not ready, when they are not. */
  readonly error?: string;
}

export interface BfdPeerStateChange extends BfdStateChange {
  readonly peer: string;
}

type Events = { stateChanged: [BfdPeerStateChange] };

/** Seconds between attempts to find a local address / open the sockets. */
const RETRY_MS = 1000;

interface Entry {
  readonly peer: string;
  readonly configuredLocal: string | undefined;
  localAddress: string | undefined;
  readonly session: BfdSession;
  since: number;
  error: string | undefined;
  retry: NodeJS.Timeout | undefined;
  removed: boolean;
}

export class BfdManager extends EventEmitter<Events> {
  private readonly byPeer = new Map<string, Entry>();
  private readonly byDiscriminator = new Map<number, Entry>();
  private readonly transport: BfdTransport;
  private readonly log: Logger;
  private readonly port: number;
  /** Packets dropped before reaching a session (or refused by it), by reason. */
  readonly discarded = new Map<string, number>();

  constructor(private readonly options: BfdManagerOptions = {}) {
    super();
    this.log = options.logger ?? pino({ level: 'silent' });
    this.port = options.port ?? BFD_CONTROL_PORT;
    this.transport = new BfdTransport(
      (buf, from, local) => this.receive(buf, from, local),
      this.log,
      this.port,
    );
  }

  add(peer: string, options: BfdPeerOptions = {}): void {
    if (this.byPeer.has(peer)) throw new ValidationError('peer', `BFD session to ${peer} already exists`);
    const resolved = resolveBfdOptions(options);
    const discriminator = this.newDiscriminator();
    const entry: Entry = {
      peer,
      configuredLocal: options.localAddress,
      localAddress: undefined,
      since: Date.now(),
      error: undefined,
      retry: undefined,
      removed: false,
      session: new BfdSession(
        discriminator,
        resolved,
        {
          send: (p) => {
            if (entry.localAddress) this.transport.send(entry.localAddress, peer, encodeBfdPacket(p));
          },
          stateChanged: (change) => {
            entry.since = Date.now();
            this.log.info({ peer, ...change }, 'BFD session state changed');
            this.emit('stateChanged', { peer, ...change });
          },
        },
        this.options,
      ),
    };
    this.byPeer.set(peer, entry);
    this.byDiscriminator.set(discriminator, entry);
    void this.open(entry);
  }

  /** New intervals or multiplier (applied by a poll sequence); a new local address re-creates it. */
  update(peer: string, options: BfdPeerOptions = {}): void {
    const entry = this.byPeer.get(peer);
    if (!entry) throw new ValidationError('peer', `no BFD session to ${peer}`);
    if (entry.configuredLocal !== options.localAddress) {
      this.remove(peer);
      this.add(peer, options);
      return;
    }
    entry.session.setOptions(resolveBfdOptions(options));
  }

  remove(peer: string): void {
    const entry = this.byPeer.get(peer);
    if (!entry) return;
    // Tell the peer this is on purpose (§6.8.16), so that it does not count it as a failure.
    entry.session.adminDown();
    entry.removed = true;
    entry.session.stop();
    clearTimeout(entry.retry);
    this.byPeer.delete(peer);
    this.byDiscriminator.delete(entry.session.localDiscriminator);
    if (entry.localAddress) void this.transport.release(entry.localAddress);
  }

  status(peer: string): BfdPeerStatus | undefined {
    const e = this.byPeer.get(peer);
    if (!e) return undefined;
    return {
      peer,
      ...(e.localAddress ? { localAddress: e.localAddress } : {}),
      since: new Date(e.since).toISOString(),
      ...e.session.status(),
      ...(e.error ? { error: e.error } : {}),
    };
  }

  async close(): Promise<void> {
    for (const peer of [...this.byPeer.keys()]) this.remove(peer);
    await this.transport.close();
  }

  private newDiscriminator(): number {
    for (;;) {
      const d = randomInt(1, 0xffffffff);
      if (!this.byDiscriminator.has(d)) return d;
    }
  }

  private async open(entry: Entry): Promise<void> {
    try {
      const local = entry.configuredLocal ?? (await sourceAddressFor(entry.peer, this.port));
      if (entry.removed) return;
      await this.transport.open(local);
      if (entry.removed) {
        await this.transport.release(local);
        return;
      }
      entry.localAddress = local;
      entry.error = undefined;
      entry.session.start();
    } catch (err) {
      if (entry.removed) return;
      entry.error = (err as Error).message;
      this.log.warn({ peer: entry.peer, err: entry.error }, 'BFD session cannot start yet; retrying');
      entry.retry = setTimeout(() => void this.open(entry), RETRY_MS);
      entry.retry.unref();
    }
  }

  private receive(buf: Buffer, from: { address: string }, localAddress: string): void {
    let packet;
    try {
      packet = decodeBfdPacket(buf);
    } catch (err) {
      if (err instanceof BfdPacketError) return this.discard(`malformed ${err.field}`);
      throw err;
    }
    const peer = normalize(from.address);
    let entry: Entry | undefined;
    if (packet.yourDiscriminator !== 0) {
      entry = this.byDiscriminator.get(packet.yourDiscriminator);
      if (!entry) return this.discard('unknown Your Discriminator');
      if (entry.peer !== peer) return this.discard('Your Discriminator of another peer');
    } else {
      if (packet.state !== BfdState.Down && packet.state !== BfdState.AdminDown) {
        return this.discard('Your Discriminator zero outside Down/AdminDown');
      }
      entry = this.byPeer.get(peer);
      if (!entry) return this.discard('no session for this source address');
    }
    if (entry.localAddress !== localAddress) return this.discard('received on another local address');
    const refused = entry.session.receive(packet);
    if (refused) this.discard(refused);
  }

  private discard(reason: string): void {
    this.discarded.set(reason, (this.discarded.get(reason) ?? 0) + 1);
  }
}

const normalize = (a: string) => (a.startsWith('::ffff:') ? a.slice(7) : a);
