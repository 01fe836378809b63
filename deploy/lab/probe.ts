#!/usr/bin/env node
// Runs inside a source pod's namespace: tries each target once and prints one JSON line of
// results. A target answers with its identity, so a misrouted reply is caught.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export interface ProbeTarget {
  address: string;
  port: number;
  protocol: Protocol;
  /** Expected identity of whoever answers. */
  expect: string;
}
export type ProbeOutcome = 'reached' | 'blocked' | 'wrong-answer' | 'unsupported';
export interface ProbeResult extends ProbeTarget {
  outcome: ProbeOutcome;
  detail?: string;
}

function probeTcp(t: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let data = '';
    const s = connect({ host: t.address, port: t.port, timeout: timeoutMs });
    const done = (outcome: ProbeOutcome, detail?: string) => {
      s.destroy();
      resolve({ ...t, outcome, ...(detail ? { detail } : {}) });
    };
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => (data.trim() === t.expect ? done('reached') : done('wrong-answer', data.trim())));
    s.on('timeout', () => done('blocked', 'timeout'));
    s.on('error', (e) => done('blocked', (e as NodeJS.ErrnoException).code ?? e.message));
  });
}

function probeUdp(t: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => done('blocked', 'timeout'), timeoutMs);
    const done = (outcome: ProbeOutcome, detail?: string) => {
      clearTimeout(timer);
      s.close();
      resolve({ ...t, outcome, ...(detail ? { detail } : {}) });
    };
    s.on('message', (m) =>
      m.toString().trim() === t.expect ? done('reached') : done('wrong-answer', m.toString().trim()),
    );
    s.on('error', (e) => done('blocked', (e as NodeJS.ErrnoException).code ?? e.message));
    s.send('probe\n', t.port, t.address);
  });
}

export async function probeAll(targets: readonly ProbeTarget[], timeoutMs: number): Promise<ProbeResult[]> {
  return Promise.all(
    targets.map((t) =>
      t.protocol === 'TCP'
        ? probeTcp(t, timeoutMs)
        : t.protocol === 'UDP'
          ? probeUdp(t, timeoutMs)
          : Promise.resolve<ProbeResult>({
              ...t,
              outcome: 'unsupported',
              detail: 'SCTP unsupported by this kernel',
            }),
    ),
  );
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const timeoutMs = Number(process.argv[2] ?? '1000');
  const targets = JSON.parse(process.argv[3] ?? '[]') as ProbeTarget[];
  probeAll(targets, timeoutMs).then((r) => process.stdout.write(JSON.stringify(r) + '\n'));
}
