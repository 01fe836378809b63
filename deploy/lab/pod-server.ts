#!/usr/bin/env node
// What each lab pod runs: TCP and UDP responders on the given ports, answering with the
// pod's name so a probe knows whom it reached. SCTP is served only where the kernel has it.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [identity, ...portArgs] = process.argv.slice(2);
if (!identity || portArgs.length === 0) {
  console.error('usage: pod-server <namespace/pod> <port>...');
  process.exit(2);
}
const ports = portArgs.map((p) => {
  const n = Number(p);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`pod-server: invalid port ${JSON.stringify(p)}`);
    process.exit(2);
  }
  return n;
});

for (const port of ports) {
  createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.end(`${identity}\n`);
  }).listen(port, '0.0.0.0');
  const udp = createSocket('udp4');
  udp.on('message', (_msg, rinfo) => udp.send(`${identity}\n`, rinfo.port, rinfo.address));
  udp.bind(port, '0.0.0.0');
}
// Node has no SCTP sockets, and this kernel has no CONFIG_IP_SCTP either.
console.error(`pod-server ${identity}: TCP and UDP on ${ports.join(', ')}; SCTP unsupported by this kernel`);
process.on('SIGTERM', () => process.exit(0));
