// Follows a namespace's IPv4 route table through `ip -ts monitor route` and answers "when did
// a route covering this address first appear?", with the kernel event's wall-clock time (µs).
import { execa, type ResultPromise } from 'execa';
import { containsCidr, parseCidr, parseIp, type Cidr } from '../../model/index.js';

interface RouteEvent {
  at: number;
  dst: Cidr;
}

export class RouteMonitor {
  private child: ResultPromise | undefined;
  private buffer = '';
  private readonly added: RouteEvent[] = [];
  private waiters: Array<() => void> = [];
  /** Routes present when monitoring began. */
  private initial: Cidr[] = [];

  constructor(private readonly netns: string) {}

  async start(): Promise<void> {
    const child = execa('ip', ['-n', this.netns, '-4', '-ts', 'monitor', 'route'], {
      env: { TZ: 'UTC' },
      reject: false,
      buffer: false,
    });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => this.feed(d.toString()));
    // The monitor is subscribed once it prints nothing yet but runs; give it a moment, then dump.
    await new Promise((r) => setTimeout(r, 200));
    const { stdout } = await execa('ip', ['-n', this.netns, '-4', '-j', 'route', 'show']);
    this.initial = (JSON.parse(stdout || '[]') as Array<{ dst: string }>)
      .filter((r) => r.dst !== 'default')
      .map((r) => toCidr(r.dst));
  }

  private feed(text: string): void {
    this.buffer += text;
    const lines = this.buffer.split('\n');
    this.buffer = lines.pop() ?? '';
    for (const line of lines) {
      // [2026-11-22T01:10:00.123456] 10.244.1.0/26 via 10.77.0.11 dev eth0 proto 92
      const m =
        /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})\] (?!Deleted)(?:unicast |blackhole )?(\S+) /.exec(line);
      if (!m) continue;
      const [, secs, micros, dst] = m;
      if (!dst || dst === 'default' || !/^[\d.]+(\/\d+)?$/.test(dst)) continue;
      this.added.push({ at: Date.parse(`${secs}Z`) + Number(micros) / 1000, dst: toCidr(dst) });
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Whether a route covering `ip` existed before `time` (initially or added before it). */
  coveredBefore(ip: string, time: number): boolean {
    const host = toCidr(ip);
    return (
      this.initial.some((c) => containsCidr(c, host)) ||
      this.added.some((e) => e.at < time && containsCidr(e.dst, host))
    );
  }

  /** Time of the first route added at or after `since` covering `ip`; waits up to `timeoutMs`. */
  firstCovering(ip: string, since: number, timeoutMs: number): Promise<number> {
    const host = toCidr(ip);
    return this.first(`covering ${ip}`, (d) => containsCidr(d, host), since, timeoutMs);
  }

  /** Time of the first host route to exactly `ip` added at or after `since`. */
  firstHostRoute(ip: string, since: number, timeoutMs: number): Promise<number> {
    const host = toCidr(ip);
    return this.first(
      `to ${ip}`,
      (d) => d.prefixLength === host.prefixLength && d.network === host.network,
      since,
      timeoutMs,
    );
  }

  private async first(
    what: string,
    match: (dst: Cidr) => boolean,
    since: number,
    timeoutMs: number,
  ): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.added.find((x) => x.at >= since && match(x.dst));
      if (e) return e.at;
      if (Date.now() > deadline) throw new Error(`no route ${what} in ${this.netns} after ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGTERM');
    await this.child?.catch(() => undefined);
  }
}

function toCidr(dst: string): Cidr {
  if (dst.includes('/')) return parseCidr(dst, 'dst', false);
  const ip = parseIp(dst);
  return { family: ip.family, network: ip.value, prefixLength: ip.family === 4 ? 32 : 128 };
}
