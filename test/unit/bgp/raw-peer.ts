// A speaker with one passive peer, and a raw TCP peer on loopback (tern's codec, no FSM) that has
// brought the session up: tests write any message and read everything the speaker sends.
import net from 'node:net';
import { BgpSpeaker, type PeerOptions, type SpeakerOptions } from '../../../bgp/speaker.js';
import {
  KEEPALIVE,
  MessageFramer,
  encodeOpen,
  type AfiSafi,
  type OpenParams,
} from '../../../bgp/wire/messages.js';
import { waitFor } from '../../support/netns.js';

export interface RawPeerOptions {
  readonly families?: readonly AfiSafi[];
  readonly enhancedRouteRefresh?: boolean;
  readonly peer?: Partial<PeerOptions>;
  readonly speaker?: Partial<SpeakerOptions>;
}

/** `cleanups` receives what stops the speaker and closes the socket (run them in afterEach). */
export async function established(
  host: string,
  peerHost: string,
  cleanups: (() => Promise<void> | void)[],
  o: RawPeerOptions = {},
) {
  const s = new BgpSpeaker({ asn: 65001, routerId: '10.0.0.1', listen: { host, port: 0 }, ...o.speaker });
  cleanups.push(() => s.stop());
  await s.start();
  s.addPeer({ address: peerHost, asn: 65002, passive: true, ...o.peer });
  const socket = net.connect({ host, port: s.listenPort!, localAddress: peerHost });
  cleanups.push(() => void socket.destroy());
  const received: Buffer[] = [];
  const framer = new MessageFramer();
  socket.on('data', (c: Buffer) => framer.push(c, (m) => received.push(Buffer.from(m))));
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  const open: OpenParams = {
    asn: 65002,
    holdTime: 90,
    routerId: '10.0.0.2',
    families: o.families ?? [{ afi: 1, safi: 1 }],
    enhancedRouteRefresh: o.enhancedRouteRefresh ?? false,
  };
  socket.write(encodeOpen(open));
  socket.write(KEEPALIVE);
  await waitFor('established', () => s.peers()[0]?.state === 'Established', 5000);
  return { s, socket, received };
}
