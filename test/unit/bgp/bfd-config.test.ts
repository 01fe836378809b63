// BFD settings at every edge: the tern-bgp daemon config, the BGPPeer kind (and its CRD), the
// agent's pass-through from BGPPeer to the desired sessions, and the option resolver.
import { describe, expect, it } from 'vitest';
import { resolveBfdOptions } from '../../../bgp/bfd/options.js';
import { parseDaemonConfig } from '../../../bgp/daemon/config.js';
import { CRD_DEFS } from '../../../deploy/kubernetes/crds.js';
import { clusterSettings, desiredPeers } from '../../../felix/bgp-peers.js';
import { ValidationError, parseResource, type BGPPeer } from '../../../model/index.js';

const daemon = (peer: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  parseDaemonConfig(
    JSON.stringify({
      asn: 65001,
      routerId: '10.0.0.1',
      peers: [{ address: '10.0.0.2', asn: 65002, ...peer }],
      ...extra,
    }),
  );

function errorField(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof ValidationError) return err.field;
    throw err;
  }
  throw new Error('no error');
}

describe('BFD configuration', () => {
  it('daemon config: per-peer bfd and the BFD port reach the speaker options', () => {
    const c = daemon(
      { bfd: { desiredMinTxMs: 100, requiredMinRxMs: 200, multiplier: 5 } },
      { bfdPort: 13784 },
    );
    expect(c.peers[0]!.bfd).toEqual({ desiredMinTxMs: 100, requiredMinRxMs: 200, multiplier: 5 });
    expect(c.speaker.bfd).toEqual({ port: 13784 });
    expect(daemon({ bfd: {} }).peers[0]!.bfd).toEqual({});
    expect(daemon({}).peers[0]!.bfd).toBeUndefined();
  });

  it('daemon config: out-of-range or unknown bfd fields are refused with their path', () => {
    expect(errorField(() => daemon({ bfd: { desiredMinTxMs: 5 } }))).toBe(
      'config: peers.0.bfd.desiredMinTxMs',
    );
    expect(errorField(() => daemon({ bfd: { multiplier: 0 } }))).toBe('config: peers.0.bfd.multiplier');
    expect(errorField(() => daemon({ bfd: { echo: true } }))).toBe('config: peers.0.bfd');
  });

  it('defaults are 300 ms / 300 ms / 3, and the resolver checks bounds', () => {
    expect(resolveBfdOptions()).toEqual({ desiredMinTxMs: 300, requiredMinRxMs: 300, multiplier: 3 });
    expect(resolveBfdOptions({ multiplier: 1 })).toEqual({
      desiredMinTxMs: 300,
      requiredMinRxMs: 300,
      multiplier: 1,
    });
    expect(errorField(() => resolveBfdOptions({ requiredMinRxMs: 60_001 }))).toBe('bfd.requiredMinRxMs');
    expect(errorField(() => resolveBfdOptions({ multiplier: 1.5 }))).toBe('bfd.multiplier');
  });

  it('BGPPeer: spec.bfd parses, bad values are refused, and the CRD schema has the same bounds', () => {
    const obj = (bfd: unknown) => ({
      apiVersion: 'tern.network/v1',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: '10.0.0.254', asNumber: 65000, bfd },
    });
    expect(parseResource(obj({ desiredMinTxMs: 100, multiplier: 3 }), 'BGPPeer').spec.bfd).toEqual({
      desiredMinTxMs: 100,
      multiplier: 3,
    });
    expect(() => parseResource(obj({ requiredMinRxMs: 1 }), 'BGPPeer')).toThrow(/bfd/);
    const bfd = CRD_DEFS.find((c) => c.kind === 'BGPPeer')!.spec.properties!.bfd!;
    expect(bfd.properties).toMatchObject({
      desiredMinTxMs: { type: 'integer', minimum: 10, maximum: 60000 },
      requiredMinRxMs: { type: 'integer', minimum: 10, maximum: 60000 },
      multiplier: { type: 'integer', minimum: 1, maximum: 255 },
    });
  });

  it('agent: a BGPPeer bfd object is passed through to the desired session', () => {
    const self = { name: 'a', ipv4: '10.0.0.1', asn: 64512, labels: {} };
    const peer: BGPPeer = {
      apiVersion: 'tern.network/v1',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: '10.0.0.254', asNumber: 65000, bfd: { desiredMinTxMs: 100 } },
    };
    const [d] = desiredPeers(self, [self], [peer], clusterSettings(undefined));
    expect(d).toMatchObject({ address: '10.0.0.254', bfd: { desiredMinTxMs: 100 } });
  });
});
