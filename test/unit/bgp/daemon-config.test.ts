// tern-bgp config parsing, and the tables `ternctl bgp peers|rib` print.
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../model/errors.js';
import { parseDaemonConfig } from '../../../bgp/daemon/config.js';
import { formatPeersTable, formatRibTable } from '../../../bgp/daemon/control-client.js';
import type { PeerStatus, RibEntry } from '../../../bgp/speaker.js';

describe('parseDaemonConfig', () => {
  it('reads YAML with peers, timers, policy and prefixes to originate', () => {
    const c = parseDaemonConfig(`
asn: 65001
routerId: 10.0.0.1
listen: { port: 1179 }
peers:
  - { address: 10.0.0.2, asn: 65002, passive: true, holdTime: 9 }
  - address: 10.0.0.3
    asn: 65001
    routeReflectorClient: true
    exportPolicy: { rules: [{ match: { prefixes: [{ prefix: 10.0.0.0/8, le: 24 }] }, action: accept }], defaultAction: reject }
originate: [10.1.0.0/24, { prefix: 10.2.0.0/24, communities: ['65001:1'] }]
`);
    expect(c.speaker).toEqual({ asn: 65001, routerId: '10.0.0.1', listen: { port: 1179 } });
    expect(c.peers[0]).toMatchObject({ address: '10.0.0.2', passive: true, holdTime: 9 });
    expect(c.peers[1]?.exportPolicy?.defaultAction).toBe('reject');
    expect(c.originate).toEqual([
      { prefix: '10.1.0.0/24' },
      { prefix: '10.2.0.0/24', communities: ['65001:1'] },
    ]);
  });

  it('reads JSON too, and names the offending field of a bad config', () => {
    expect(parseDaemonConfig('{"asn": 65001, "routerId": "10.0.0.1"}').peers).toEqual([]);
    expect(() =>
      parseDaemonConfig(
        '{"asn": 65001, "routerId": "10.0.0.1", "peers": [{"address": "10.0.0.2"}]}',
        'f.json',
      ),
    ).toThrow(/f\.json: peers\.0\.asn/);
    expect(() => parseDaemonConfig('asn: 0\nrouterId: 10.0.0.1')).toThrow(ValidationError);
    expect(() => parseDaemonConfig('asn: 1\nrouterId: 10.0.0.1\nbogus: 1')).toThrow(/bogus|Unrecognized/);
  });
});

describe('table formatting', () => {
  it('prints one aligned line per peer with state, BFD state and detection time, uptime, counts and last error', () => {
    const peers: PeerStatus[] = [
      {
        address: '10.0.0.2',
        asn: 65002,
        type: 'ebgp',
        state: 'Established',
        since: '',
        uptime: 3725,
        passive: false,
        routeReflectorClient: false,
        prefixesReceived: 12,
        prefixesAccepted: 10,
        prefixesAdvertised: 3,
      },
      {
        address: '10.0.0.3',
        asn: 65001,
        type: 'ibgp',
        state: 'Active',
        since: '',
        passive: true,
        routeReflectorClient: true,
        prefixesReceived: 0,
        prefixesAccepted: 0,
        prefixesAdvertised: 0,
        lastError: 'hold timer expired',
        bfd: {
          peer: '10.0.0.3',
          since: '',
          state: 'Down',
          remoteState: 'Down',
          diagnostic: 'control detection time expired',
          localDiscriminator: 1,
          remoteDiscriminator: 0,
          detectionTimeMs: 900,
          multiplier: 3,
          remoteDemand: false,
        },
      },
    ];
    const lines = formatPeersTable(peers).split('\n');
    expect(lines[0]).toMatch(
      /^PEER\s+ASN\s+TYPE\s+STATE\s+BFD\s+UPTIME\s+RECEIVED\s+ACCEPTED\s+ADVERTISED\s+LAST ERROR$/,
    );
    expect(lines[1]).toMatch(/^10\.0\.0\.2\s+65002\s+ebgp\s+Established\s+-\s+01:02:05\s+12\s+10\s+3$/);
    expect(lines[2]).toMatch(/ibgp rr-client\s+Active\s+Down 900ms\s+-\s+0\s+0\s+0\s+hold timer expired$/);
    expect(lines[1]!.indexOf('65002')).toBe(lines[0]!.indexOf('ASN'));
  });

  it('prints RIB paths with the best one starred', () => {
    const rib: RibEntry[] = [
      {
        prefix: '10.1.0.0/24',
        paths: [
          {
            best: true,
            peer: '10.0.0.2',
            source: 'ebgp',
            nextHop: '10.0.0.2',
            asPath: [65002],
            asPathText: '65002',
            origin: 'igp',
            communities: ['65002:1'],
          },
          { best: false, source: 'local', asPath: [], asPathText: '', origin: 'igp', localPref: 100 },
        ],
      },
    ];
    const lines = formatRibTable(rib).split('\n');
    expect(lines[1]).toMatch(/^10\.1\.0\.0\/24\s+\*\s+10\.0\.0\.2\s+10\.0\.0\.2\s+65002\s+igp\s+65002:1$/);
    expect(lines[2]).toMatch(/^\s+-\s+local\s+-\s+igp\s+100$/);
  });
});
