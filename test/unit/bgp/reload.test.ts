import { describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../../../bgp/daemon/config.js';
import { applyReload } from '../../../bgp/daemon/reload.js';

const config = (extra: string) => parseDaemonConfig(`asn: 65001\nrouterId: 10.0.0.1\n${extra}`, 'test.yaml');

function recorder() {
  const calls: string[] = [];
  return {
    calls,
    speaker: {
      addPeer: (p: { address: string }) => void calls.push(`add ${p.address}`),
      removePeer: (a: string) => void calls.push(`remove ${a}`),
      updatePeer: (p: { address: string }) => void calls.push(`update ${p.address}`),
      originate: (prefix: string) => void calls.push(`originate ${prefix}`),
      withdraw: (prefix: string) => void calls.push(`withdraw ${prefix}`),
    },
  };
}

describe('tern-bgp config reload', () => {
  it('touches only the peers and prefixes that changed', () => {
    const before = config(`peers:
  - { address: 10.0.0.2, asn: 65002 }
  - { address: 10.0.0.3, asn: 65003 }
  - { address: 10.0.0.4, asn: 65004 }
originate: [10.1.0.0/24, 10.2.0.0/24, { prefix: 10.3.0.0/24, med: 5 }]`);
    const after = config(`peers:
  - { address: 10.0.0.2, asn: 65002 }
  - { address: 10.0.0.3, asn: 65003, importPolicy: { rules: [{ action: reject }] } }
  - { address: 10.0.0.5, asn: 65005 }
originate: [10.1.0.0/24, { prefix: 10.3.0.0/24, med: 7 }, 10.4.0.0/24]`);
    const r = recorder();
    const summary = applyReload(r.speaker, before, after);
    expect(r.calls.sort()).toEqual(
      [
        'update 10.0.0.3',
        'add 10.0.0.5',
        'remove 10.0.0.4',
        'originate 10.3.0.0/24',
        'originate 10.4.0.0/24',
        'withdraw 10.2.0.0/24',
      ].sort(),
    );
    expect(summary).toMatchObject({ added: ['10.0.0.5'], removed: ['10.0.0.4'], updated: ['10.0.0.3'] });
    expect(summary.needsRestart).toBe(false);
  });

  it('reports speaker-wide changes as needing a restart and applies nothing for an unchanged file', () => {
    const r = recorder();
    const same = config('peers: [{ address: 10.0.0.2, asn: 65002 }]');
    expect(applyReload(r.speaker, same, same).needsRestart).toBe(false);
    expect(r.calls).toEqual([]);
    const moved = parseDaemonConfig('asn: 65009\nrouterId: 10.0.0.1\n', 'test.yaml');
    expect(applyReload(r.speaker, same, moved)).toMatchObject({ needsRestart: true, removed: ['10.0.0.2'] });
  });

  it('reads the new next-hop, refresh purge and enhanced route refresh settings', () => {
    const c = config(`nextHops: { ipv6: 'fd00::1' }
refreshPurgeTime: 30
peers: [{ address: 10.0.0.2, asn: 65002, enhancedRouteRefresh: false }]`);
    expect(c.speaker).toMatchObject({ nextHops: { ipv6: 'fd00::1' }, refreshPurgeTime: 30 });
    expect(c.peers[0]).toMatchObject({ enhancedRouteRefresh: false });
  });
});
