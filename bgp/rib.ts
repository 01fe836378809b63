// Route storage and the decision process. A Path is (source, interned attributes) and is itself
// interned per source, so a route costs one map slot in the Adj-RIB-In and one in the Loc-RIB.
import { asPathLength, type PathAttributes } from './wire/attributes.js';
import { encodePathAttributes } from './wire/attributes-encode.js';
import { AsPathSegmentType } from './wire/constants.js';
import { parseIpv4, type PrefixKey } from './wire/prefix.js';
import { parseIp } from '../model/cidr.js';
import { PrefixMap } from './prefix-map.js';

export type SourceKind = 'local' | 'ibgp' | 'ebgp';

/** Where routes come from: a peer, or the speaker itself. */
export class RouteSource {
  private readonly paths = new WeakMap<PathAttributes, Path>();
  /** BGP identifier of the peer (set when the session is up). */
  routerId = '0.0.0.0';
  routerIdNum = 0;
  readonly addressNum: bigint;

  constructor(
    readonly kind: SourceKind,
    readonly address: string,
    readonly asn: number,
    public rrClient = false,
  ) {
    this.addressNum = address ? parseIp(address).value : 0n;
  }

  setRouterId(id: string): void {
    this.routerId = id;
    this.routerIdNum = parseIpv4(id);
  }

  /** The one Path object for these (interned) attributes from this source. */
  path(attrs: PathAttributes): Path {
    let p = this.paths.get(attrs);
    if (!p) {
      p = new Path(this, attrs);
      this.paths.set(attrs, p);
    }
    return p;
  }
}

export class Path {
  constructor(
    readonly source: RouteSource,
    readonly attrs: PathAttributes,
  ) {}
}

/**
 * Attribute sets are interned: identical sets (by canonical encoding) share one frozen object.
 * Entries are held weakly so sets no route uses any more are collected.
 */
export class AttributeInterner {
  private readonly byKey = new Map<string, WeakRef<PathAttributes>>();
  private readonly registry = new FinalizationRegistry<string>((key) => {
    const ref = this.byKey.get(key);
    if (ref && ref.deref() === undefined) this.byKey.delete(key);
  });

  intern(a: PathAttributes): PathAttributes {
    const key = attributesKey(a);
    const hit = this.byKey.get(key)?.deref();
    if (hit) return hit;
    const frozen = Object.freeze(a);
    this.byKey.set(key, new WeakRef(frozen));
    this.registry.register(frozen, key);
    return frozen;
  }

  get size(): number {
    return this.byKey.size;
  }
}

export function attributesKey(a: PathAttributes): string {
  return `${encodePathAttributes(a, { fourOctetAs: true }, false).toString('latin1')}|${a.nextHop ?? ''}|${a.linkLocalNextHop ?? ''}`;
}

const DEFAULT_LOCAL_PREF = 100;

function neighborAs(a: PathAttributes): number | undefined {
  const first = a.asPath.find(
    (s) => s.type === AsPathSegmentType.AS_SEQUENCE || s.type === AsPathSegmentType.AS_SET,
  );
  return first?.type === AsPathSegmentType.AS_SEQUENCE ? first.asns[0] : undefined;
}

/** RFC 4271 §9.1.2 with the usual RFC 4456 additions; negative when `a` is better. */
export function comparePaths(a: Path, b: Path): number {
  const x = a.attrs;
  const y = b.attrs;
  const lp = (y.localPref ?? DEFAULT_LOCAL_PREF) - (x.localPref ?? DEFAULT_LOCAL_PREF);
  if (lp) return lp;
  const local = Number(b.source.kind === 'local') - Number(a.source.kind === 'local');
  if (local) return local;
  const len = asPathLength(x.asPath) - asPathLength(y.asPath);
  if (len) return len;
  if (x.origin !== y.origin) return x.origin - y.origin;
  const nx = neighborAs(x);
  if (nx !== undefined && nx === neighborAs(y)) {
    const med = (x.med ?? 0) - (y.med ?? 0);
    if (med) return med;
  }
  const ebgp = Number(b.source.kind === 'ebgp') - Number(a.source.kind === 'ebgp');
  if (ebgp) return ebgp;
  const idA = x.originatorId ? parseIpv4(x.originatorId) : a.source.routerIdNum;
  const idB = y.originatorId ? parseIpv4(y.originatorId) : b.source.routerIdNum;
  if (idA !== idB) return idA - idB;
  const cl = (x.clusterList?.length ?? 0) - (y.clusterList?.length ?? 0);
  if (cl) return cl;
  return a.source.addressNum < b.source.addressNum ? -1 : a.source.addressNum > b.source.addressNum ? 1 : 0;
}

type Entry = Path | Path[];

/**
 * The Loc-RIB: per prefix every candidate path (which is also each peer's accepted Adj-RIB-In
 * route, so a route is stored once), the best one first.
 */
export class LocRib {
  private readonly entries = new PrefixMap<Entry>();
  /** After set(): the path `source` had for the prefix before, if any. */
  replaced: Path | undefined;

  get size(): number {
    return this.entries.size;
  }

  best(prefix: PrefixKey): Path | undefined {
    const e = this.entries.get(prefix);
    return e === undefined ? undefined : e instanceof Path ? e : e[0];
  }

  candidates(prefix: PrefixKey): readonly Path[] {
    const e = this.entries.get(prefix);
    return e === undefined ? [] : e instanceof Path ? [e] : e;
  }

  *prefixes(): IterableIterator<PrefixKey> {
    yield* this.entries.keys();
  }

  *bestPaths(): IterableIterator<[PrefixKey, Path]> {
    for (const [k, e] of this.entries.entries()) yield [k, e instanceof Path ? e : e[0]!];
  }

  /** Every prefix `source` has a path for (a full scan; used when a peer goes away). */
  prefixesFrom(source: RouteSource): PrefixKey[] {
    const out: PrefixKey[] = [];
    for (const [k, e] of this.entries.entries()) {
      if (e instanceof Path ? e.source === source : e.some((p) => p.source === source)) out.push(k);
    }
    return out;
  }

  /**
   * Sets (or with `path` undefined removes) `source`'s candidate for `prefix`. Returns the
   * previous best when the best path changed, `false` when it did not; `replaced` tells what
   * `source` had before.
   */
  set(prefix: PrefixKey, source: RouteSource, path: Path | undefined): Path | undefined | false {
    this.replaced = undefined;
    const e = this.entries.get(prefix);
    if (e === undefined) {
      if (!path) return false;
      this.entries.set(prefix, path);
      return undefined;
    }
    if (e instanceof Path) {
      if (e.source === source) {
        this.replaced = e;
        if (e === path) return false;
        if (path) this.entries.set(prefix, path);
        else this.entries.delete(prefix);
        return e;
      }
      if (!path) return false;
      const pair = comparePaths(path, e) < 0 ? [path, e] : [e, path];
      this.entries.set(prefix, pair);
      return pair[0] === e ? false : e;
    }
    const oldBest = e[0]!;
    const i = e.findIndex((p) => p.source === source);
    if (i >= 0) {
      this.replaced = e[i];
      if (e[i] === path) return false;
      if (path) e[i] = path;
      else e.splice(i, 1);
    } else if (path) {
      e.push(path);
    } else {
      return false;
    }
    let bi = 0;
    for (let j = 1; j < e.length; j++) if (comparePaths(e[j]!, e[bi]!) < 0) bi = j;
    if (bi !== 0) [e[0], e[bi]] = [e[bi]!, e[0]!];
    if (e.length === 1) this.entries.set(prefix, e[0]!);
    return e[0] === oldBest ? false : oldBest;
  }
}
