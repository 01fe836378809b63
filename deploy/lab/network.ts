// The lab's wires: a ToR namespace holding a bridge (the rack's L2 segment) and one node
// namespace per node with its uplink plugged into that bridge. Only addresses inside these
// namespaces are used.
import { execa } from 'execa';
import { addressAt, formatIp, parseCidr } from '../../model/index.js';

export interface RackPlan {
  torNetns: string;
  torAddress: string;
  prefixLength: number;
  nodes: Array<{ name: string; netns: string; address: string }>;
  /** The control namespace (Kubernetes control plane), on the rack's second address. */
  control: { name: string; netns: string; address: string };
}

export function planRack(prefix: string, rackSubnet: string, nodeNames: readonly string[]): RackPlan {
  const rack = parseCidr(rackSubnet);
  const ip = (offset: number) => formatIp(addressAt(rack, offset));
  return {
    torNetns: `${prefix}tor`,
    torAddress: ip(1),
    prefixLength: rack.prefixLength,
    nodes: nodeNames.map((name, i) => ({ name, netns: `${prefix}${name}`, address: ip(11 + i) })),
    control: { name: 'ctl', netns: `${prefix}ctl`, address: ip(2) },
  };
}

const ip = (args: string[]) => execa('ip', args);
const sysctl = (netns: string, key: string, value: string) =>
  execa('ip', ['netns', 'exec', netns, 'sysctl', '-qw', `${key}=${value}`]);

export async function createNetns(name: string): Promise<void> {
  await ip(['netns', 'add', name]);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
}

/** Builds the ToR namespace and its bridge. `onCreated` records each namespace as it appears. */
export async function buildTor(plan: RackPlan, onCreated: (netns: string) => void): Promise<void> {
  await createNetns(plan.torNetns);
  onCreated(plan.torNetns);
  await ip(['-n', plan.torNetns, 'link', 'add', 'rack', 'type', 'bridge']);
  await ip(['-n', plan.torNetns, 'addr', 'add', `${plan.torAddress}/${plan.prefixLength}`, 'dev', 'rack']);
  await ip(['-n', plan.torNetns, 'link', 'set', 'rack', 'up']);
  await sysctl(plan.torNetns, 'net.ipv4.ip_forward', '1');
}

/** Builds one node namespace: uplink eth0 on the rack, default route via the ToR, forwarding on. */
export async function buildNode(
  plan: RackPlan,
  node: RackPlan['nodes'][number],
  onCreated: (netns: string) => void,
): Promise<void> {
  await createNetns(node.netns);
  onCreated(node.netns);
  const torPort = `p-${node.name}`.slice(0, 15);
  await ip([
    '-n',
    node.netns,
    'link',
    'add',
    'eth0',
    'type',
    'veth',
    'peer',
    'name',
    torPort,
    'netns',
    plan.torNetns,
  ]);
  await ip(['-n', plan.torNetns, 'link', 'set', torPort, 'master', 'rack', 'up']);
  await ip(['-n', node.netns, 'addr', 'add', `${node.address}/${plan.prefixLength}`, 'dev', 'eth0']);
  await ip(['-n', node.netns, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', node.netns, 'route', 'add', 'default', 'via', plan.torAddress, 'dev', 'eth0']);
  await sysctl(node.netns, 'net.ipv4.ip_forward', '1');
}

export async function deleteNetns(name: string): Promise<void> {
  await execa('ip', ['netns', 'del', name], { reject: false });
}

export async function listNetns(prefix: string): Promise<string[]> {
  const { stdout } = await execa('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}
