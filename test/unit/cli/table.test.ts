import { describe, expect, it } from 'vitest';
import { formatTable, parseOutputFormat } from '../../../cli/table.js';

describe('formatTable', () => {
  it('aligns columns under upper-case headers and leaves missing cells blank', () => {
    expect(formatTable([{ peer: '10.0.0.1', state: 'Established' }, { peer: '10.0.0.22' }])).toBe(
      ['PEER       STATE', '10.0.0.1   Established', '10.0.0.22'].join('\n'),
    );
  });
  it('rejects an unknown output format by name', () => {
    expect(() => parseOutputFormat('yaml')).toThrow('-o/--output: unknown format "yaml"');
    expect(parseOutputFormat(undefined)).toBe('table');
  });
});
