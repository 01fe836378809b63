// The reconciler's pure decisions: what to add, replace, delete or hold for a route key.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RTN, RT_SCOPE, type KernelRoute } from '../../../kernel/netlink/codec.js';
import { decide, plan, kernelRouteFor, type PlanState } from '../../../kernel/routes/plan.js';
import { normalizeRoute, type DesiredRoute, type RouteClass } from '../../../kernel/routes/types.js';
import { ValidationError } from '../../../model/errors.js';

const links = new Map([
  ['ternaaaaaaaaaaa', 5],
  ['ternbbbbbbbbbbb', 6],
]);

function state(desired: DesiredRoute[], ours: KernelRoute[] = [], opts: Partial<PlanState> = {}): PlanState {
  const byKey = new Map<string, DesiredRoute>();
  const order: RouteClass[] = ['bgp', 'block', 'pod']; // later wins: pod beats block beats bgp
  for (const cls of order) for (const d of desired) if (d.cls === cls) byKey.set(d.key, d);
  const oursMap = new Map<string, KernelRoute>();
  for (const r of ours) oursMap.set(keyFor(r), r);
  return {
    table: 254,
    desired: (k) => byKey.get(k),
    ours: oursMap,
    foreign: new Set(),
    ifindex: (n) => links.get(n),
    synced: new Set<RouteClass>(['pod', 'block', 'bgp']),
    ...opts,
  };
}

function keyFor(r: KernelRoute): string {
  return `${r.family}/${r.dst.toString('hex')}/${r.dstLen}/${r.priority}`;
}

const pod = (dst: string, dev = 'ternaaaaaaaaaaa') => normalizeRoute('pod', { dst, dev });
const block = (dst: string) => normalizeRoute('block', { dst });
const bgp = (dst: string, via: string) => normalizeRoute('bgp', { dst, via });
const installed = (d: DesiredRoute, patch: Partial<KernelRoute> = {}): KernelRoute => ({
  ...kernelRouteFor(d, 254, (n) => links.get(n))!,
  ...patch,
});

describe('route plan', () => {
  it('adds a desired pod route that the kernel lacks, scope link via the interface index, protocol 90', () => {
    const d = pod('10.0.0.5/32');
    const out = decide(d.key, state([d]));
    expect(out.kind).toBe('add');
    if (out.kind !== 'add') return;
    expect(out.route).toMatchObject({
      protocol: 90,
      scope: RT_SCOPE.LINK,
      type: RTN.UNICAST,
      oif: 5,
      table: 254,
    });
  });

  it('programs blocks as blackholes (protocol 91) and BGP routes via their next hop (protocol 92)', () => {
    const b = block('10.0.0.0/26');
    const g = bgp('10.1.0.0/26', '192.168.0.2');
    expect(kernelRouteFor(b, 254, () => undefined)).toMatchObject({
      protocol: 91,
      type: RTN.BLACKHOLE,
      oif: 0,
    });
    const route = kernelRouteFor(g, 254, () => undefined)!;
    expect(route).toMatchObject({ protocol: 92, type: RTN.UNICAST, scope: RT_SCOPE.UNIVERSE, oif: 0 });
    expect(route.gateway).toEqual(Buffer.from([192, 168, 0, 2]));
  });

  it('leaves a route that already matches alone (adoption), including IPv6 with its default metric', () => {
    const d4 = pod('10.0.0.5/32');
    const d6 = pod('fd00::5/128');
    expect(d6.priority).toBe(1024);
    const s = state([d4, d6], [installed(d4), installed(d6, { scope: RT_SCOPE.UNIVERSE })]);
    expect(plan([d4.key, d6.key], s).changes).toEqual([]);
  });

  it('replaces a route whose interface, next hop or protocol differs', () => {
    const d = pod('10.0.0.5/32', 'ternbbbbbbbbbbb');
    expect(decide(d.key, state([d], [installed(pod('10.0.0.5/32'))])).kind).toBe('replace');
    const g = bgp('10.1.0.0/26', '192.168.0.3');
    expect(decide(g.key, state([g], [installed(bgp('10.1.0.0/26', '192.168.0.2'))])).kind).toBe('replace');
    const p = pod('10.1.0.7/32');
    const learned = installed(bgp('10.1.0.7/32', '192.168.0.2'));
    const out = decide(p.key, state([p], [learned]));
    expect(out.kind).toBe('replace');
    if (out.kind === 'replace') expect(out.route.protocol).toBe(90);
  });

  it('keeps a stale route of ours until its class is synced, then deletes it', () => {
    const stale = installed(pod('10.0.0.9/32'));
    const key = keyFor(stale);
    expect(decide(key, state([], [stale], { synced: new Set(['block', 'bgp']) })).kind).toBe(
      'kept-until-synced',
    );
    const out = decide(key, state([], [stale], { synced: new Set(['pod']) }));
    expect(out.kind).toBe('delete');
  });

  it('never overwrites another program’s route at the same destination', () => {
    const d = pod('10.0.0.5/32');
    expect(decide(d.key, state([d], [], { foreign: new Set([d.key]) })).kind).toBe('foreign-conflict');
  });

  it('holds a pod route whose interface does not exist yet', () => {
    const d = pod('10.0.0.5/32', 'terncccccccccc0');
    expect(decide(d.key, state([d])).kind).toBe('awaiting-interface');
  });

  it('a local pod route takes precedence over a BGP route and a block for the same destination', () => {
    const p = pod('10.0.0.5/32');
    const out = decide(p.key, state([bgp('10.0.0.5/32', '192.168.0.2'), p]));
    expect(out.kind === 'add' && out.route.protocol).toBe(90);
  });

  it('property: changes only ever touch routes of our protocols, and deletes only routes we hold', () => {
    const ourProtocols = new Set([90, 91, 92]);
    const arbKernel = fc.record({
      host: fc.integer({ min: 1, max: 20 }),
      protocol: fc.constantFrom(2, 4, 12, 90, 91, 92, 186),
      oif: fc.constantFrom(5, 6),
    });
    fc.assert(
      fc.property(
        fc.array(arbKernel, { maxLength: 15 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 15 }),
        fc.subarray(['pod', 'block', 'bgp'] as RouteClass[]),
        (kernel, wanted, synced) => {
          const all: KernelRoute[] = kernel.map((k) =>
            installed(pod(`10.0.0.${k.host}/32`), { protocol: k.protocol, oif: k.oif }),
          );
          const ours = all.filter((r) => ourProtocols.has(r.protocol));
          const foreign = new Set(all.filter((r) => !ourProtocols.has(r.protocol)).map(keyFor));
          const desired = wanted.map((h) => pod(`10.0.0.${h}/32`));
          const s = state(desired, ours, { foreign, synced: new Set(synced) });
          const keys = new Set([...all.map(keyFor), ...desired.map((d) => d.key)]);
          const oursKeys = new Set(ours.map(keyFor));
          for (const c of plan(keys, s).changes) {
            expect(ourProtocols.has(c.route.protocol)).toBe(true);
            if (c.kind === 'delete') expect(oursKeys.has(c.key)).toBe(true);
            if (c.kind === 'add') expect(foreign.has(c.key) || oursKeys.has(c.key)).toBe(false);
          }
        },
      ),
    );
  });
});

describe('desired route validation', () => {
  it.each([
    ['pod', { dst: '10.0.0.0/24', dev: 'tern0' }, 'host route'],
    ['pod', { dst: '10.0.0.5/32', dev: 'bad name' }, 'interface name'],
    ['pod', { dst: '10.0.0.5/32' }, 'dev'],
    ['block', { dst: '10.0.0.1/26' }, 'host bits'],
    ['bgp', { dst: '10.1.0.0/26', via: 'fd00::1' }, 'family'],
    ['bgp', { dst: '10.1.0.0/26' }, 'via'],
    ['block', 'nope', 'object'],
  ] as [RouteClass, unknown, string][])('rejects %s route %j naming the problem', (cls, input, problem) => {
    expect(() => normalizeRoute(cls, input)).toThrow(ValidationError);
    expect(() => normalizeRoute(cls, input)).toThrow(new RegExp(problem));
  });

  it('keys IPv4 and IPv6 routes by family, network and default metric', () => {
    expect(block('10.0.0.0/26').key).toBe('4/0a000000/26/0');
    expect(block('fd00::/122').dstText).toBe('fd00::/122');
    expect(block('fd00::/122').key).toBe(`6/fd00${'0'.repeat(28)}/122/1024`);
  });
});
