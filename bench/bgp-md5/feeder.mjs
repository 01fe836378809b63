#!/usr/bin/env node
// bgp-md5 feeder: opens `sessions` eBGP sessions one after the other to a passive receiver, with
// or without a TCP MD5 key, and times each from connect() to Established (our OPEN sent, the
// peer's OPEN and KEEPALIVE received); each but the last ends with a Cease. On the last it sends
// `count` IPv4 /24s (encoded before connecting) and stays up. Uses tern's codec and MD5 addon
// from a build directory. Prints JSON lines: {"event":"established","ms":…,"t":…}, {"event":"sent","t":…}.
//   node feeder.mjs --build DIR --peer 10.89.0.2 --router-id 10.89.0.1 --count 100000 --sessions 10 [--md5 KEY]
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    build: { type: 'string' },
    peer: { type: 'string' },
    'router-id': { type: 'string' },
    count: { type: 'string' },
    sessions: { type: 'string' },
    md5: { type: 'string' },
  },
});
const B = values.build;
const { encodePathAttributes } = await import(`${B}/bgp/wire/attributes.js`);
const { KEEPALIVE, MessageFramer, encodeEndOfRib, encodeNotification, encodeOpen, encodeUpdate } =
  await import(`${B}/bgp/wire/messages.js`);
const native = values.md5 !== undefined ? await import(`${B}/native/tcp-security.js`) : undefined;
const LOCAL_AS = 65100;
const count = Number(values.count);
const sessions = Number(values.sessions);

const attrs = encodePathAttributes(
  { origin: 0, asPath: [{ type: 2, asns: [LOCAL_AS] }], nextHop: values['router-id'] },
  { fourOctetAs: true },
  true,
);
const perMessage = Math.floor((4096 - 23 - attrs.length) / 4);
const messages = [];
for (let i = 0; i < count; i += perMessage) {
  const n = Math.min(perMessage, count - i);
  const nlri = Buffer.alloc(n * 4);
  for (let j = 0; j < n; j++) {
    const net24 = 0x100000 + i + j;
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
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tcpConnect() {
  if (native)
    return native.secureConnect({ host: values.peer, port: 179, md5Key: values.md5, timeoutMs: 3000 }).socket;
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: values.peer, port: 179 });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** One attempt: resolves with the socket and the time to Established, rejects when the peer closes first. */
async function establish() {
  const t0 = performance.now();
  const socket = await tcpConnect();
  socket.setNoDelay(true);
  socket.on('error', () => {});
  socket.write(
    encodeOpen({
      asn: LOCAL_AS,
      holdTime: 240,
      routerId: values['router-id'],
      families: [{ afi: 1, safi: 1 }],
    }),
  );
  const framer = new MessageFramer();
  return new Promise((resolve, reject) => {
    let state = 'OpenSent';
    socket.on('data', (chunk) =>
      framer.push(chunk, (m) => {
        const type = m[18];
        if (type === 1 && state === 'OpenSent') {
          state = 'OpenConfirm';
          socket.write(KEEPALIVE);
        } else if (type === 4 && state === 'OpenConfirm') {
          state = 'Established';
          resolve({ socket, ms: performance.now() - t0 });
        } else if (type === 3) {
          socket.destroy();
          reject(new Error(`NOTIFICATION ${m[19]}/${m[20]}`));
        }
      }),
    );
    socket.on('close', () => reject(new Error('closed')));
  });
}

for (let i = 0; i < sessions; i++) {
  let s;
  while (!s) s = await establish().catch(() => sleep(100));
  say({ event: 'established', ms: s.ms });
  if (i < sessions - 1) {
    s.socket.end(encodeNotification(6, 2)); // Cease / Administrative Shutdown
    await sleep(300);
    s.socket.destroy();
    continue;
  }
  s.socket.write(blob, () => say({ event: 'sent' }));
  setInterval(() => s.socket.write(KEEPALIVE), 30_000);
}
