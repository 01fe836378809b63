// The tern-bgp daemon's configuration file (YAML or JSON), parsed at the edge into typed options.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../../model/errors.js';
import { BFD_INTERVAL_MS, BFD_MULTIPLIER } from '../bfd/options.js';
import type { Policy } from '../policy.js';
import type { OriginateAttributes, PeerOptions, SpeakerOptions } from '../speaker.js';

const asn = z.number().int().min(1).max(0xffffffff);
const ipv4 = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'must be an IPv4 address');
const seconds = z.number().int().min(0).max(65535);

const bfdInterval = z.number().int().min(BFD_INTERVAL_MS.min).max(BFD_INTERVAL_MS.max);
const bfd = z
  .object({
    desiredMinTxMs: bfdInterval.optional(),
    requiredMinRxMs: bfdInterval.optional(),
    multiplier: z.number().int().min(BFD_MULTIPLIER.min).max(BFD_MULTIPLIER.max).optional(),
  })
  .strict();

const prefixMatch = z
  .object({ prefix: z.string(), ge: z.number().int().optional(), le: z.number().int().optional() })
  .strict();
const policy = z
  .object({
    rules: z.array(
      z
        .object({
          match: z
            .object({
              prefixes: z.array(prefixMatch).optional(),
              communities: z.array(z.string()).optional(),
            })
            .strict()
            .optional(),
          action: z.enum(['accept', 'reject']),
          set: z
            .object({
              addCommunities: z.array(z.string()).optional(),
              removeCommunities: z.array(z.string()).optional(),
              localPref: z.number().int().min(0).max(0xffffffff).optional(),
              med: z.number().int().min(0).max(0xffffffff).optional(),
              asPathPrepend: z
                .object({ asn, count: z.number().int().min(1).max(32) })
                .strict()
                .optional(),
            })
            .strict()
            .optional(),
        })
        .strict(),
    ),
    defaultAction: z.enum(['accept', 'reject']).optional(),
  })
  .strict();

const peer = z
  .object({
    address: z.string(),
    asn,
    localAddress: z.string().optional(),
    port: z.number().int().min(1).max(65535).optional(),
    passive: z.boolean().optional(),
    routeReflectorClient: z.boolean().optional(),
    holdTime: seconds.optional(),
    keepaliveTime: seconds.optional(),
    connectRetryTime: z.number().int().min(1).max(65535).optional(),
    nextHopSelf: z.boolean().optional(),
    gracefulRestart: z.boolean().optional(),
    /** BFD to the peer address (`{}`: defaults 300 ms / 300 ms / 3). */
    bfd: bfd.optional(),
    /** TCP MD5 key (RFC 2385): at most 80 bytes. */
    password: z
      .string()
      .min(1)
      .refine((p) => Buffer.byteLength(p, 'utf8') <= 80, 'must be at most 80 bytes (TCP MD5 key limit)')
      .optional(),
    /** GTSM (RFC 5082): maximum hops to the peer. */
    ttlSecurity: z.number().int().min(1).max(254).optional(),
    /** RFC 7313 (capability 70, BoRR/EoRR); on unless false. */
    enhancedRouteRefresh: z.boolean().optional(),
    importPolicy: policy.optional(),
    exportPolicy: policy.optional(),
  })
  .strict();

const originate = z.union([
  z.string(),
  z
    .object({
      prefix: z.string(),
      nextHop: z.string().optional(),
      origin: z.enum(['igp', 'egp', 'incomplete']).optional(),
      med: z.number().int().min(0).optional(),
      localPref: z.number().int().min(0).optional(),
      communities: z.array(z.string()).optional(),
    })
    .strict(),
]);

const configSchema = z
  .object({
    asn,
    routerId: ipv4,
    clusterId: ipv4.optional(),
    listen: z
      .union([
        z.literal(false),
        z
          .object({ host: z.string().optional(), port: z.number().int().min(0).max(65535).optional() })
          .strict(),
      ])
      .optional(),
    gracefulRestart: z
      .union([
        z.literal(false),
        z
          .object({
            restartTime: z.number().int().min(1).max(4095).optional(),
            forwardingState: z.boolean().optional(),
            notification: z.boolean().optional(),
            restarting: z.boolean().optional(),
            selectionDeferralTime: z.number().positive().optional(),
            stalePathTime: z.number().positive().optional(),
          })
          .strict(),
      ])
      .optional(),
    /** Next hops for the family a session's own address does not give (IPv6 routes over IPv4, …). */
    nextHops: z.object({ ipv4: z.string().optional(), ipv6: z.string().optional() }).strict().optional(),
    /** Seconds to wait for a peer's EoRR after its BoRR before purging what it did not re-send. */
    refreshPurgeTime: z.number().positive().optional(),
    /** UDP port of BFD (default 3784). */
    bfdPort: z.number().int().min(1).max(65535).optional(),
    controlSocket: z.string().optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
    peers: z.array(peer).default([]),
    originate: z.array(originate).default([]),
  })
  .strict();

export interface DaemonConfig {
  readonly speaker: Omit<SpeakerOptions, 'logger'>;
  readonly controlSocket?: string;
  readonly logLevel: string;
  readonly peers: readonly PeerOptions[];
  readonly originate: readonly (OriginateAttributes & { readonly prefix: string })[];
}

/** Parses the text of a config file (YAML is a superset of JSON, so one parser reads both). */
export function parseDaemonConfig(text: string, source = 'config'): DaemonConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ValidationError(source, `not YAML/JSON: ${(err as Error).message}`);
  }
  const r = configSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ValidationError(`${source}: ${issue.path.join('.') || '(root)'}`, issue.message);
  }
  const c = r.data;
  return {
    speaker: {
      asn: c.asn,
      routerId: c.routerId,
      ...(c.clusterId ? { clusterId: c.clusterId } : {}),
      ...(c.listen !== undefined ? { listen: c.listen } : {}),
      ...(c.gracefulRestart !== undefined ? { gracefulRestart: c.gracefulRestart } : {}),
      ...(c.bfdPort !== undefined ? { bfd: { port: c.bfdPort } } : {}),
      ...(c.nextHops ? { nextHops: c.nextHops } : {}),
      ...(c.refreshPurgeTime !== undefined ? { refreshPurgeTime: c.refreshPurgeTime } : {}),
    },
    ...(c.controlSocket ? { controlSocket: c.controlSocket } : {}),
    logLevel: c.logLevel ?? 'info',
    peers: c.peers.map((p) => ({
      ...p,
      importPolicy: p.importPolicy as Policy | undefined,
      exportPolicy: p.exportPolicy as Policy | undefined,
    })),
    originate: c.originate.map((o) => (typeof o === 'string' ? { prefix: o } : o)),
  };
}
