import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { envNameOf, flagNameOf, loadConfig, parseFlags } from '../../../model/config.js';
import { ValidationError } from '../../../model/index.js';

const schema = z.object({
  nodeName: z.string().min(1),
  asNumber: z.number().int().min(1, 'must be between 1 and 4294967295').max(4294967295),
  etcdEndpoints: z.array(z.string().min(1)).min(1),
  metricsPort: z.number().int().default(9091),
  debug: z.boolean().optional(),
  backend: z.enum(['memory', 'etcd']).optional(),
});

const dir = mkdtempSync(join(tmpdir(), 'tern-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const yaml = file(
  'config.yaml',
  'nodeName: from-file\nasNumber: 65001\netcdEndpoints: [http://127.0.0.1:2379]\n',
);

function errorOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ValidationError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('loadConfig precedence: flags > env > file > defaults', () => {
  const defaults = { nodeName: 'from-defaults', asNumber: 64512, etcdEndpoints: ['unix:///run/etcd.sock'] };

  it.each<[string, Parameters<typeof loadConfig<typeof schema>>[1], string, number]>([
    ['defaults alone', { env: {}, defaults }, 'from-defaults', 64512],
    ['file over defaults', { env: {}, file: yaml, defaults }, 'from-file', 65001],
    [
      'env over file',
      { env: { TERN_NODE_NAME: 'from-env', TERN_AS_NUMBER: '65002' }, file: yaml, defaults },
      'from-env',
      65002,
    ],
    [
      'flags over env',
      {
        flags: { 'node-name': 'from-flag', asNumber: '65003' },
        env: { TERN_NODE_NAME: 'from-env' },
        file: yaml,
        defaults,
      },
      'from-flag',
      65003,
    ],
  ])('%s', (_name, sources, nodeName, asNumber) => {
    const config = loadConfig(schema, sources);
    expect(config.nodeName).toBe(nodeName);
    expect(config.asNumber).toBe(asNumber);
  });

  it('takes each key from the highest source that sets it, and applies schema defaults last', () => {
    const config = loadConfig(schema, {
      flags: { debug: true },
      env: {
        TERN_ETCD_ENDPOINTS: 'http://10.0.0.1:2379, unix:///run/e.sock',
        UNRELATED: 'x',
        TERN_OTHER_THING: 'y',
      },
      file: yaml,
    });
    expect(config).toEqual({
      nodeName: 'from-file',
      asNumber: 65001,
      etcdEndpoints: ['http://10.0.0.1:2379', 'unix:///run/e.sock'],
      metricsPort: 9091,
      debug: true,
    });
  });

  it.each([
    ['true', true],
    ['1', true],
    ['off', false],
    ['FALSE', false],
  ])('reads boolean %j from the environment as %s', (text, value) => {
    expect(loadConfig(schema, { env: { TERN_DEBUG: text }, file: yaml }).debug).toBe(value);
  });

  it('reads a JSON file', () => {
    const json = file('c.json', JSON.stringify({ nodeName: 'j', asNumber: 1, etcdEndpoints: ['x:1'] }));
    expect(loadConfig(schema, { env: {}, file: json }).nodeName).toBe('j');
  });

  it('derives flag and environment names from keys', () => {
    expect(flagNameOf('etcdEndpoints')).toBe('etcd-endpoints');
    expect(envNameOf('etcdEndpoints')).toBe('TERN_ETCD_ENDPOINTS');
    expect(envNameOf('bgpIPv4Address')).toBe('TERN_BGP_IPV4_ADDRESS');
    expect(flagNameOf('bgpIPv4Address')).toBe('bgp-ipv4-address');
  });
});

describe('loadConfig errors name the key as its source spells it', () => {
  const base = { env: {}, file: yaml };
  it.each<[string, () => unknown, RegExp]>([
    [
      'a bad flag',
      () => loadConfig(schema, { ...base, flags: { 'as-number': '0' } }),
      /^--as-number: must be between/,
    ],
    [
      'a non-numeric flag',
      () => loadConfig(schema, { ...base, flags: { asNumber: 'abc' } }),
      /^--as-number: .*number/,
    ],
    [
      'a bad env var',
      () => loadConfig(schema, { env: { TERN_AS_NUMBER: '-5' }, file: yaml }),
      /^TERN_AS_NUMBER: must be between/,
    ],
    [
      'a bad enum from env',
      () => loadConfig(schema, { env: { TERN_BACKEND: 'zookeeper' }, file: yaml }),
      /^TERN_BACKEND: /,
    ],
    [
      'an element of an env list',
      () => loadConfig(schema, { env: { TERN_ETCD_ENDPOINTS: ',' }, file: yaml }),
      /^TERN_ETCD_ENDPOINTS: /,
    ],
    [
      'a bad file value',
      () =>
        loadConfig(schema, {
          env: {},
          file: file('bad.yaml', 'nodeName: x\nasNumber: 0\netcdEndpoints: [a]\n'),
        }),
      /bad\.yaml: asNumber: must be between/,
    ],
    [
      'a bad list element in the file',
      () =>
        loadConfig(schema, {
          env: {},
          file: file('bad2.yaml', 'nodeName: x\nasNumber: 1\netcdEndpoints: [a, ""]\n'),
        }),
      /bad2\.yaml: etcdEndpoints\[1\]: /,
    ],
    [
      'an unknown key in the file',
      () => loadConfig(schema, { env: {}, file: file('typo.yaml', 'nodeName: x\nasNumbr: 1\n') }),
      /typo\.yaml: asNumbr: unknown key/,
    ],
    [
      'an unknown flag',
      () => loadConfig(schema, { ...base, flags: { 'as-numbr': '1' } }),
      /^--as-numbr: unknown flag/,
    ],
    [
      'a bad default',
      () => loadConfig(schema, { env: {}, defaults: { nodeName: 'n', asNumber: 0, etcdEndpoints: ['a'] } }),
      /^defaults: asNumber: /,
    ],
    [
      'a missing required key, with where to set it',
      () => loadConfig(schema, { env: {}, defaults: { asNumber: 1, etcdEndpoints: ['a'] } }),
      /^nodeName: .*--node-name, TERN_NODE_NAME or nodeName in the config file/,
    ],
    [
      'a missing file',
      () => loadConfig(schema, { env: {}, file: join(dir, 'nope.yaml') }),
      /nope\.yaml: cannot read config file/,
    ],
    [
      'a file that is not a mapping',
      () => loadConfig(schema, { env: {}, file: file('list.yaml', '- a\n- b\n') }),
      /list\.yaml: must be a mapping/,
    ],
    [
      'malformed YAML',
      () => loadConfig(schema, { env: {}, file: file('broken.yaml', 'a: [\n') }),
      /broken\.yaml: not valid YAML/,
    ],
  ])('%s', (_name, fn, message) => {
    expect(errorOf(fn).message).toMatch(message);
  });
});

describe('parseFlags', () => {
  it('turns argv into flags loadConfig ranks above everything, with positionals apart', () => {
    const { flags, positionals } = parseFlags(schema, [
      'run',
      '--as-number',
      '65010',
      '--etcd-endpoints=http://a:1',
      '--etcd-endpoints',
      'http://b:2',
      '--debug',
    ]);
    expect(positionals).toEqual(['run']);
    const config = loadConfig(schema, { flags, env: { TERN_AS_NUMBER: '1' }, file: yaml });
    expect(config.asNumber).toBe(65010);
    expect(config.etcdEndpoints).toEqual(['http://a:1', 'http://b:2']);
    expect(config.debug).toBe(true);
  });

  it.each([
    [['--as-numbr', '1'], /^--as-numbr: unknown flag/],
    [['--as-number'], /^--as-number: argument missing/],
    [['--debug=yes'], /^--debug: does not take an argument/],
  ])('rejects %j', (argv, message) => {
    expect(errorOf(() => parseFlags(schema, argv)).message).toMatch(message);
  });
});
