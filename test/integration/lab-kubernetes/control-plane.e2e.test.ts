// `lab up --kubernetes`, step one: a real control plane (etcd 3.6, kube-apiserver with TLS, Node +
// RBAC and ServiceAccount tokens, controller-manager, scheduler) in the lab's control namespace,
// reachable on its rack address, and `lab down` leaves none of it behind.
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../../deploy/lab/lab.js';
import { parseTopology } from '../../../deploy/lab/topology.js';
import { uniqueSuffix } from '../../support/netns.js';

const REPO = resolve(import.meta.dirname, '../../..');
const suffix = uniqueSuffix();
const dir = join(tmpdir(), `tern-k8slab-${suffix}`);
const prefix = `tk${suffix}-`;
const lab = new Lab({ dir, prefix, repo: REPO });
const topology = parseTopology({ kubernetes: true, nodes: [{ name: 'node1' }] });

describe('lab up --kubernetes: the control plane', () => {
  let pids: number[] = [];

  beforeAll(async () => {
    await lab.up(topology);
    pids = lab.state().processes.map((p) => p.pid);
  }, 240_000);

  afterAll(async () => {
    await lab.down();
  }, 60_000);

  it('serves the API with TLS on the control namespace rack address, as the kubernetes Service endpoint', async () => {
    const s = lab.state();
    expect(s.kube?.url).toBe('https://10.77.0.2:6443');
    expect((await lab.kubectl(['get', '--raw', '/readyz'])).stdout).toBe('ok');
    const ep = JSON.parse(
      (await lab.kubectl(['get', 'endpointslices', '-n', 'default', '-o', 'json'])).stdout,
    ) as {
      items: Array<{ metadata: { name: string }; endpoints: Array<{ addresses: string[] }> }>;
    };
    const kubernetes = ep.items.find((i) => i.metadata.name === 'kubernetes');
    expect(kubernetes?.endpoints.flatMap((e) => e.addresses)).toEqual(['10.77.0.2']);
  });

  it('authorizes with RBAC: a kubelet token may not list secrets', async () => {
    const r = await lab.kubectl(
      ['auth', 'can-i', 'list', 'secrets', '-A', '--as=system:node:node1', '--as-group=system:nodes'],
      {
        allowFailure: true,
      },
    );
    expect(r.stdout.trim()).toMatch(/^no\b/);
  });

  it('runs the controller-manager (it creates every namespace its default ServiceAccount) and the scheduler', async () => {
    await lab.kubectl(['create', 'namespace', 'probe']);
    let sa = '';
    for (let i = 0; i < 100 && !sa; i++) {
      sa = (
        await lab.kubectl(['-n', 'probe', 'get', 'serviceaccount', 'default', '-o', 'name'], {
          allowFailure: true,
        })
      ).stdout;
      if (!sa) await new Promise((r) => setTimeout(r, 200));
    }
    expect(sa).toBe('serviceaccount/default');
    const healthz = await execa('ip', [
      'netns',
      'exec',
      lab.state().kube!.netns,
      'curl',
      '-sk',
      'https://127.0.0.1:10259/healthz',
    ]);
    expect(healthz.stdout).toBe('ok');
  });

  it('down stops every control plane process and removes its namespace and files', async () => {
    const netns = lab.state().kube!.netns;
    await lab.down();
    for (const pid of pids) expect(existsSync(`/proc/${pid}`) && !isZombie(pid)).toBe(false);
    const { stdout } = await execa('ip', ['netns', 'list']);
    expect(stdout).not.toContain(netns);
    expect(existsSync(dir)).toBe(false);
  });
});

function isZombie(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
