#!/usr/bin/env node
// Bench feeder: one eBGP session that sends `count` IPv4 /24 prefixes as fast as TCP allows,
// using tern's own (built) codec. Messages are encoded before connecting, so encoding is not
// part of the measured time. Prints JSON lines: {"event":"established","t":ms} and
// {"event":"sent","t":ms,"messages":n}. Runs until killed.
//   node feeder.mjs --peer 10.88.0.2 --local-as 65100 --peer-as 65000 --router-id 10.88.0.1 --count 100000
import net from 'node:net';
import { parseArgs } from 'node:util';
import { encodePathAttributes } from '../../dist/bgp/wire/attributes.js';
import {
  KEEPALIVE,
  MessageFramer,
  encodeEndOfRib,
  encodeOpen,
  encodeUpdate,
} from '../../dist/bgp/wire/messages.js';

const { values } = parseArgs({
  options: {
    peer: { type: 'string' },
    'local-as': { type: 'string' },
    'peer-as': { type: 'string' },
    'router-id': { type: 'string' },
    'next-hop': { type: 'string' },
    count: { type: 'string' },
  },
});
const count = Number(values.count);
const localAs = Number(values['local-as']);
const nextHop = values['next-hop'] ?? values['router-id'];

// /24s from 16.0.0.0 upwards: up to 2^20 of them before 32.0.0.0.
const attrs = encodePathAttributes(
  { origin: 0, asPath: [{ type: 2, asns: [localAs] }], nextHop },
  { fourOctetAs: true },
  true,
);
const room = 4096 - 23 - attrs.length;
const perMessage = Math.floor(room / 4);
const messages = [];
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
  messages.push(encodeUpdate(Buffer.alloc(0), attrs, nlri));
}
messages.push(encodeEndOfRib({ afi: 1, safi: 1 }));
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
        families: [{ afi: 1, safi: 1 }],
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
