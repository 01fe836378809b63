// Pod identities and the sources that bind addresses to them: the ordinal-list annotation,
// IPReservation objects and the sticky annotation. Pure: parsing and lookups, no I/O.
import {
  ConflictError,
  ValidationError,
  formatIp,
  parseIp,
  type IPReservation,
  type IpAddr,
} from '../model/index.js';
import { ANNOTATIONS, POD_INDEX_LABEL, type BindingSource } from './types.js';

/** `<namespace>/<pod name>`: what an identity-bound address belongs to. */
export const identityOf = (namespace: string, pod: string): string => `${namespace}/${pod}`;

/** Why an address is bound to an identity, for allocations and error messages. */
export interface Binding {
  identity: string;
  source: BindingSource;
  /** `<namespace>/<set>` for an ordinal list, `<namespace>/<IPReservation name>`. */
  owner?: string;
  /** What named the address, in words: `pod annotation tern.network/ip-addrs-by-ordinal (ordinal 1)`. */
  origin: string;
}

export interface Ordinal {
  set: string;
  ordinal: number;
}

/**
 * The replica ordinal of a pod: the `apps.kubernetes.io/pod-index` label, else the numeric
 * suffix of its name (`db-2` → 2). The set is the name without `-<ordinal>`.
 */
export function ordinalOf(pod: string, labels: Readonly<Record<string, string>> | undefined): Ordinal {
  const label = labels?.[POD_INDEX_LABEL];
  if (label !== undefined) {
    if (!/^(0|[1-9]\d{0,8})$/.test(label))
      throw new ValidationError(`pod label ${POD_INDEX_LABEL}`, `must be a replica ordinal, got ${label}`);
    const ordinal = Number(label);
    const suffix = `-${ordinal}`;
    return { set: pod.endsWith(suffix) ? pod.slice(0, -suffix.length) : pod, ordinal };
  }
  const m = /^(.+)-(0|[1-9]\d{0,8})$/.exec(pod);
  if (!m)
    throw new ValidationError(
      'pod',
      `${pod} has no ${POD_INDEX_LABEL} label and its name has no numeric suffix: no replica ordinal`,
    );
  return { set: m[1]!, ordinal: Number(m[2]) };
}

/** One address, or one address per family: `"10.0.0.5"` or `["10.0.0.5", "fd00::5"]`. */
export function parseAddressSet(value: unknown, field: string): IpAddr[] {
  const list = typeof value === 'string' ? [value] : value;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.length > 2 ||
    !list.every((v) => typeof v === 'string')
  )
    throw new ValidationError(
      field,
      `must be an address or a list of one address per family, got ${JSON.stringify(value)}`,
    );
  const out: IpAddr[] = [];
  for (const text of list as string[]) {
    const ip = parseIp(text, field);
    if (out.some((o) => o.family === ip.family))
      throw new ValidationError(field, `names two IPv${ip.family} addresses (${JSON.stringify(value)})`);
    out.push(ip);
  }
  return out.sort((a, b) => a.family - b.family);
}

/** A JSON list whose entry i is the address set of ordinal i. */
export function parseOrdinalList(text: string, field: string): IpAddr[][] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError(field, `must be a JSON list of addresses, got ${JSON.stringify(text)}`);
  }
  if (!Array.isArray(value) || value.length === 0)
    throw new ValidationError(field, `must be a non-empty JSON list of addresses, got ${text}`);
  return value.map((v, i) => parseAddressSet(v, `${field}[${i}]`));
}

/** Two ordinals of one list naming one address is a conflict between two identities. */
export function checkDistinct(
  entries: IpAddr[][],
  identityOfOrdinal: (i: number) => string,
  what: string,
): void {
  const seen = new Map<string, number>();
  entries.forEach((set, i) => {
    for (const ip of set) {
      const key = formatIp(ip);
      const first = seen.get(key);
      if (first !== undefined)
        throw new ConflictError(
          `${key} is named for both ${identityOfOrdinal(first)} (ordinal ${first}) and ${identityOfOrdinal(i)} (ordinal ${i}) by ${what}`,
        );
      seen.set(key, i);
    }
  });
}

/** The entry of `ordinal`, or the error naming the ordinal and the list's length. */
export function entryFor(entries: IpAddr[][], ord: Ordinal, pod: string, what: string): IpAddr[] {
  const entry = entries[ord.ordinal];
  if (!entry)
    throw new ValidationError(
      what,
      `pod ${pod} has ordinal ${ord.ordinal}, but the list has ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} (ordinals 0..${entries.length - 1})`,
    );
  return entry;
}

/** `tern.network/sticky-ip` on the pod, else on its namespace: "true" or "false". */
export function isSticky(
  podAnnotations: Readonly<Record<string, string>> | undefined,
  namespaceAnnotations: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const [where, ann] of [
    ['pod', podAnnotations],
    ['namespace', namespaceAnnotations],
  ] as const) {
    const v = ann?.[ANNOTATIONS.stickyIp];
    if (v === undefined) continue;
    if (v === 'true') return true;
    if (v === 'false') return false;
    throw new ValidationError(
      `${where} annotation ${ANNOTATIONS.stickyIp}`,
      `must be "true" or "false", got ${JSON.stringify(v)}`,
    );
  }
  return false;
}

/** What an IPReservation says about one pod identity. */
export interface Reserved {
  addresses: IpAddr[];
  binding: Binding;
}

interface SetEntry {
  owner: string;
  field: string;
  addresses: unknown[];
}

/** Every IPReservation, indexed by the identities and the addresses it names. */
export class ReservationIndex {
  /** identity → the reservation entries naming it (more than one is a conflict). */
  private readonly pods = new Map<string, Array<{ owner: string; field: string; addresses: unknown }>>();
  /** `<namespace>/<set>` → StatefulSet entries. */
  private readonly sets = new Map<string, SetEntry[]>();
  /** Address text → identities it is reserved for, with the reservation that says so. */
  private readonly addresses = new Map<string, Array<{ identity: string; owner: string }>>();
  private readonly parsed: IpAddr[] = [];

  constructor(objects: Iterable<IPReservation>) {
    for (const r of objects) {
      const ns = r.metadata.namespace ?? '';
      const owner = identityOf(ns, r.metadata.name);
      (r.spec.pods ?? []).forEach((p, i) => {
        const identity = identityOf(ns, p.name);
        const list = this.pods.get(identity) ?? [];
        list.push({
          owner,
          field: `IPReservation ${owner} spec.pods[${i}].addresses`,
          addresses: p.addresses,
        });
        this.pods.set(identity, list);
        for (const a of p.addresses) this.note(a, identity, owner);
      });
      (r.spec.statefulSets ?? []).forEach((s, i) => {
        const key = identityOf(ns, s.name);
        const list = this.sets.get(key) ?? [];
        list.push({
          owner,
          field: `IPReservation ${owner} spec.statefulSets[${i}].addresses`,
          addresses: s.addresses,
        });
        this.sets.set(key, list);
        s.addresses.forEach((entry, ordinal) => {
          for (const a of typeof entry === 'string' ? [entry] : entry)
            this.note(a, identityOf(ns, `${s.name}-${ordinal}`), owner);
        });
      });
    }
  }

  get size(): number {
    return this.addresses.size;
  }

  private note(text: string, identity: string, owner: string): void {
    let ip: IpAddr;
    try {
      ip = parseIp(text);
    } catch {
      return; // the schema rejects these; an old stored object is reported when used
    }
    const key = formatIp(ip);
    if (!this.addresses.has(key)) this.parsed.push(ip);
    const list = this.addresses.get(key) ?? [];
    list.push({ identity, owner });
    this.addresses.set(key, list);
  }

  /** The addresses reserved for pod `namespace/pod`, if any reservation names it. */
  lookup(
    namespace: string,
    pod: string,
    labels: Readonly<Record<string, string>> | undefined,
  ): Reserved | undefined {
    const identity = identityOf(namespace, pod);
    const exact = this.pods.get(identity);
    if (exact?.length) {
      if (exact.length > 1)
        throw new ConflictError(
          `pod ${identity} is named by two reservations: ${exact[0]!.field} and ${exact[1]!.field}`,
        );
      const e = exact[0]!;
      return {
        addresses: parseAddressSet(e.addresses, e.field),
        binding: { identity, source: 'reservation', owner: e.owner, origin: e.field },
      };
    }
    let ord: Ordinal;
    try {
      ord = ordinalOf(pod, labels);
    } catch {
      return undefined; // not a replica: no StatefulSet entry can name it
    }
    const sets = this.sets.get(identityOf(namespace, ord.set));
    if (!sets?.length) return undefined;
    if (sets.length > 1)
      throw new ConflictError(
        `StatefulSet ${identityOf(namespace, ord.set)} is named by two reservations: ${sets[0]!.field} and ${sets[1]!.field}`,
      );
    const s = sets[0]!;
    const entries = s.addresses.map((v, i) => parseAddressSet(v, `${s.field}[${i}]`));
    checkDistinct(entries, (i) => identityOf(namespace, `${ord.set}-${i}`), s.field);
    return {
      addresses: entryFor(entries, ord, identity, s.field),
      binding: {
        identity,
        source: 'reservation',
        owner: s.owner,
        origin: `${s.field} (ordinal ${ord.ordinal})`,
      },
    };
  }

  /** Identities `ip` is reserved for by some IPReservation. */
  claimants(ip: IpAddr): ReadonlyArray<{ identity: string; owner: string }> {
    return this.addresses.get(formatIp(ip)) ?? [];
  }

  /** Every reserved address (the pool allocator never hands these out). */
  reservedAddresses(): readonly IpAddr[] {
    return this.parsed;
  }

  /** Whether some reservation still names `ip` for `identity`. */
  names(ip: IpAddr, identity: string): boolean {
    return this.claimants(ip).some((c) => c.identity === identity);
  }
}

/**
 * The address is reserved by an IPReservation for another identity than the one asking:
 * a conflict naming the address and both.
 */
export function checkNotReservedForOther(
  ip: IpAddr,
  asking: string,
  origin: string,
  reservations: ReservationIndex,
): void {
  const other = reservations.claimants(ip).find((c) => c.identity !== asking);
  if (other)
    throw new ConflictError(
      `${formatIp(ip)} is reserved for pod ${other.identity} by IPReservation ${other.owner}, but ${origin} names it for pod ${asking}`,
    );
}
