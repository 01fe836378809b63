import { describe, expect, it } from 'vitest';
import {
  ValidationError,
  isEmptySelector,
  matches,
  validateSelector,
  type LabelSelector,
  type Labels,
} from '../../../model/index.js';

const web: Labels = { app: 'web', tier: 'front' };

describe('label selector matching (Kubernetes semantics)', () => {
  const cases: Array<[string, LabelSelector, Labels | undefined, boolean]> = [
    ['empty selector matches an object with labels', {}, web, true],
    ['empty selector matches an object without labels', {}, undefined, true],
    [
      'empty matchLabels and matchExpressions match everything',
      { matchLabels: {}, matchExpressions: [] },
      {},
      true,
    ],
    ['matchLabels pair present', { matchLabels: { app: 'web' } }, web, true],
    ['matchLabels pair with another value', { matchLabels: { app: 'db' } }, web, false],
    ['matchLabels key missing', { matchLabels: { env: 'prod' } }, web, false],
    ['every matchLabels pair must hold', { matchLabels: { app: 'web', tier: 'back' } }, web, false],
    ['matchLabels value "" does not match a missing key', { matchLabels: { env: '' } }, web, false],
    ['matchLabels value "" matches an empty label', { matchLabels: { env: '' } }, { env: '' }, true],
    [
      'In with the value',
      { matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] },
      web,
      true,
    ],
    [
      'In without the value',
      { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] },
      web,
      false,
    ],
    [
      'In on a missing label fails',
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
      web,
      false,
    ],
    [
      'NotIn with the value',
      { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] },
      web,
      false,
    ],
    [
      'NotIn without the value',
      { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['db'] }] },
      web,
      true,
    ],
    [
      'NotIn on a missing label matches',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
      web,
      true,
    ],
    [
      'NotIn on an object without labels matches',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['x'] }] },
      undefined,
      true,
    ],
    ['Exists with the key', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, web, true],
    [
      'Exists with an empty value',
      { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
      { tier: '' },
      true,
    ],
    [
      'Exists on a missing label fails',
      { matchExpressions: [{ key: 'env', operator: 'Exists' }] },
      web,
      false,
    ],
    [
      'DoesNotExist on a missing label matches',
      { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] },
      web,
      true,
    ],
    [
      'DoesNotExist with the key fails',
      { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] },
      web,
      false,
    ],
    [
      'matchLabels and matchExpressions are ANDed (both hold)',
      { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] },
      web,
      true,
    ],
    [
      'matchLabels and matchExpressions are ANDed (one fails)',
      {
        matchLabels: { app: 'web' },
        matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }],
      },
      web,
      false,
    ],
    [
      'label keys with prefixes compare whole',
      { matchLabels: { 'k8s.io/app': 'web' } },
      { app: 'web' },
      false,
    ],
  ];
  it.each(cases)('%s', (_name, selector, labels, expected) => {
    expect(matches(selector, labels)).toBe(expected);
  });

  it('does not treat inherited object properties as labels', () => {
    expect(matches({ matchExpressions: [{ key: 'toString', operator: 'Exists' }] }, {})).toBe(false);
    expect(matches({ matchExpressions: [{ key: 'constructor', operator: 'DoesNotExist' }] }, {})).toBe(true);
    expect(matches({ matchLabels: { constructor: 'x' } }, {})).toBe(false);
  });

  it.each<[LabelSelector, boolean]>([
    [{}, true],
    [{ matchLabels: {}, matchExpressions: [] }, true],
    [{ matchLabels: { a: 'b' } }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, false],
  ])('isEmptySelector(%j) is %s', (selector, expected) => {
    expect(isEmptySelector(selector)).toBe(expected);
  });
});

describe('validateSelector', () => {
  const invalid: Array<[string, LabelSelector, string]> = [
    [
      'In without values',
      { matchExpressions: [{ key: 'a', operator: 'In' }] },
      'sel.matchExpressions[0].values',
    ],
    [
      'In with empty values',
      { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] },
      'sel.matchExpressions[0].values',
    ],
    [
      'NotIn without values (second requirement)',
      {
        matchExpressions: [
          { key: 'a', operator: 'Exists' },
          { key: 'b', operator: 'NotIn' },
        ],
      },
      'sel.matchExpressions[1].values',
    ],
    [
      'Exists with values',
      { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      'sel.matchExpressions[0].values',
    ],
    [
      'DoesNotExist with values',
      { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] },
      'sel.matchExpressions[0].values',
    ],
  ];
  it.each(invalid)('rejects %s naming the field', (_name, selector, field) => {
    const err = (() => {
      try {
        validateSelector(selector, 'sel');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });

  it.each<LabelSelector>([
    {},
    { matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] },
    {
      matchExpressions: [
        { key: 'a', operator: 'Exists' },
        { key: 'b', operator: 'DoesNotExist', values: [] },
      ],
    },
  ])('accepts %j', (selector) => {
    expect(() => validateSelector(selector)).not.toThrow();
  });
});
