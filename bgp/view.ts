// Plain-data views of routes for the API, the event stream and the control socket.
import type { Path } from './rib.js';
import { AsPathSegmentType } from './wire/constants.js';
import { formatCommunity } from './policy.js';
import type { AsPathSegment } from './wire/attributes.js';

export interface RouteView {
  readonly best: boolean;
  /** Peer address; undefined for locally originated routes. */
  readonly peer?: string;
  readonly source: 'local' | 'ibgp' | 'ebgp';
  readonly nextHop?: string;
  readonly linkLocalNextHop?: string;
  /** AS_SEQUENCE members in order; AS_SET members in braces in `asPathText`. */
  readonly asPath: readonly number[];
  readonly asPathText: string;
  readonly origin: 'igp' | 'egp' | 'incomplete';
  readonly med?: number;
  readonly localPref?: number;
  readonly communities?: readonly string[];
  readonly largeCommunities?: readonly string[];
  readonly originatorId?: string;
  readonly clusterList?: readonly string[];
}

export function formatAsPath(path: readonly AsPathSegment[]): string {
  return path
    .map((s) =>
      s.type === AsPathSegmentType.AS_SET
        ? `{${s.asns.join(',')}}`
        : s.type === AsPathSegmentType.AS_SEQUENCE
          ? s.asns.join(' ')
          : `(${s.asns.join(' ')})`,
    )
    .join(' ');
}

const ORIGINS = ['igp', 'egp', 'incomplete'] as const;

export function toRouteView(p: Path, best: boolean): RouteView {
  const a = p.attrs;
  const v: Record<string, unknown> = {
    best,
    peer: p.source.kind === 'local' ? undefined : p.source.address,
    source: p.source.kind,
    nextHop: a.nextHop,
    linkLocalNextHop: a.linkLocalNextHop,
    asPath: a.asPath.filter((s) => s.type === AsPathSegmentType.AS_SEQUENCE).flatMap((s) => s.asns),
    asPathText: formatAsPath(a.asPath),
    origin: ORIGINS[a.origin],
    med: a.med,
    localPref: a.localPref,
    communities: a.communities?.map(formatCommunity),
    largeCommunities: a.largeCommunities?.map((c) => c.join(':')),
    originatorId: a.originatorId,
    clusterList: a.clusterList,
  };
  for (const k of Object.keys(v)) if (v[k] === undefined) delete v[k];
  return v as unknown as RouteView;
}
