// Client of the tern-bgp control socket, and the table formatting `ternctl bgp peers|rib` prints.
import { requestJson } from '../../model/local-api.js';
import type { OriginateAttributes, PeerStatus, RibEntry } from '../speaker.js';

export const DEFAULT_CONTROL_SOCKET = '/run/tern/bgp.sock';

function request<T>(
  socketPath: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  return requestJson<T>(socketPath, path, {
    method,
    ...(body === undefined ? {} : { body }),
    service: 'tern-bgp',
  });
}

export const getPeers = (socketPath = DEFAULT_CONTROL_SOCKET) =>
  request<PeerStatus[]>(socketPath, 'GET', '/peers');

export const getRib = (socketPath = DEFAULT_CONTROL_SOCKET, prefix?: string) =>
  request<RibEntry[]>(socketPath, 'GET', prefix ? `/rib?prefix=${encodeURIComponent(prefix)}` : '/rib');

export const originateRoute = (socketPath: string, prefix: string, attrs: OriginateAttributes = {}) =>
  request<{ ok: true }>(socketPath, 'POST', '/routes', { prefix, ...attrs });

export const withdrawRoute = (socketPath: string, prefix: string) =>
  request<{ ok: true }>(socketPath, 'DELETE', `/routes?prefix=${encodeURIComponent(prefix)}`);

/** Fixed-width text table; columns sized to their widest cell. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (c ?? '').padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function formatDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const hms = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return d ? `${d}d${hms}` : hms;
}

/** Like `birdc show protocols`: one line per peer. */
export function formatPeersTable(peers: readonly PeerStatus[]): string {
  return formatTable(
    ['PEER', 'ASN', 'TYPE', 'STATE', 'BFD', 'UPTIME', 'RECEIVED', 'ACCEPTED', 'ADVERTISED', 'LAST ERROR'],
    peers.map((p) => [
      p.address,
      String(p.asn),
      p.routeReflectorClient ? `${p.type} rr-client` : p.type,
      p.state,
      p.bfd
        ? `${p.bfd.state}${p.bfd.detectionTimeMs !== undefined ? ` ${p.bfd.detectionTimeMs}ms` : ''}`
        : '-',
      p.uptime !== undefined ? formatDuration(p.uptime) : '-',
      String(p.prefixesReceived),
      String(p.prefixesAccepted),
      String(p.prefixesAdvertised),
      p.lastError ?? '',
    ]),
  );
}

/** One line per path; `*` marks the best. */
export function formatRibTable(entries: readonly RibEntry[]): string {
  const rows: string[][] = [];
  for (const e of entries) {
    e.paths.forEach((p, i) => {
      rows.push([
        i === 0 ? e.prefix : '',
        p.best ? '*' : '',
        p.nextHop ?? '-',
        p.peer ?? 'local',
        p.asPathText || '-',
        p.origin,
        p.localPref !== undefined ? String(p.localPref) : '',
        p.med !== undefined ? String(p.med) : '',
        [...(p.communities ?? []), ...(p.largeCommunities ?? [])].join(' '),
      ]);
    });
  }
  return formatTable(
    ['PREFIX', 'BEST', 'NEXT HOP', 'FROM', 'AS PATH', 'ORIGIN', 'LOCPRF', 'MED', 'COMMUNITIES'],
    rows,
  );
}
