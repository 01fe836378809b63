import { describe, expect, it } from 'vitest';
import { blockContaining, blockName, freeOffset, newBlock, withAllocation } from '../../../ipam/blocks.js';
import { effectiveBlockSize } from '../../../ipam/pools.js';
import { formatCidr, parseCidr, parseIp, parseResource } from '../../../model/index.js';
import { pool } from './fixture.js';

describe('block naming', () => {
  it.each([
    ['10.0.3.0/26', '10-0-3-0-26'],
    ['192.168.0.0/20', '192-168-0-0-20'],
    ['fd00::/122', 'fd00---122'],
    ['fd00::1:0/122', 'fd00--1-0-122'],
    ['::/122', '0---122'],
    ['2001:db8:0:1::40/122', '2001-db8-0-1--40-122'],
  ])('names block %s as %s, a valid object name', (cidr, name) => {
    expect(blockName(parseCidr(cidr))).toBe(name);
    expect(() =>
      parseResource({ ...newBlock(parseCidr(cidr), 'p', undefined), metadata: { name } }, 'IPAMBlock'),
    ).not.toThrow();
  });

  it('gives distinct names to every /122 block of an IPv6 /112 (one-to-one)', () => {
    const base = parseCidr('fd00::/112');
    const names = new Set<string>();
    for (let i = 0n; i < 1024n; i++) {
      names.add(blockName({ family: 6, network: base.network + i * 64n, prefixLength: 122 }));
    }
    expect(names.size).toBe(1024);
  });
});

describe('carving pools into blocks', () => {
  it.each([
    ['10.0.0.0/16', undefined, 26],
    ['10.0.0.0/16', 24, 24],
    ['10.0.0.0/28', undefined, 28],
    ['fd00::/64', undefined, 122],
    ['fd00::/120', undefined, 122],
    ['fd00::/124', undefined, 124],
  ])('pool %s with blockSize %s is cut into /%i blocks', (cidr, blockSize, expected) => {
    expect(effectiveBlockSize(parseCidr(cidr), blockSize)).toBe(expected);
  });

  it.each([
    ['10.0.3.77', 26, '10.0.3.64/26'],
    ['10.0.3.77', 28, '10.0.3.64/28'],
    ['10.0.3.77', 32, '10.0.3.77/32'],
    ['fd00::1:7f', 122, 'fd00::1:40/122'],
    ['fd00::1:7f', 128, 'fd00::1:7f/128'],
  ])('address %s lies in the /%i block %s', (ip, size, block) => {
    expect(formatCidr(blockContaining(parseIp(ip), size))).toBe(block);
  });

  it.each([
    ['10.0.0.0/16', 19, 'must be between 20 and 32'],
    ['10.0.0.0/24', 23, 'must be between 24 and 32'],
    ['fd00::/64', 112, 'must be between 116 and 128'],
  ])('rejects pool %s with blockSize %i (%s)', (cidr, blockSize, message) => {
    expect(() => parseResource(pool('p', cidr, { blockSize }), 'IPPool')).toThrow(message);
  });

  it('accepts the largest allowed blocks', () => {
    expect(() => parseResource(pool('p', '10.0.0.0/8', { blockSize: 20 }), 'IPPool')).not.toThrow();
    expect(() => parseResource(pool('p', 'fd00::/48', { blockSize: 116 }), 'IPPool')).not.toThrow();
  });
});

describe('free offset search', () => {
  const c = parseCidr('10.0.0.0/30');
  const alloc = { handle: 'h' };
  it.each([
    [[], 0, 0],
    [[0], 0, 1],
    [[0, 1], 1, 2],
    [[2], 2, 3],
    [[3], 3, 0],
    [[0, 1, 3], 3, 2],
    [[0, 1, 2, 3], 0, undefined],
  ])('with %j taken, searching from %i finds %s', (taken, from, expected) => {
    let b = newBlock(c, 'p', 'n1');
    for (const o of taken) b = withAllocation(b, o, alloc);
    expect(freeOffset(b, c, from)).toBe(expected);
  });
});
