// A small interpreter of the iptables rules tern renders (the subset render.ts writes), so unit
// tests can check what the rendered chains *do* to a packet, not only what they say. The kernel
// is the final word (test/integration/policy); this is the fast check of every semantic case.
import { containsIp, formatIp, parseCidr, parseIp } from '../../../model/index.js';
import type { DesiredState, Family } from '../../../policy/index.js';

export interface Packet {
  readonly src: string;
  readonly dst: string;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly dport: number;
}

type Outcome = 'return' | 'drop' | 'accept';

const SET_MATCH = / -m set --match-set (\S+) (src|dst|dst,dst)/g;

function inSet(desired: DesiredState, name: string, dir: string, p: Packet): boolean {
  const set = desired.sets.get(name);
  if (!set) throw new Error(`rule names a set that is not desired: ${name}`);
  const addr = formatIp(parseIp(dir === 'src' ? p.src : p.dst)); // members are canonical text
  if (set.type === 'hash:ip,port') return set.members.includes(`${addr},${p.protocol}:${p.dport}`);
  if (set.type === 'hash:ip') return set.members.includes(addr);
  const ip = parseIp(addr);
  // hash:net: the most specific entry containing the address decides; nomatch entries exclude.
  const entries = set.members.map((m) => {
    const [net = '', flag] = m.split(' ');
    const cidr = parseCidr(net.includes('/') ? net : `${net}/${net.includes(':') ? 128 : 32}`);
    return { cidr, nomatch: flag === 'nomatch' };
  });
  const best = entries
    .filter((e) => e.cidr.family === ip.family && containsIp(e.cidr, ip))
    .sort((a, b) => b.cidr.prefixLength - a.cidr.prefixLength)[0];
  return best !== undefined && !best.nomatch;
}

function matches(rule: string, desired: DesiredState, p: Packet, mark: { v: number }): boolean {
  const m = / -m mark --mark (0x[0-9a-f]+)\/(0x[0-9a-f]+)/.exec(rule);
  if (m && (mark.v & Number(m[2])) !== Number(m[1])) return false;
  const proto = / -p (\w+)/.exec(rule);
  if (proto && proto[1] !== p.protocol) return false;
  const dport = / --dport (\d+)(?::(\d+))?/.exec(rule);
  if (dport && (p.dport < Number(dport[1]) || p.dport > Number(dport[2] ?? dport[1]))) return false;
  // Every set match of the rule must hold (a named port and a peer: both).
  return [...rule.matchAll(SET_MATCH)].every((set) => inSet(desired, set[1]!, set[2]!, p));
}

/** Runs `chain` (an endpoint chain) on the packet: 'drop', or 'return' (not dropped: allowed). */
export function runChain(desired: DesiredState, family: Family, chain: string, p: Packet): Outcome {
  const mark = { v: 0 };
  const run = (name: string, depth: number): Outcome => {
    if (depth > 8) throw new Error('chain loop');
    const rules = desired.chains[family].get(name);
    if (!rules) throw new Error(`no chain ${name}`);
    for (const rule of rules) {
      if (!matches(rule, desired, p, mark)) continue;
      const xmark = / -j MARK --set-xmark (0x[0-9a-f]+)\/(0x[0-9a-f]+)$/.exec(rule);
      if (xmark) {
        mark.v = (mark.v & ~Number(xmark[2])) | Number(xmark[1]);
        continue;
      }
      const target = / -([jg]) (\S+)$/.exec(rule)!;
      const [, how, to] = target;
      if (to === 'DROP') return 'drop';
      if (to === 'ACCEPT') return 'accept';
      if (to === 'RETURN') return 'return';
      const r = run(to!, depth + 1);
      if (r !== 'return' || how === 'g') return r;
    }
    return 'return';
  };
  return run(chain, 0);
}
