import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type LoggerOptions } from '../../../model/log.js';

function capture(): {
  lines: Array<Record<string, unknown>>;
  destination: NonNullable<LoggerOptions['destination']>;
} {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('writes JSON lines carrying the component, and child fields', () => {
    const { lines, destination } = capture();
    const log = createLogger('felix', { destination, env: {} });
    log.child({ node: 'n1' }).info({ routes: 3 }, 'reconciled');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      component: 'felix',
      node: 'n1',
      routes: 3,
      msg: 'reconciled',
      level: 30,
    });
  });

  it.each([
    ['debug', ['debug', 'info', 'warn']],
    ['warn', ['warn']],
    ['silent', []],
    [undefined, ['info', 'warn']],
  ] as const)('takes level %s from TERN_LOG_LEVEL', (level, shown) => {
    const { lines, destination } = capture();
    const log = createLogger('bgp', { destination, env: level ? { TERN_LOG_LEVEL: level } : {} });
    log.debug('debug');
    log.info('info');
    log.warn('warn');
    expect(lines.map((l) => l.msg)).toEqual(shown);
  });

  it('falls back to info and says so when TERN_LOG_LEVEL is not a level', () => {
    const { lines, destination } = capture();
    const log = createLogger('cni', { destination, env: { TERN_LOG_LEVEL: 'verbose' } });
    log.debug('hidden');
    log.info('shown');
    expect(lines.map((l) => l.msg)).toEqual(['TERN_LOG_LEVEL: unknown level "verbose", using info', 'shown']);
  });

  it('lets an explicit level override the environment', () => {
    const { lines, destination } = capture();
    createLogger('x', { destination, level: 'error', env: { TERN_LOG_LEVEL: 'debug' } }).warn('no');
    expect(lines).toEqual([]);
  });
});
