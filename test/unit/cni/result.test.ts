import { describe, expect, it } from 'vitest';
import { encodeResult, mergeResults, parsePrevResult, type CniResult } from '../../../cni/result.js';

const ours: CniResult = {
  interfaces: [
    { name: 'tern0123456789a', mac: 'ee:ee:ee:ee:ee:ee', mtu: 1450 },
    { name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1450, sandbox: '/var/run/netns/p' },
  ],
  ips: [
    { address: '10.0.0.5/32', gateway: '169.254.1.1', interface: 1 },
    { address: 'fd00::5/128', gateway: 'fe80::ecee:eeff:feee:eeee', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }],
};

describe('results in the request version (checklist E)', () => {
  it.each(['0.3.0', '0.3.1', '0.4.0'] as const)('%s: ips carry "version", interfaces carry no mtu', (v) => {
    const r = JSON.parse(encodeResult(ours, v));
    expect(r.cniVersion).toBe(v);
    expect(r.ips.map((ip: { version: string }) => ip.version)).toEqual(['4', '6']);
    expect(r.interfaces.every((i: object) => !('mtu' in i))).toBe(true);
  });

  it('1.0.0: no ips[].version, no interface mtu', () => {
    const r = JSON.parse(encodeResult(ours, '1.0.0'));
    expect(r.ips.every((ip: object) => !('version' in ip))).toBe(true);
    expect(r.interfaces.every((i: object) => !('mtu' in i))).toBe(true);
  });

  it('1.1.0: interfaces carry mtu', () => {
    const r = JSON.parse(encodeResult(ours, '1.1.0'));
    expect(r.interfaces.map((i: { mtu: number }) => i.mtu)).toEqual([1450, 1450]);
  });

  it('the host veth has no sandbox, the container interface has CNI_NETNS verbatim, ips index the container interface', () => {
    const r = JSON.parse(encodeResult(ours, '1.0.0'));
    expect(r.interfaces[0].sandbox).toBeUndefined();
    expect(r.interfaces[1].sandbox).toBe('/var/run/netns/p');
    expect(r.ips.map((ip: { interface: number }) => ip.interface)).toEqual([1, 1]);
  });

  it('omits dns when empty and never emits an out-of-range interface index', () => {
    const r = JSON.parse(encodeResult({ ...ours, ips: [{ address: '10.0.0.5/32', interface: 2 }] }, '1.0.0'));
    expect('dns' in r).toBe(false);
    expect('interface' in r.ips[0]).toBe(false);
  });

  it('chaining: a previous result is kept and our ips are re-indexed after its interfaces', () => {
    const prev = parsePrevResult({
      cniVersion: '0.4.0',
      interfaces: [{ name: 'lo', sandbox: '/x' }],
      ips: [{ version: '4', address: '127.0.0.1/8', interface: 0 }],
      dns: { nameservers: ['1.1.1.1'] },
    });
    const merged = mergeResults(prev, ours);
    expect(merged.interfaces.map((i) => i.name)).toEqual(['lo', 'tern0123456789a', 'eth0']);
    expect(merged.ips.map((ip) => ip.interface)).toEqual([0, 2, 2]);
    expect(merged.dns).toEqual({ nameservers: ['1.1.1.1'] });
  });

  it('round-trips its own output through parsePrevResult (what DEL and CHECK receive)', () => {
    expect(parsePrevResult(JSON.parse(encodeResult(ours, '1.1.0')))).toEqual(ours);
  });

  it('rejects a prevResult whose ips are not objects', () => {
    expect(() => parsePrevResult({ ips: ['10.0.0.1'] })).toThrow(/prevResult.ips/);
  });
});
