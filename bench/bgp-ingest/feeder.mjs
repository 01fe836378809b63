#!/usr/bin/env node
// Bench feeder: one eBGP session that sends `count` prefixes as fast as TCP allows, using tern's
// own (built) codec: IPv4 /24s in plain UPDATEs (--family 4, default) or IPv6 /48s in MP_REACH_NLRI
// with an IPv6 next hop (--family 6). Messages are encoded before connecting, so encoding is not
// part of the measured time. Prints JSON lines: {"event":"established","t":ms} and
// {"event":"sent","t":ms,"messages":n}. Runs until killed. `--build` is the directory tern was
// compiled into (the bench builds it privately).
//   node feeder.mjs --build DIR --peer 10.88.0.2 --local-as 65100 --peer-as 65000 --router-id 10.88.0.1 \
//     --count 100000 [--family 6 --next-hop fd00:88::1]
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    build: { type: 'string' },
    peer: { type: 'string' },
    'local-as': { type: 'string' },
    'peer-as': { type: 'string' },
    'router-id': { type: 'string' },
    'next-hop': { type: 'string' },
    count: { type: 'string' },
    family: { type: 'string' },
  },
});
const wire = (f) => import(pathToFileURL(path.join(values.build, 'bgp/wire', f)).href);
const { encodeMpReachHeader, encodePathAttributes } = await wire('attributes.js');
const { KEEPALIVE, MessageFramer, encodeEndOfRib, encodeOpen, encodeUpdate } = await wire('messages.js');

const count = Number(values.count);
const localAs = Number(values['local-as']);
const family = values.family === '6' ? 6 : 4;
const nextHop = values['next-hop'] ?? values['router-id'];
const EMPTY = Buffer.alloc(0);

const attrs = encodePathAttributes(
  { origin: 0, asPath: [{ type: 2, asns: [localAs] }], nextHop },
  { fourOctetAs: true },
  family === 4,
);
const messages = [];
if (family === 4) {
  // /24s from 16.0.0.0 upwards: up to 2^20 of them before 32.0.0.0.
  const perMessage = Math.floor((4096 - 23 - attrs.length) / 4);
  for (let i = 0; i < count; i += perMessage) {
    const n = Math.min(perMessage, count - i);
    const nlri = Buffer.alloc(n * 4);
    for (let j = 0; j < n; j++) {
      const net24 = 0x100000 + i + j; // 16.0.0.0 >> 8
      nlri[j * 4] = 24;
      nlri[j * 4 + 1] = (net24 >> 16) & 255;
      nlri[j * 4 + 2] = (net24 >> 8) & 255;
      nlri[j * 4 + 3] = net24 & 255;
    }
    messages.push(encodeUpdate(EMPTY, attrs, nlri));
  }
} else {
  // /48s fd10:HHHH:LLLL::/48 (i = HHHH·2^16 + LLLL): 7 bytes each in MP_REACH_NLRI.
  const header = encodeMpReachHeader(2, nextHop, undefined, 300).length;
  const perMessage = Math.floor((4096 - 23 - attrs.length - header) / 7);
  for (let i = 0; i < count; i += perMessage) {
    const n = Math.min(perMessage, count - i);
    const nlri = Buffer.alloc(n * 7);
    for (let j = 0; j < n; j++) {
      const k = i + j;
      nlri.set([48, 0xfd, 0x10, (k >>> 24) & 255, (k >>> 16) & 255, (k >>> 8) & 255, k & 255], j * 7);
    }
    const mp = encodeMpReachHeader(2, nextHop, undefined, nlri.length);
    messages.push(encodeUpdate(EMPTY, Buffer.concat([attrs, mp, nlri]), EMPTY));
  }
}
messages.push(encodeEndOfRib({ afi: family === 4 ? 1 : 2, safi: 1 }));
const blob = Buffer.concat(messages);

const say = (o) => process.stdout.write(JSON.stringify({ ...o, t: Date.now() }) + '\n');

function connect() {
  const socket = net.connect({ host: values.peer, port: 179 });
  const framer = new MessageFramer();
  let state = 'OpenSent';
  socket.on('connect', () => {
    socket.write(
      encodeOpen({
        asn: localAs,
        holdTime: 240,
        routerId: values['router-id'],
        families: [{ afi: family === 4 ? 1 : 2, safi: 1 }],
      }),
    );
  });
  socket.on('data', (chunk) => {
    framer.push(chunk, (m) => {
      const type = m[18];
      if (type === 1 && state === 'OpenSent') {
        state = 'OpenConfirm';
        socket.write(KEEPALIVE);
      } else if (type === 4 && state === 'OpenConfirm') {
        state = 'Established';
        say({ event: 'established' });
        socket.write(blob, () => say({ event: 'sent', messages: messages.length }));
        setInterval(() => socket.write(KEEPALIVE), 30_000);
      } else if (type === 3) {
        say({ event: 'notification', code: m[19], subcode: m[20] });
      }
    });
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    if (state !== 'Established') setTimeout(connect, 300);
    else say({ event: 'closed' });
  });
}
connect();
