// ternctl's verbs against a running lab, as an operator types them, and a failed `lab up`
// that must remove what it created.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../../deploy/lab/lab.js';
import type { Matrix } from '../../../deploy/lab/matrix.js';
import { parseTopology } from '../../../deploy/lab/topology.js';
import { uniqueSuffix } from '../../support/netns.js';

const REPO = resolve(import.meta.dirname, '../../..');

function labIn(tag: string) {
  const suffix = uniqueSuffix();
  const dir = join(tmpdir(), `tern-lab-${tag}-${suffix}`);
  const prefix = `tc${suffix}-`;
  const lab = new Lab({ dir, prefix, repo: REPO });
  const ternctl = async (...args: string[]) =>
    execa(process.execPath, [join(REPO, 'dist/cli/main.js'), '--lab-dir', dir, ...args], { reject: false });
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await ternctl(...args, '-o', 'json');
    if (r.exitCode !== 0) throw new Error(`ternctl ${args.join(' ')} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const leftovers = async () =>
    (await execa('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(prefix));
  return { dir, prefix, lab, ternctl, json, leftovers };
}

describe('ternctl against a two-node lab', () => {
  const t = labIn('verbs');
  const topology = parseTopology({
    nodes: [{ name: 'n1' }, { name: 'n2' }],
    namespaces: [{ name: 'web' }, { name: 'db' }],
    pods: [
      { namespace: 'web', name: 'front', node: 'n1', labels: { app: 'front' } },
      { namespace: 'db', name: 'pg', node: 'n2', labels: { app: 'pg' }, ip: '10.244.200.10' },
    ],
  });

  beforeAll(async () => {
    await t.lab.up(topology);
  }, 180_000);
  afterAll(async () => {
    await t.lab.down();
  }, 60_000);

  it('a fixed address from the topology is the pod address, and pods on both nodes reach each other (TCP and UDP)', async () => {
    expect(t.lab.state().pods['db/pg']?.ip).toBe('10.244.200.10');
    for (const protocol of ['TCP', 'UDP']) {
      const m = await t.json<Matrix>('lab', 'probe', '--protocol', protocol, '--port', '81');
      expect(m.cells.map((c) => [c.from, c.to, c.outcome])).toEqual([
        ['db/pg', 'web/front', 'reached'],
        ['web/front', 'db/pg', 'reached'],
      ]);
    }
  });

  it('SCTP probes say the kernel lacks SCTP instead of failing or pretending', async () => {
    const m = await t.json<Matrix>('lab', 'probe', '--protocol', 'SCTP');
    expect(
      m.cells.every((c) => c.outcome === 'unsupported' && c.detail === 'SCTP unsupported by this kernel'),
    ).toBe(true);
  });

  it('bgp peers, bgp rib and routes show the session to the ToR, the learned block and the programmed routes', async () => {
    const peers = await t.json<Array<{ address: string; state: string }>>('--node', 'n1', 'bgp', 'peers');
    expect(peers.map((p) => [p.address, p.state])).toEqual([[t.lab.state().torAddress, 'Established']]);
    const status = await t.json<{ originated: string[] }>('--node', 'n2', 'node', 'status');
    const rib = await t.json<Array<{ prefix: string; paths: Array<{ nextHop?: string }> }>>(
      '--node',
      'n1',
      'bgp',
      'rib',
    );
    for (const prefix of status.originated) {
      expect(rib.find((e) => e.prefix === prefix)?.paths[0]?.nextHop).toBe(t.lab.state().nodes.n2!.address);
    }
    const routes = await t.json<Array<{ dst: string; class: string }>>('--node', 'n1', 'routes');
    // iproute2 prints host routes without their /32.
    const withLength = (dst: string) => (dst.includes('/') ? dst : `${dst}/32`);
    const learned = routes.filter((r) => r.class === 'bgp').map((r) => withLength(r.dst));
    expect(learned.sort()).toEqual([...status.originated].sort());
    expect(routes.some((r) => r.class === 'pod' && r.dst === t.lab.state().pods['web/front']!.ip)).toBe(true);
  });

  it('ipam show lists the node blocks and its allocations', async () => {
    const ipam = await t.json<{ blocks: string[]; allocations: Array<{ address: string; pod?: string }> }>(
      '--node',
      'n1',
      'ipam',
      'show',
    );
    expect(ipam.blocks.length).toBeGreaterThan(0);
    expect(ipam.allocations.map((a) => [a.address, a.pod])).toEqual([
      [t.lab.state().pods['web/front']!.ip, 'front'],
    ]);
  });

  it('policy explain names the deciding policy, and lab exec reaches a pod by ping', async () => {
    const file = join(t.dir, 'deny-db.json');
    await execa('sh', ['-c', `cat > ${file}`], {
      input: JSON.stringify({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'db-from-nowhere', namespace: 'db' },
        spec: { podSelector: {}, policyTypes: ['Ingress'] },
      }),
    });
    expect((await t.ternctl('lab', 'apply', '-f', file)).exitCode).toBe(0);
    const explained = await t.json<{ verdict: string; selectedBy: { ingress: string[] } }>(
      '--node',
      'n2',
      'policy',
      'explain',
      'db/pg',
      '--from',
      'web/front',
      '--port',
      '80/TCP',
    );
    expect(explained.verdict).toBe('deny');
    expect(explained.selectedBy.ingress).toEqual(['networkpolicy:db/db-from-nowhere']);
    const pgIp = t.lab.state().pods['db/pg']!.ip!;
    const blocked = await t.ternctl('lab', 'exec', 'web/front', '--', 'ping', '-c1', '-W1', pgIp);
    expect(blocked.exitCode).not.toBe(0);
    expect((await t.ternctl('lab', 'delete', '-f', file)).exitCode).toBe(0);
    const pinged = await t.ternctl('lab', 'exec', 'web/front', '--', 'ping', '-c1', '-W2', pgIp);
    expect(pinged.exitCode).toBe(0);
  });

  it('add-pod and del-pod create and remove a pod through the CNI plugin, leaving no veth, route or allocation', async () => {
    const added = await t.ternctl('lab', 'add-pod', 'web/extra', '--node', 'n2', '--labels', 'app=extra');
    expect(added.exitCode).toBe(0);
    const ip = t.lab.state().pods['web/extra']!.ip!;
    expect(added.stdout).toContain(ip);
    const n2 = t.lab.state().nodes.n2!.netns;
    expect((await execa('ip', ['-n', n2, 'route', 'show', `${ip}/32`])).stdout).toContain('proto 90');
    expect((await t.ternctl('lab', 'add-pod', 'web/extra', '--node', 'n2')).stderr).toContain(
      'pod web/extra already exists',
    );
    expect((await t.ternctl('lab', 'del-pod', 'web/extra')).exitCode).toBe(0);
    expect((await execa('ip', ['-n', n2, 'route', 'show', `${ip}/32`])).stdout).toBe('');
    const ipam = await t.json<{ allocations: Array<{ address: string }> }>('--node', 'n2', 'ipam', 'show');
    expect(ipam.allocations.map((a) => a.address)).not.toContain(ip);
    expect((await t.ternctl('lab', 'del-pod', 'web/extra')).stderr).toContain('no pod web/extra in the lab');
  });

  it('ipam release frees an address by hand, and releasing it again is an error naming it', async () => {
    const ip = t.lab.state().pods['web/front']!.ip!;
    const r = await t.ternctl('--node', 'n1', 'ipam', 'release', ip);
    expect(r.stdout).toContain(`released ${ip}`);
    const again = await t.ternctl('--node', 'n1', 'ipam', 'release', ip);
    expect(again.exitCode).not.toBe(0);
    expect(again.stderr).toContain(ip);
  });
});

describe('a failed lab up', () => {
  it('names the problem and leaves no namespace, process or file behind', async () => {
    const t = labIn('fail');
    const topology = parseTopology({
      nodes: [{ name: 'n1' }],
      namespaces: [{ name: 'x' }],
      pods: [{ namespace: 'x', name: 'a', node: 'n1', ip: '192.0.2.7' }],
    });
    await expect(t.lab.up(topology)).rejects.toThrow(/CNI ADD for x\/a failed: .*192\.0\.2\.7/);
    expect(await t.leftovers()).toEqual([]);
    expect(existsSync(t.dir)).toBe(false);
  }, 180_000);
});
