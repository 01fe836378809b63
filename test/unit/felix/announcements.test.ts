import { describe, expect, it } from 'vitest';
import { aggregate, announcements } from '../../../felix/announcements.js';
import { formatCidr, parseCidr } from '../../../model/index.js';

const agg = (cidrs: string[]) => aggregate(cidrs.map((c) => parseCidr(c))).map(formatCidr);

describe('aggregate', () => {
  it.each([
    [['10.0.0.0/26', '10.0.0.64/26'], ['10.0.0.0/25']],
    [['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26'], ['10.0.0.0/24']],
    [
      ['10.0.0.64/26', '10.0.0.128/26'],
      ['10.0.0.64/26', '10.0.0.128/26'],
    ], // not siblings
    [
      ['10.0.0.0/26', '10.0.0.128/26'],
      ['10.0.0.0/26', '10.0.0.128/26'],
    ], // gap
    [['10.0.0.0/24', '10.0.0.64/26'], ['10.0.0.0/24']], // covered
    [['fd00::/122', 'fd00::40/122'], ['fd00::/121']],
    [
      ['10.0.0.0/26', 'fd00::/122'],
      ['10.0.0.0/26', 'fd00::/122'],
    ],
    [['0.0.0.0/1', '128.0.0.0/1'], ['0.0.0.0/0']],
    [[], []],
  ])('%j → %j', (input, expected) => {
    expect(agg(input).sort()).toEqual([...expected].sort());
  });
});

describe('announcements', () => {
  it('aggregated blocks plus borrowed host routes', () => {
    expect(announcements(['10.0.0.0/26', '10.0.0.64/26'], ['10.9.0.5', 'fd00::5'])).toEqual([
      '10.0.0.0/25',
      '10.9.0.5/32',
      'fd00::5/128',
    ]);
  });
});
