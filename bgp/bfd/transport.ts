// Single-hop BFD over UDP (RFC 5881) on node:dgram: per local address one socket receiving on
// port 3784 and one sending from a port in 49152–65535 with TTL (hop limit) 255.
//
// Not done: the receive-side check that packets arrive with TTL 255 (RFC 5881 §5). node:dgram
// cannot read a datagram's TTL (no IP_RECVTTL / recvmsg ancillary data), so it needs native help.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';

export const BFD_CONTROL_PORT = 3784;
const SOURCE_PORT_MIN = 49152;
const SOURCE_PORT_MAX = 65535;

export type PacketHandler = (
  packet: Buffer,
  from: { readonly address: string; readonly port: number },
  localAddress: string,
) => void;

interface Endpoint {
  readonly rx: dgram.Socket;
  readonly tx: dgram.Socket;
  users: number;
  /** Sends not yet handed to the kernel: a last AdminDown must leave before the socket closes. */
  pending: number;
  drained: (() => void) | undefined;
  closing: boolean;
}

export class BfdTransport {
  private readonly endpoints = new Map<string, Promise<Endpoint>>();
  /** The bound ones, for the synchronous send path. */
  private readonly ready = new Map<string, Endpoint>();

  /** `port`: where we listen and where peers listen (3784; tests use another). */
  constructor(
    private readonly onPacket: PacketHandler,
    private readonly log: Logger,
    private readonly port = BFD_CONTROL_PORT,
  ) {}

  /** Opens (or shares) the sockets of `localAddress`; every open needs one release. */
  async open(localAddress: string): Promise<void> {
    let ep = this.endpoints.get(localAddress);
    if (!ep) {
      ep = this.bind(localAddress);
      this.endpoints.set(localAddress, ep);
      ep.then(
        (e) => this.ready.set(localAddress, e),
        () => this.endpoints.delete(localAddress),
      );
    }
    (await ep).users++;
  }

  async release(localAddress: string): Promise<void> {
    const ep = this.ready.get(localAddress);
    if (!ep || --ep.users > 0) return;
    this.endpoints.delete(localAddress);
    this.ready.delete(localAddress);
    await closeWhenSent(ep);
  }

  send(localAddress: string, peer: string, packet: Buffer): void {
    const ep = this.ready.get(localAddress);
    if (!ep || ep.closing) return;
    ep.pending++;
    ep.tx.send(packet, this.port, peer, (err) => {
      if (err) this.log.debug({ peer, err: err.message }, 'BFD send failed');
      if (--ep.pending === 0) ep.drained?.();
    });
  }

  async close(): Promise<void> {
    const all = [...this.endpoints.values()];
    this.endpoints.clear();
    this.ready.clear();
    for (const ep of all) {
      const e = await ep.catch(() => undefined);
      if (e) await closeWhenSent(e);
    }
  }

  private async bind(localAddress: string): Promise<Endpoint> {
    const type = isIPv6(localAddress) ? 'udp6' : 'udp4';
    const rx = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
    rx.on('message', (msg, rinfo) => this.onPacket(msg, rinfo, localAddress));
    rx.on('error', (err) => this.log.warn({ localAddress, err: err.message }, 'BFD receive socket error'));
    try {
      await bindSocket(rx, this.port, localAddress);
    } catch (err) {
      rx.close();
      throw err;
    }
    let tx: dgram.Socket | undefined;
    for (let attempt = 0; !tx; attempt++) {
      const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
      const port = SOURCE_PORT_MIN + Math.floor(Math.random() * (SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1));
      try {
        await bindSocket(s, port, localAddress);
        tx = s;
      } catch (err) {
        s.close();
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 32) {
          rx.close();
          throw err;
        }
      }
    }
    tx.setTTL(255);
    tx.on('error', (err) => this.log.warn({ localAddress, err: err.message }, 'BFD send socket error'));
    // Packets to the sending port are not BFD control packets (those go to 3784): read and drop.
    tx.on('message', () => undefined);
    return { rx, tx, users: 0, pending: 0, drained: undefined, closing: false };
  }
}

function bindSocket(s: dgram.Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind({ port, address, exclusive: true }, () => {
      s.removeListener('error', reject);
      resolve();
    });
  });
}

async function closeWhenSent(ep: Endpoint): Promise<void> {
  if (ep.closing) return;
  ep.closing = true;
  if (ep.pending > 0) await new Promise<void>((r) => (ep.drained = r));
  await Promise.all([ep.rx, ep.tx].map((s) => new Promise<void>((r) => s.close(() => r()))));
}

/**
 * The address the kernel would send from towards `peer` (a connected UDP socket sends nothing),
 * for peers configured without a local address.
 */
export async function sourceAddressFor(peer: string, port = BFD_CONTROL_PORT): Promise<string> {
  const s = dgram.createSocket(isIPv6(peer) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(port, peer, () => resolve());
    });
    return s.address().address;
  } finally {
    s.close();
  }
}
