// The hand-written rtnetlink codec agrees byte for byte with the `netlink` package's generic codec.
import { describe, expect, it } from 'vitest';
import { AttrStream, parseMessages, rt } from 'netlink';
import {
  MAX_ROUTE_REQUEST_LEN,
  NLM_F,
  RTM,
  RTN,
  RT_SCOPE,
  decodeLink,
  decodeRoute,
  errorCode,
  splitMessages,
  writeRouteRequest,
  type KernelRoute,
} from '../../../kernel/netlink/codec.js';

const concat = (bufs: Uint8Array[]): Buffer => Buffer.concat(bufs.map((b) => Buffer.from(b)));

const podRoute: KernelRoute = {
  family: 4,
  dst: Buffer.from([10, 0, 0, 5]),
  dstLen: 32,
  table: 254,
  protocol: 90,
  scope: RT_SCOPE.LINK,
  type: RTN.UNICAST,
  tos: 0,
  flags: 0,
  oif: 7,
  gateway: undefined,
  priority: 0,
};

const bgpRoute6: KernelRoute = {
  family: 6,
  dst: Buffer.from('fd000000000000000000000000010000', 'hex'),
  dstLen: 122,
  table: 1000,
  protocol: 92,
  scope: RT_SCOPE.UNIVERSE,
  type: RTN.UNICAST,
  tos: 0,
  flags: 0,
  oif: 3,
  gateway: Buffer.from('fe800000000000000000000000000001', 'hex'),
  priority: 1024,
};

function encode(op: 'add' | 'replace' | 'delete', route: KernelRoute, seq: number, ack: boolean): Buffer {
  const buf = Buffer.alloc(MAX_ROUTE_REQUEST_LEN);
  return buf.subarray(0, writeRouteRequest(buf, 0, op, route, seq, ack));
}

describe('rtnetlink route requests', () => {
  it('an add request parses with the netlink package into the same route, with CREATE|EXCL and no ACK', () => {
    const [msg] = parseMessages(encode('add', podRoute, 42, false));
    expect(msg!.type).toBe(RTM.NEWROUTE);
    expect(msg!.seq).toBe(42);
    expect(msg!.flags).toBe(NLM_F.REQUEST | NLM_F.CREATE | NLM_F.EXCL);
    const parsed = rt.parseRouteMessage(msg!.data);
    expect(parsed.data).toMatchObject({
      family: 2,
      dstLen: 32,
      table: 254,
      protocol: 90,
      scope: 'LINK',
      type: 'UNICAST',
    });
    expect(parsed.attrs.dst).toEqual(podRoute.dst);
    expect(parsed.attrs.oif).toBe(7);
    expect(parsed.attrs.table).toBe(254);
    expect(parsed.attrs.gateway).toBeUndefined();
  });

  it('a replace request of an IPv6 gateway route in a table above 255 carries RTA_TABLE, gateway and metric', () => {
    const [msg] = parseMessages(encode('replace', bgpRoute6, 7, true));
    expect(msg!.flags).toBe(NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE);
    const parsed = rt.parseRouteMessage(msg!.data);
    expect(parsed.data).toMatchObject({ family: 10, dstLen: 122, table: 0, protocol: 92 });
    expect(parsed.attrs).toMatchObject({ table: 1000, oif: 3, priority: 1024 });
    expect(parsed.attrs.gateway).toEqual(bgpRoute6.gateway);
    expect(parsed.attrs.dst).toEqual(bgpRoute6.dst);
  });

  it('a delete request matches any scope and type but only our protocol, and names no interface', () => {
    const [msg] = parseMessages(encode('delete', podRoute, 9, false));
    expect(msg!.type).toBe(RTM.DELROUTE);
    const parsed = rt.parseRouteMessage(msg!.data);
    expect(parsed.data).toMatchObject({ protocol: 90, scope: 'NOWHERE', type: 'UNSPEC' });
    expect(parsed.attrs.oif).toBeUndefined();
  });

  it('several requests written back to back split into the same sequence of messages', () => {
    const buf = Buffer.alloc(3 * MAX_ROUTE_REQUEST_LEN);
    let off = writeRouteRequest(buf, 0, 'add', podRoute, 1, false);
    off = writeRouteRequest(buf, off, 'replace', bgpRoute6, 2, false);
    off = writeRouteRequest(buf, off, 'delete', podRoute, 3, true);
    const ours = splitMessages(buf.subarray(0, off));
    const theirs = parseMessages(buf.subarray(0, off));
    expect(ours.map((m) => [m.type, m.seq, m.flags])).toEqual(theirs.map((m) => [m.type, m.seq, m.flags]));
    expect(ours.map((m) => m.payload.length)).toEqual(theirs.map((m) => m.data.length));
  });
});

describe('rtnetlink decoding', () => {
  it('decodes a route formatted by the netlink package, including a table id above 255', () => {
    const out = new AttrStream();
    rt.formatRouteMessage(
      {
        kind: 'route',
        data: {
          family: 10,
          dstLen: 122,
          table: 0,
          protocol: 92 as rt.RouteProtocol,
          scope: 'UNIVERSE',
          type: 'UNICAST',
        },
        attrs: { dst: bgpRoute6.dst, gateway: bgpRoute6.gateway, oif: 3, priority: 1024, table: 1000 },
      },
      out,
    );
    expect(decodeRoute(concat(out.bufs))).toEqual({ ...bgpRoute6, flags: 0 });
  });

  it('decodes a blackhole default-length route without RTA_OIF as oif 0', () => {
    const out = new AttrStream();
    rt.formatRouteMessage(
      {
        kind: 'route',
        data: { family: 2, dstLen: 26, table: 254, protocol: 91 as rt.RouteProtocol, type: 'BLACKHOLE' },
        attrs: { dst: Buffer.from([10, 0, 0, 64]) },
      },
      out,
    );
    expect(decodeRoute(concat(out.bufs))).toMatchObject({
      family: 4,
      dstLen: 26,
      type: RTN.BLACKHOLE,
      oif: 0,
      protocol: 91,
    });
  });

  it('ignores routes of other address families', () => {
    const out = new AttrStream();
    rt.formatRouteMessage({ kind: 'route', data: { family: 28, dstLen: 0 }, attrs: {} }, out);
    expect(decodeRoute(concat(out.bufs))).toBeUndefined();
  });

  it('decodes a link name, index and up flag', () => {
    const out = new AttrStream();
    rt.formatLinkMessage(
      { kind: 'link', data: { index: 12, flags: { up: true } }, attrs: { ifname: 'tern0123456789a' } },
      out,
    );
    expect(decodeLink(concat(out.bufs))).toEqual({ index: 12, name: 'tern0123456789a', up: true });
  });

  it('reads the errno of an NLMSG_ERROR payload as a positive number', () => {
    const payload = Buffer.alloc(20);
    payload.writeInt32LE(-17, 0);
    expect(errorCode(payload)).toBe(17);
  });
});
