// Parses one CNI invocation (environment + stdin netconf) into a typed request, in the order and
// with the error codes of libcni's skel, so that tern fails exactly where a Go plugin would.
import { CniError, invalidConfig, invalidEnv } from './errors.js';
import { CNI_CODE, SUPPORTED_VERSIONS } from './wire.js';

export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';

/** Which pod an attachment belongs to. Without K8S_* args (ctr, podman) the container is its own "pod". */
export interface PodIdentity {
  namespace: string;
  name: string;
  /** True when the runtime named a Kubernetes pod (K8S_POD_NAMESPACE and K8S_POD_NAME). */
  kubernetes: boolean;
}

/** Namespace given to containers the runtime did not name as a Kubernetes pod (not a valid k8s name). */
export const NON_K8S_NAMESPACE = '_container';

export interface AttachmentKey {
  containerId: string;
  ifname: string;
}

export interface IpamConf {
  /** Pool names (or CIDRs) to allocate from when neither the pod nor its namespace names any. */
  ipv4Pools?: string[];
  ipv6Pools?: string[];
  /** Families to allocate (from assignIpv4/assignIpv6); absent: every family some pool serves. */
  families?: (4 | 6)[];
}

export interface DnsConf {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** Explicit MTU for both veth ends; absent = detect from the node's uplink. */
  mtu?: number;
  /** Default routes through this attachment; absent = only when CNI_IFNAME is eth0 (the primary). */
  defaultRoute?: boolean;
  ipam: IpamConf;
  dns?: DnsConf;
  /** Pod annotations passed by containerd (`io.kubernetes.cri.pod-annotations` capability). */
  podAnnotations?: Record<string, string>;
  /** Addresses asked for through the `ips` capability or `args.cni.ips`. */
  requestedIps?: string[];
  /** The previous plugin's result when chained (ADD) or the cached result (DEL/CHECK), undecoded. */
  prevResult?: unknown;
}

interface Base {
  conf: NetConf;
}
export interface AttachmentRequest extends Base {
  command: 'ADD' | 'DEL' | 'CHECK';
  attachment: AttachmentKey;
  /** CNI_NETNS verbatim; may be '' for DEL. */
  netns: string;
  pod: PodIdentity;
  args: Record<string, string>;
  /** CNI_NETNS_OVERRIDE: allow a netns that is the plugin's own. */
  netnsOverride: boolean;
}
export interface GcRequest extends Base {
  command: 'GC';
  /** Attachments of this network that must be kept. */
  valid: AttachmentKey[];
}
export interface StatusRequest extends Base {
  command: 'STATUS';
}
export type CniRequest = AttachmentRequest | GcRequest | StatusRequest;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const REQUIRED_ENV: Record<CniCommand, string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: [],
};

const versionRank = (v: string): number => SUPPORTED_VERSIONS.indexOf(v as CniVersion);
export const versionAtLeast = (v: CniVersion, min: CniVersion): boolean => versionRank(v) >= versionRank(min);

/** The cniVersion to answer errors with: the config's own when it has one. */
export function peekVersion(stdin: string): string {
  try {
    const o: unknown = JSON.parse(stdin);
    if (isObject(o) && typeof o.cniVersion === 'string') return o.cniVersion;
  } catch {
    /* fall through */
  }
  return '1.1.0';
}

export function parseRequest(env: Record<string, string>, stdin: string): CniRequest {
  const command = parseCommand(env.CNI_COMMAND);
  const missing = REQUIRED_ENV[command].filter((k) => !env[k]);
  if (missing.length) {
    throw invalidEnv(`required env variables [${missing.join(',')}] missing`, `CNI_COMMAND=${command}`);
  }
  const raw = decodeConfig(stdin);
  const conf = parseNetConf(raw, command);
  if (command === 'STATUS') return { command, conf };
  if (command === 'GC') return { command, conf, valid: parseValidAttachments(raw) };

  const containerId = env.CNI_CONTAINERID!;
  if (!NAME_RE.test(containerId)) {
    throw invalidEnv(
      `invalid CNI_CONTAINERID ${JSON.stringify(containerId)}`,
      'must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$',
    );
  }
  const ifname = env.CNI_IFNAME!;
  const ifProblem = interfaceNameProblem(ifname);
  if (ifProblem) throw invalidEnv(`invalid CNI_IFNAME ${JSON.stringify(ifname)}: ${ifProblem}`);
  const args = parseCniArgs(env.CNI_ARGS ?? '');
  return {
    command,
    conf,
    attachment: { containerId, ifname },
    netns: env.CNI_NETNS ?? '',
    pod: podIdentity(args, containerId),
    args,
    netnsOverride: /^(1|true)$/i.test(env.CNI_NETNS_OVERRIDE ?? ''),
  };
}

function parseCommand(value: string | undefined): CniCommand {
  if (!value) throw invalidEnv('required env variables [CNI_COMMAND] missing');
  if (value === 'ADD' || value === 'DEL' || value === 'CHECK' || value === 'GC' || value === 'STATUS')
    return value;
  throw invalidEnv(
    `unknown CNI_COMMAND ${JSON.stringify(value)}`,
    'expected ADD, DEL, CHECK, GC, STATUS or VERSION',
  );
}

/** Why the kernel (and libcni) would refuse `name` as an interface name, or undefined when it is fine. */
export function interfaceNameProblem(name: string): string | undefined {
  if (!name) return 'empty';
  if (Buffer.byteLength(name) > 15) return 'longer than 15 bytes';
  if (name === '.' || name === '..') return 'is "." or ".."';
  if (/[/:\s]/.test(name)) return 'contains "/", ":" or whitespace';
  return undefined;
}

function decodeConfig(stdin: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CNI_CODE.decode, 'error decoding network configuration', (e as Error).message);
  }
  if (!isObject(v))
    throw new CniError(CNI_CODE.decode, 'error decoding network configuration', 'not a JSON object');
  return v;
}

function parseNetConf(raw: Record<string, unknown>, command: CniCommand): NetConf {
  const name = raw.name;
  if (typeof name !== 'string' || !name) throw invalidConfig('missing network name');
  if (!NAME_RE.test(name)) {
    throw invalidConfig(
      `invalid network name ${JSON.stringify(name)}`,
      'must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$',
    );
  }
  // A missing cniVersion means 0.1.0 (libcni), which tern does not implement.
  const requested = raw.cniVersion === undefined ? '0.1.0' : raw.cniVersion;
  if (typeof requested !== 'string' || versionRank(requested) < 0) {
    throw new CniError(
      CNI_CODE.incompatibleVersion,
      'incompatible CNI versions',
      `config is ${JSON.stringify(requested)}, plugin supports [${SUPPORTED_VERSIONS.join(' ')}]`,
    );
  }
  const cniVersion = requested as CniVersion;
  if (command === 'CHECK' && !versionAtLeast(cniVersion, '0.4.0')) {
    throw new CniError(
      CNI_CODE.incompatibleVersion,
      'config version does not allow CHECK',
      `config is ${cniVersion}`,
    );
  }
  if ((command === 'GC' || command === 'STATUS') && !versionAtLeast(cniVersion, '1.1.0')) {
    throw new CniError(
      CNI_CODE.incompatibleVersion,
      `config version does not allow ${command}`,
      `config is ${cniVersion}; ${command} needs 1.1.0`,
    );
  }
  const type = typeof raw.type === 'string' ? raw.type : 'tern';
  const conf: NetConf = { cniVersion, name, type, ipam: parseIpam(raw.ipam) };
  if (raw.mtu !== undefined) {
    if (typeof raw.mtu !== 'number' || !Number.isInteger(raw.mtu) || raw.mtu < 68 || raw.mtu > 65535) {
      throw invalidConfig(
        `invalid mtu ${JSON.stringify(raw.mtu)}`,
        'must be an integer between 68 and 65535',
      );
    }
    conf.mtu = raw.mtu;
  }
  if (raw.defaultRoute !== undefined) {
    if (typeof raw.defaultRoute !== 'boolean') throw invalidConfig('defaultRoute must be a boolean');
    conf.defaultRoute = raw.defaultRoute;
  }
  const dns = parseDns(raw.dns, 'dns');
  if (dns) conf.dns = dns;
  if (raw.prevResult !== undefined && raw.prevResult !== null) conf.prevResult = raw.prevResult;

  const runtimeConfig = isObject(raw.runtimeConfig) ? raw.runtimeConfig : {};
  const annotations = getCaseInsensitive(runtimeConfig, 'io.kubernetes.cri.pod-annotations');
  if (annotations !== undefined)
    conf.podAnnotations = stringMap(annotations, 'runtimeConfig.io.kubernetes.cri.pod-annotations');
  const ips: string[] = [];
  const capIps = getCaseInsensitive(runtimeConfig, 'ips');
  if (capIps !== undefined) ips.push(...stringList(capIps, 'runtimeConfig.ips'));
  const cniArgs = isObject(raw.args) ? getCaseInsensitive(raw.args, 'cni') : undefined;
  if (isObject(cniArgs)) {
    const argIps = getCaseInsensitive(cniArgs, 'ips');
    if (argIps !== undefined) ips.push(...stringList(argIps, 'args.cni.ips'));
  }
  if (ips.length) conf.requestedIps = [...new Set(ips.map((ip) => ip.replace(/\/\d+$/, '')))];
  // runtimeConfig.dns (Go field names from containerd: Servers/Searches/Options) overrides the static dns.
  const rtDns = getCaseInsensitive(runtimeConfig, 'dns');
  if (isObject(rtDns)) {
    const servers = getCaseInsensitive(rtDns, 'servers') ?? getCaseInsensitive(rtDns, 'nameservers');
    const searches = getCaseInsensitive(rtDns, 'searches') ?? getCaseInsensitive(rtDns, 'search');
    const options = getCaseInsensitive(rtDns, 'options');
    const d: DnsConf = { ...conf.dns };
    if (servers !== undefined) d.nameservers = stringList(servers, 'runtimeConfig.dns.servers');
    if (searches !== undefined) d.search = stringList(searches, 'runtimeConfig.dns.searches');
    if (options !== undefined) d.options = stringList(options, 'runtimeConfig.dns.options');
    if (Object.keys(d).length) conf.dns = d;
  }
  return conf;
}

function parseIpam(v: unknown): IpamConf {
  const conf: IpamConf = {};
  if (v === undefined || v === null) return conf;
  if (!isObject(v)) throw invalidConfig('ipam must be an object');
  if (v.type !== undefined && v.type !== 'tern') {
    throw new CniError(
      CNI_CODE.unsupportedField,
      `unsupported field ipam.type=${JSON.stringify(v.type)}`,
      'tern allocates addresses itself; use "tern" or leave ipam.type out',
    );
  }
  if (v.ipv4Pools !== undefined) conf.ipv4Pools = stringList(v.ipv4Pools, 'ipam.ipv4Pools');
  if (v.ipv6Pools !== undefined) conf.ipv6Pools = stringList(v.ipv6Pools, 'ipam.ipv6Pools');
  const flag = (key: 'assignIpv4' | 'assignIpv6'): boolean | undefined => {
    const f = v[key];
    if (f === undefined) return undefined;
    if (typeof f === 'boolean') return f;
    if (f === 'true' || f === 'false') return f === 'true';
    throw invalidConfig(`ipam.${key} must be a boolean`);
  };
  const v4 = flag('assignIpv4');
  const v6 = flag('assignIpv6');
  if (v4 === undefined && v6 === undefined) return conf;
  const families: (4 | 6)[] = [];
  if (v4 ?? true) families.push(4);
  if (v6 ?? false) families.push(6);
  if (!families.length) throw invalidConfig('ipam assigns no address family', 'set assignIpv4 or assignIpv6');
  conf.families = families;
  return conf;
}

function parseDns(v: unknown, field: string): DnsConf | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalidConfig(`${field} must be an object`);
  const d: DnsConf = {};
  if (v.nameservers !== undefined) d.nameservers = stringList(v.nameservers, `${field}.nameservers`);
  if (typeof v.domain === 'string' && v.domain) d.domain = v.domain;
  if (v.search !== undefined) d.search = stringList(v.search, `${field}.search`);
  if (v.options !== undefined) d.options = stringList(v.options, `${field}.options`);
  return Object.keys(d).length ? d : undefined;
}

/** GC's keep-list: `cni.dev/valid-attachments`, and the legacy `cni.dev/attachments` (libcni sends both). */
function parseValidAttachments(raw: Record<string, unknown>): AttachmentKey[] {
  const out = new Map<string, AttachmentKey>();
  for (const key of ['cni.dev/valid-attachments', 'cni.dev/attachments']) {
    const list = raw[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw invalidConfig(`${key} must be a list`);
    for (const [i, item] of list.entries()) {
      if (!isObject(item) || typeof item.containerID !== 'string' || typeof item.ifname !== 'string') {
        throw invalidConfig(`${key}[${i}] must be {"containerID": string, "ifname": string}`);
      }
      out.set(`${item.containerID}\0${item.ifname}`, { containerId: item.containerID, ifname: item.ifname });
    }
  }
  return [...out.values()];
}

/** CNI_ARGS `K=V;K=V`. Unknown keys are always ignored (every Kubernetes runtime sends IgnoreUnknown). */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const pair of text.split(';')) {
    if (!pair) continue;
    const parts = pair.split('=');
    if (parts.length !== 2 || !parts[0])
      throw invalidEnv(`invalid CNI_ARGS pair ${JSON.stringify(pair)}`, 'expected K=V;K=V');
    out[parts[0]] = parts[1]!;
  }
  return out;
}

function podIdentity(args: Record<string, string>, containerId: string): PodIdentity {
  const namespace = args.K8S_POD_NAMESPACE;
  const name = args.K8S_POD_NAME;
  if (namespace && name) return { namespace, name, kubernetes: true };
  return { namespace: NON_K8S_NAMESPACE, name: name || containerId, kubernetes: false };
}

/** Go's encoding/json matches keys case-insensitively, and containerd sends Go field names; so do we. */
export function getCaseInsensitive(obj: Record<string, unknown>, key: string): unknown {
  if (key in obj) return obj[key];
  const lower = key.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw invalidConfig(`${field} must be a list of strings`);
  return v as string[];
}

function stringMap(v: unknown, field: string): Record<string, string> {
  if (!isObject(v)) throw invalidConfig(`${field} must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw invalidConfig(`${field}.${k} must be a string`);
    out[k] = val;
  }
  return out;
}
