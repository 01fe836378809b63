// Adj-RIB-Out of one Established session: what was advertised, what is pending, and UPDATE
// packing (prefixes with the same attributes share a message up to 4096 bytes). Sending
// follows the socket's back-pressure; End-of-RIB follows the initial table.
import type { Logger } from 'pino';
import type { Session, Negotiated } from './session.js';
import { type PathAttributes } from './wire/attributes.js';
import {
  encodeMpReachHeader,
  encodeMpUnreachHeader,
  encodePathAttributes,
} from './wire/attributes-encode.js';
import { Afi, HEADER_LENGTH, MAX_MESSAGE_LENGTH, RouteRefreshSubtype } from './wire/constants.js';
import { type AfiSafi, encodeEndOfRib, encodeRouteRefresh, encodeUpdate } from './wire/messages.js';
import { familyOf, prefixWireLength, type PrefixKey, writePrefix } from './wire/prefix.js';

/** Pending changes handled per turn of the event loop, so that a big table never blocks it. */
const BATCH = 20_000;
const EMPTY = Buffer.alloc(0);
/** Room for the UPDATE's two length fields. */
const UPDATE_OVERHEAD = HEADER_LENGTH + 4;

export class AdjRibOut {
  private readonly advertised = new Map<PrefixKey, PathAttributes>();
  private readonly pending = new Map<PrefixKey, PathAttributes | null>();
  private scheduled = false;
  private closed = false;
  private endOfRib: readonly AfiSafi[] | undefined;
  /** Families whose re-advertisement (RFC 7313) ends with an EoRR once the queue is empty. */
  private endOfRefresh: AfiSafi[] = [];
  private readonly scratch = Buffer.allocUnsafe(MAX_MESSAGE_LENGTH);
  /** Messages sent (for tests and status). */
  updatesSent = 0;

  constructor(
    private readonly session: Session,
    private readonly negotiated: Negotiated,
    private readonly log: Logger,
  ) {}

  get advertisedCount(): number {
    return this.advertised.size;
  }

  advertisedPrefixes(): PrefixKey[] {
    return [...this.advertised.keys()];
  }

  /** The family a route's next hop can be sent for on this session, if any. */
  nextHopFamily(a: PathAttributes): 4 | 6 | undefined {
    if (!a.nextHop) return undefined;
    const fam = a.nextHop.includes(':') ? 6 : 4;
    const afi = fam === 4 ? Afi.IPV4 : Afi.IPV6;
    return this.negotiated.families.some((f) => f.afi === afi) ? fam : undefined;
  }

  /** Queues `prefix` to be announced with `attrs` (null: withdrawn). `force` resends an unchanged route. */
  set(prefix: PrefixKey, attrs: PathAttributes | null, force = false): void {
    if (this.closed || (attrs === null && this.advertised.size === 0 && this.pending.size === 0)) return;
    const current = this.pending.has(prefix)
      ? this.pending.get(prefix)
      : (this.advertised.get(prefix) ?? null);
    if (current === attrs && !force) return;
    if (force && attrs) this.advertised.delete(prefix);
    this.pending.set(prefix, attrs);
    this.schedule();
  }

  sendEndOfRibAfterInitialSync(families: readonly AfiSafi[]): void {
    this.endOfRib = families;
    this.schedule();
  }

  routeRefresh(f: AfiSafi): void {
    this.session.send(encodeRouteRefresh(f.afi, f.safi));
  }

  /** RFC 7313: BoRR goes out now, before the re-advertised routes queued after this call. */
  beginRefresh(f: AfiSafi): void {
    if (this.closed) return;
    this.session.send(encodeRouteRefresh(f.afi, f.safi, RouteRefreshSubtype.BORR));
  }

  /** RFC 7313: EoRR follows the last queued change (the re-advertisement). */
  endRefreshAfterFlush(f: AfiSafi): void {
    if (this.closed) return;
    this.endOfRefresh.push(f);
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.pending.clear();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    if (this.closed) return;
    if (!this.session.writable) {
      this.scheduled = true;
      this.session.onDrain(() => this.flush());
      return;
    }
    const w4: PrefixKey[] = [];
    const w6: PrefixKey[] = [];
    const groups = new Map<PathAttributes, PrefixKey[]>();
    let n = 0;
    for (const [prefix, attrs] of this.pending) {
      if (n++ >= BATCH) break;
      this.pending.delete(prefix);
      if (attrs === null) {
        if (!this.advertised.delete(prefix)) continue;
        (familyOf(prefix) === 4 ? w4 : w6).push(prefix);
      } else {
        if (this.advertised.get(prefix) === attrs) continue;
        this.advertised.set(prefix, attrs);
        let g = groups.get(attrs);
        if (!g) groups.set(attrs, (g = []));
        g.push(prefix);
      }
    }
    this.sendWithdrawals(w4, w6);
    for (const [attrs, prefixes] of groups) this.sendAnnouncements(attrs, prefixes);
    if (this.pending.size) {
      this.schedule();
    } else {
      if (this.endOfRib) for (const f of this.endOfRib) this.send(encodeEndOfRib(f));
      this.endOfRib = undefined;
      for (const f of this.endOfRefresh.splice(0))
        this.session.send(encodeRouteRefresh(f.afi, f.safi, RouteRefreshSubtype.EORR));
    }
  }

  private send(msg: Buffer): void {
    this.updatesSent++;
    this.session.send(msg);
  }

  /** Packs `prefixes` into the scratch buffer, at most `room` bytes per call of `emit`. */
  private pack(prefixes: readonly PrefixKey[], room: number, emit: (nlri: Buffer) => void): void {
    let off = 0;
    for (const p of prefixes) {
      if (off + prefixWireLength(p) > room) {
        emit(Buffer.from(this.scratch.subarray(0, off)));
        off = 0;
      }
      off = writePrefix(p, this.scratch, off);
    }
    if (off) emit(Buffer.from(this.scratch.subarray(0, off)));
  }

  private sendWithdrawals(w4: PrefixKey[], w6: PrefixKey[]): void {
    this.pack(w4, MAX_MESSAGE_LENGTH - UPDATE_OVERHEAD, (nlri) =>
      this.send(encodeUpdate(nlri, EMPTY, EMPTY)),
    );
    this.pack(w6, MAX_MESSAGE_LENGTH - UPDATE_OVERHEAD - 7, (nlri) =>
      this.send(
        encodeUpdate(EMPTY, Buffer.concat([encodeMpUnreachHeader(Afi.IPV6, nlri.length), nlri]), EMPTY),
      ),
    );
  }

  private sendAnnouncements(attrs: PathAttributes, prefixes: PrefixKey[]): void {
    const ctx = { fourOctetAs: this.negotiated.fourOctetAs };
    const v4 = prefixes.filter((p) => typeof p === 'number');
    const v6 = prefixes.filter((p) => typeof p === 'string');
    if (v4.length) {
      const bytes = encodePathAttributes(attrs, ctx, true);
      const room = MAX_MESSAGE_LENGTH - UPDATE_OVERHEAD - bytes.length;
      if (room < 5) return this.tooBig(v4.length);
      this.pack(v4, room, (nlri) => this.send(encodeUpdate(EMPTY, bytes, nlri)));
    }
    if (v6.length && attrs.nextHop) {
      const bytes = encodePathAttributes(attrs, ctx, false);
      const header = encodeMpReachHeader(Afi.IPV6, attrs.nextHop, attrs.linkLocalNextHop, 300);
      const room = MAX_MESSAGE_LENGTH - UPDATE_OVERHEAD - bytes.length - header.length;
      if (room < 17) return this.tooBig(v6.length);
      this.pack(v6, room, (nlri) => {
        const mp = encodeMpReachHeader(Afi.IPV6, attrs.nextHop!, attrs.linkLocalNextHop, nlri.length);
        this.send(encodeUpdate(EMPTY, Buffer.concat([bytes, mp, nlri]), EMPTY));
      });
    }
  }

  private tooBig(count: number): void {
    this.log.warn({ count }, 'attributes too large for one UPDATE; routes not advertised');
  }
}
