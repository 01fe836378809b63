// tern-bgp's configuration reload (SIGHUP): peers and originated prefixes follow the new file
// without touching the sessions that did not change; speaker-wide settings need a restart.
import { isDeepStrictEqual } from 'node:util';
import type { DaemonConfig } from './config.js';
import type { BgpSpeaker } from '../speaker.js';

export interface ReloadSummary {
  added: string[];
  removed: string[];
  updated: string[];
  originated: string[];
  withdrawn: string[];
  /** Speaker-wide settings that changed but apply only at the next start. */
  needsRestart: boolean;
}

type ReloadTarget = Pick<BgpSpeaker, 'addPeer' | 'removePeer' | 'updatePeer' | 'originate' | 'withdraw'>;

export function applyReload(speaker: ReloadTarget, before: DaemonConfig, after: DaemonConfig): ReloadSummary {
  const summary: ReloadSummary = {
    added: [],
    removed: [],
    updated: [],
    originated: [],
    withdrawn: [],
    needsRestart: !isDeepStrictEqual(before.speaker, after.speaker),
  };
  const oldPeers = new Map(before.peers.map((p) => [p.address, p]));
  const newPeers = new Map(after.peers.map((p) => [p.address, p]));
  for (const [address, p] of newPeers) {
    const old = oldPeers.get(address);
    if (!old) {
      speaker.addPeer(p);
      summary.added.push(address);
    } else if (!isDeepStrictEqual(old, p)) {
      // The speaker decides what the change costs: a policy change is a route refresh, a
      // transport change (password, port, …) a new session.
      speaker.updatePeer(p);
      summary.updated.push(address);
    }
  }
  for (const address of oldPeers.keys()) {
    if (newPeers.has(address)) continue;
    speaker.removePeer(address);
    summary.removed.push(address);
  }
  const oldRoutes = new Map(before.originate.map((o) => [o.prefix, o]));
  const newRoutes = new Map(after.originate.map((o) => [o.prefix, o]));
  for (const [prefix, { prefix: _, ...attrs }] of newRoutes) {
    if (isDeepStrictEqual(oldRoutes.get(prefix), newRoutes.get(prefix))) continue;
    speaker.originate(prefix, attrs);
    summary.originated.push(prefix);
  }
  for (const prefix of oldRoutes.keys()) {
    if (newRoutes.has(prefix)) continue;
    speaker.withdraw(prefix);
    summary.withdrawn.push(prefix);
  }
  return summary;
}
