// Pod-to-pod TCP rates between two pods of a PolicyLab: a 64-byte request/response on one
// connection, and new connections per second (one exchange each), measured by a client process
// inside the client pod against an echo server in the server pod.
import { execa } from 'execa';
import { expect } from 'vitest';
import { stopProcess } from '../../test/support/netns.js';
import type { LabPod } from '../../test/support/policy-lab.js';

// A connection whose first byte is "?" gets the server's CPU time so far (µs) instead of an echo,
// so a client can measure the server's share (on the one port the bench policy allows).
const ECHO_SERVER = String.raw`
require('node:net').createServer((s) => {
  s.setNoDelay(true);
  s.on('error', () => {});
  s.once('data', (d) => {
    if (d[0] === 63) { const u = process.cpuUsage(); return s.end(String(u.user + u.system)); }
    s.write(d);
    s.pipe(s);
  });
}).listen(7000, '0.0.0.0');
`;
// mode rr: one connection, 64-byte ping-pong for durationMs; mode conn: a new connection per exchange.
// Prints "<exchanges> <CPU µs of client and server during them>": the CPU time is what the kernel
// path costs plus constant user-space work, and unlike the rate it does not depend on how long
// the loaded machine kept the processes waiting. (On veths the whole forwarding path, netfilter
// included, runs in the sending process's context.)
const CLIENT = String.raw`
const net = require('node:net');
const [host, mode, ms] = process.argv.slice(1);
const serverCpu = () => new Promise((res) => { let b = ''; net.connect(7000, host, function () { this.write('?'); }).on('data', (d) => (b += d)).on('end', () => res(Number(b))).on('error', () => res(NaN)); });
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
let end = 0, n = 0, c0 = 0, s0 = 0;
const msg = Buffer.alloc(64, 120);
async function report() { const s1 = await serverCpu(); console.log(n + ' ' + (cpu() - c0 + s1 - s0)); process.exit(0); }
function rr() {
  const c = net.connect(7000, host, () => { c.setNoDelay(true); c.write(msg); });
  let got = 0;
  c.on('data', (d) => { got += d.length; if (got >= 64) { got -= 64; n++; if (Date.now() < end) c.write(msg); else { c.destroy(); report(); } } });
}
function conn() {
  if (Date.now() >= end) return report();
  const c = net.connect(7000, host, () => c.write(msg));
  c.on('data', () => { n++; c.destroy(); conn(); });
  c.on('error', () => { console.log(-1); process.exit(1); });
}
// Stop two seconds past the deadline whatever happens (a dropped SYN would wait for minutes).
setTimeout(() => { console.log(n + ' NaN'); process.exit(n > 0 ? 0 : 1); }, Number(ms) + 2000).unref();
serverCpu().then((s) => { s0 = s; c0 = cpu(); end = Date.now() + Number(ms); mode === 'rr' ? rr() : conn(); });
`;

export class PodRates {
  private constructor(
    private readonly client: LabPod,
    private readonly server: LabPod,
    private readonly serverPid: number | undefined,
  ) {}

  static async start(client: LabPod, server: LabPod): Promise<PodRates> {
    // The connection-rate rounds open ~30k connections; without these the client's ephemeral ports
    // sit in TIME_WAIT half-way through and every later round (with or without policy) collapses.
    for (const [key, value] of [
      ['net.ipv4.tcp_tw_reuse', '1'],
      ['net.ipv4.ip_local_port_range', '1024 65000'],
    ])
      await execa('ip', ['netns', 'exec', client.netns, 'sysctl', '-qw', `${key}=${value}`]);
    const proc = execa('ip', ['netns', 'exec', server.netns, process.execPath, '-e', ECHO_SERVER], {
      reject: false,
    });
    await new Promise((r) => setTimeout(r, 500));
    return new PodRates(client, server, proc.pid);
  }

  /** Exchanges (rr) or connections (conn) per second over `ms`. */
  async rate(mode: 'rr' | 'conn', ms = 1500): Promise<number> {
    return (await this.measure(mode, ms)).perSecond;
  }

  /** The rate, and the CPU time client and server spent per exchange (µs). */
  async measure(mode: 'rr' | 'conn', ms = 1500): Promise<{ perSecond: number; cpuUsPerOp: number }> {
    const r = await execa('ip', [
      'netns',
      'exec',
      this.client.netns,
      process.execPath,
      '-e',
      CLIENT,
      this.server.ip4,
      mode,
      String(ms),
    ]);
    const [n, cpuUs] = r.stdout.trim().split(' ').map(Number) as [number, number];
    expect(n).toBeGreaterThan(0);
    return { perSecond: (n * 1000) / ms, cpuUsPerOp: cpuUs / n };
  }

  async stop(): Promise<void> {
    await stopProcess(this.serverPid);
  }
}
