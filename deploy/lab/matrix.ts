// The pod-to-pod reachability matrix: every ordered pair, one port and protocol.
import type { ProbeOutcome } from './probe.js';

export interface MatrixCell {
  from: string;
  to: string;
  outcome: ProbeOutcome;
  detail?: string;
}

export interface Matrix {
  port: number;
  protocol: string;
  pods: string[];
  cells: MatrixCell[];
}

const SYMBOL: Record<ProbeOutcome, string> = {
  reached: '.',
  blocked: 'X',
  'wrong-answer': '?',
  unsupported: '-',
};

export function outcomeOf(m: Matrix, from: string, to: string): ProbeOutcome | undefined {
  return m.cells.find((c) => c.from === from && c.to === to)?.outcome;
}

/** Rows are sources, columns destinations: '.' reached, 'X' blocked, '?' wrong answer, '-' unsupported. */
export function formatMatrix(m: Matrix): string {
  const width = Math.max(...m.pods.map((p) => p.length), 4);
  const head = ' '.repeat(width) + '  ' + m.pods.map((p) => p.padStart(width)).join(' ');
  const rows = m.pods.map(
    (from) =>
      from.padEnd(width) +
      '  ' +
      m.pods
        .map((to) => (from === to ? '' : SYMBOL[outcomeOf(m, from, to) ?? 'blocked']).padStart(width))
        .join(' '),
  );
  const reached = m.cells.filter((c) => c.outcome === 'reached').length;
  return [
    `reachability ${m.protocol}/${m.port}  (rows: from, columns: to; '.' reached, 'X' blocked)`,
    head,
    ...rows,
    `${reached}/${m.cells.length} pairs reached`,
  ].join('\n');
}
