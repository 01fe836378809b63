import { describe, expect, it } from 'vitest';
import { parseNetlinkTable } from '../../../kernel/netlink/overrun-guard.js';

const TABLE = `sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
0000000066a95037 0   0          00000000 0        0        0     2        0        4
00000000aa000001 9   4711       00000000 0        0        0     2        7        900
00000000aa000002 0   4711       00000511 0        0        0     2        12       901
00000000aa000003 0   4712       00000000 0        0        0     2        0        902
`;

describe('parseNetlinkTable', () => {
  it('finds the rtnetlink (Eth 0) socket of a port and reads its drops and inode', () => {
    expect(parseNetlinkTable(TABLE, 4711)).toEqual({ drops: 12, inode: 901 });
    expect(parseNetlinkTable(TABLE, 4712)).toEqual({ drops: 0, inode: 902 });
  });

  it('answers undefined for a port with no rtnetlink socket', () => {
    expect(parseNetlinkTable(TABLE, 5000)).toBeUndefined();
    expect(parseNetlinkTable('', 4711)).toBeUndefined();
  });
});
