// Where per-peer TCP MD5 / GTSM settings enter: the tern-bgp config file, the BGPPeer resource,
// and the agent's desired peers; and the dual-stack listener's key for an IPv4 peer (v4-mapped).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../../../bgp/daemon/config.js';
import { fdOf, secureConnect, setMd5Key } from '../../../native/tcp-security.js';
import { clusterSettings, desiredPeers, type BgpNode } from '../../../felix/bgp-peers.js';
import { parseResource } from '../../../model/index.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('configuration', () => {
  it('tern-bgp reads password and ttlSecurity per peer and rejects keys over 80 bytes and hops outside 1..254', () => {
    const base = 'asn: 65001\nrouterId: 10.0.0.1\npeers:\n';
    const c = parseDaemonConfig(
      `${base}  - { address: 10.0.0.2, asn: 65002, password: s3cret, ttlSecurity: 1 }`,
    );
    expect(c.peers[0]).toMatchObject({ password: 's3cret', ttlSecurity: 1 });
    expect(() =>
      parseDaemonConfig(`${base}  - { address: 10.0.0.2, asn: 65002, password: ${'é'.repeat(41)} }`),
    ).toThrow(/peers\.0\.password.*80 bytes/);
    expect(() => parseDaemonConfig(`${base}  - { address: 10.0.0.2, asn: 65002, ttlSecurity: 255 }`)).toThrow(
      /peers\.0\.ttlSecurity/,
    );
    expect(() => parseDaemonConfig(`${base}  - { address: 10.0.0.2, asn: 65002, password: '' }`)).toThrow(
      /peers\.0\.password/,
    );
  });

  it('a BGPPeer carries ttlSecurity (1..254) and the agent passes password and ttlSecurity to the peer it wants', () => {
    const peer = parseResource(
      {
        apiVersion: 'tern.network/v1',
        kind: 'BGPPeer',
        metadata: { name: 'tor' },
        spec: { peerIP: '10.0.0.254', asNumber: 65100, password: 'k', ttlSecurity: 1 },
      },
      'BGPPeer',
    );
    expect(() =>
      parseResource({
        apiVersion: 'tern.network/v1',
        kind: 'BGPPeer',
        metadata: { name: 'tor' },
        spec: { peerIP: '10.0.0.254', asNumber: 65100, ttlSecurity: 0 },
      }),
    ).toThrow(/ttlSecurity/);
    const self: BgpNode = { name: 'n1', ipv4: '10.0.0.1', asn: 64512, labels: {} };
    const [wanted] = desiredPeers(self, [self], [peer], clusterSettings(undefined));
    expect(wanted).toMatchObject({ address: '10.0.0.254', password: 'k', ttlSecurity: 1 });
  });
});

describe('dual-stack listener', () => {
  it('holds an IPv4 peer key as v4-mapped: the signed connect from that peer is accepted', async () => {
    const server = net.createServer((s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '::', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    setMd5Key(fdOf(server), '127.0.4.21', 'dual');
    setMd5Key(fdOf(server), '::1', 'six');
    const port = (server.address() as net.AddressInfo).port;
    for (const [host, localAddress, md5Key] of [
      ['127.0.0.1', '127.0.4.21', 'dual'],
      ['::1', '::1', 'six'],
    ] as const) {
      const sock = await secureConnect({ host, port, localAddress, md5Key, timeoutMs: 5000 }).socket;
      cleanups.push(() => sock.destroy());
      expect(await new Promise<string>((r) => sock.once('data', (d) => r(String(d))))).toBe('ok');
    }
  });
});
