// Our next hops per family towards a peer, and which received next hop the agent installs.
import type os from 'node:os';
import { describe, expect, it } from 'vitest';
import { installableNextHop, localNextHops } from '../../../bgp/next-hop.js';

const info = (address: string, cidr: string): os.NetworkInterfaceInfo =>
  (address.includes(':')
    ? { address, cidr, family: 'IPv6', internal: false, mac: '', netmask: '', scopeid: 0 }
    : { address, cidr, family: 'IPv4', internal: false, mac: '', netmask: '' }) as os.NetworkInterfaceInfo;

const IFS = {
  eth0: [info('10.0.0.1', '10.0.0.1/24'), info('fd00::1', 'fd00::1/64'), info('fe80::1', 'fe80::1/64')],
  eth1: [info('10.1.0.1', '10.1.0.1/24')],
};

describe('localNextHops', () => {
  it('over IPv4 uses the configured IPv6 address for IPv6 routes, before the interface’s own', () => {
    expect(localNextHops('10.0.0.1', '10.0.0.2', { ipv6: 'fd99::1' }, IFS)).toEqual({
      ipv4: '10.0.0.1',
      ipv6: 'fd99::1',
      interface: 'eth0',
    });
    expect(localNextHops('10.0.0.1', '10.0.0.2', {}, IFS).ipv6).toBe('fd00::1');
  });

  it('over IPv4 falls back to the IPv4-mapped address only when no IPv6 address exists', () => {
    expect(localNextHops('10.1.0.1', '10.1.0.2', {}, IFS).ipv6).toBe('::ffff:10.1.0.1');
  });

  it('over IPv6 to an on-link peer adds our link-local address and names the interface', () => {
    expect(localNextHops('fd00::1', 'fd00::2', {}, IFS)).toEqual({
      ipv4: '10.0.0.1',
      ipv6: 'fd00::1',
      linkLocal: 'fe80::1',
      interface: 'eth0',
    });
  });

  it('over IPv6 to a peer off the link sends the global next hop only', () => {
    expect(localNextHops('fd00::1', 'fd77::9', { ipv4: '10.9.9.9' }, IFS)).toEqual({
      ipv4: '10.9.9.9',
      ipv6: 'fd00::1',
      interface: 'eth0',
    });
  });
});

describe('installableNextHop', () => {
  it('installs the global next hop when it is usable, even with a link-local one', () => {
    expect(installableNextHop('fd00::2', 'fe80::2', 'eth0')).toEqual({ via: 'fd00::2' });
    expect(installableNextHop('10.0.0.2', undefined, undefined)).toEqual({ via: '10.0.0.2' });
  });

  it('installs the link-local next hop with the session’s device when it is the only usable one', () => {
    expect(installableNextHop('::', 'fe80::2', 'eth0')).toEqual({ via: 'fe80::2', dev: 'eth0' });
    expect(installableNextHop('fe80::2', undefined, 'eth0')).toEqual({ via: 'fe80::2', dev: 'eth0' });
  });

  it('installs nothing for a link-local next hop without a device, or an IPv4-mapped one', () => {
    expect(installableNextHop('fe80::2', undefined, undefined)).toBeUndefined();
    expect(installableNextHop('::ffff:a00:1', undefined, 'eth0')).toBeUndefined();
  });
});
