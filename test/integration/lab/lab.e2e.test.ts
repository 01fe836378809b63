// The lab end to end, as a newcomer runs it: up → probe → apply a policy → probe → delete → down,
// then nothing of it is left on the machine.
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../../deploy/lab/lab.js';
import { outcomeOf, type Matrix } from '../../../deploy/lab/matrix.js';
import { defaultTopology } from '../../../deploy/lab/topology.js';
import { uniqueSuffix } from '../../support/netns.js';

const REPO = resolve(import.meta.dirname, '../../..');
const suffix = uniqueSuffix();
const dir = join(tmpdir(), `tern-lab-e2e-${suffix}`);
const prefix = `tl${suffix}-`;
const lab = new Lab({ dir, prefix, repo: REPO });
const ternctl = (...args: string[]) =>
  execa(process.execPath, [join(REPO, 'dist/cli/main.js'), '--lab-dir', dir, ...args], { reject: false });

const topology = defaultTopology(3);
const pods = topology.pods.map((p) => `${p.namespace}/${p.name}`).sort();

/** The sample policy: pods of namespace z accept traffic only from namespace x. */
function expectedDefault(from: string, to: string): 'reached' | 'blocked' {
  return to.startsWith('z/') && !from.startsWith('x/') ? 'blocked' : 'reached';
}

function mismatches(m: Matrix, expected: (from: string, to: string) => string): string[] {
  const out: string[] = [];
  for (const from of pods) {
    for (const to of pods) {
      if (from === to) continue;
      const got = outcomeOf(m, from, to);
      if (got !== expected(from, to)) out.push(`${from} → ${to}: ${got}, expected ${expected(from, to)}`);
    }
  }
  return out;
}

const denyIngressToXa = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'isolate-a', namespace: 'x' },
  spec: { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'] },
};

describe('ternctl lab', () => {
  let recordedPids: number[] = [];

  beforeAll(async () => {
    await lab.up(topology);
    recordedPids = lab.state().processes.map((p) => p.pid);
  }, 180_000);

  afterAll(async () => {
    await lab.down();
  }, 60_000);

  it('up builds 3 nodes, a route reflector with every session up, and 9 pods with addresses', async () => {
    const s = lab.state();
    expect(Object.keys(s.nodes)).toEqual(['node1', 'node2', 'node3']);
    expect(Object.values(s.pods).every((p) => p.ip)).toBe(true);
    const peers = await lab.torPeers();
    expect(peers.map((p) => [p.name, p.established])).toEqual([
      ['node1', true],
      ['node2', true],
      ['node3', true],
    ]);
  });

  it('a second up says the lab exists and changes nothing', async () => {
    await expect(lab.up(topology)).rejects.toThrow('a lab already exists');
    expect(lab.state().processes.map((p) => p.pid)).toEqual(recordedPids);
  });

  it('the matrix shows every pod reaching every other across nodes, except where the sample policy denies', async () => {
    const m = await lab.probe();
    expect(m.cells).toHaveLength(pods.length * (pods.length - 1));
    expect(mismatches(m, expectedDefault)).toEqual([]);
  });

  it('applying a policy changes the matrix, deleting it restores it (through ternctl, as a user would)', async () => {
    const file = join(dir, 'isolate-a.json');
    await execa('sh', ['-c', `cat > ${file}`], { input: JSON.stringify(denyIngressToXa) });
    const applied = await ternctl('lab', 'apply', '-f', file);
    expect(applied.stdout).toContain('networkpolicy/x/isolate-a created');

    const withPolicy = (from: string, to: string) => (to === 'x/a' ? 'blocked' : expectedDefault(from, to));
    let m = await lab.probe();
    expect(mismatches(m, withPolicy)).toEqual([]);

    const deleted = await ternctl('lab', 'delete', '-f', file);
    expect(deleted.stdout).toContain('networkpolicy/x/isolate-a deleted');
    m = await lab.probe();
    expect(mismatches(m, expectedDefault)).toEqual([]);
  });

  it('ternctl reads a node agent: node status as a table and as JSON', async () => {
    const table = await ternctl('--node', 'node2', 'node status');
    const json = await ternctl('--node', 'node2', 'node', 'status', '-o', 'json');
    expect(json.exitCode).toBe(0);
    const st = JSON.parse(json.stdout) as { node: string; peers: Array<{ state: string }> };
    expect(st.node).toBe('node2');
    expect(st.peers.map((p) => p.state)).toEqual(['Established']);
    expect(table.exitCode).toBe(2); // "node status" as one word is not a command
    expect(table.stderr).toContain('unknown command');
  });

  it('bad input is named: unknown pod, unknown node, a malformed policy (nothing written)', async () => {
    expect((await ternctl('lab', 'exec', 'x/nope', '--', 'true')).stderr).toContain(
      'no pod x/nope in the lab',
    );
    expect((await ternctl('--node', 'node9', 'node', 'status')).stderr).toContain(
      'no node "node9" in the lab',
    );
    const bad = join(dir, 'bad.json');
    await execa('sh', ['-c', `cat > ${bad}`], {
      input: JSON.stringify({
        ...denyIngressToXa,
        metadata: { name: 'bad', namespace: 'x' },
        spec: { podSelector: { matchExpressions: [{ key: 'pod', operator: 'In' }] } },
      }),
    });
    const r = await ternctl('lab', 'apply', '-f', bad);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('spec.podSelector.matchExpressions[0].values');
    const ds = await lab.datastore();
    expect(await ds.get('NetworkPolicy', { namespace: 'x', name: 'bad' })).toBeUndefined();
  });

  it('down removes every namespace, process, mount and file of the lab', async () => {
    const before = lab.state();
    await lab.down();
    const { stdout } = await execa('ip', ['netns', 'list']);
    expect(stdout.split('\n').filter((l) => l.startsWith(prefix))).toEqual([]);
    for (const pid of before.processes.map((p) => p.pid))
      expect(
        existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir),
      ).toBe(false);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(prefix);
    expect(existsSync(dir)).toBe(false);
    expect((await ternctl('lab', 'status')).stderr).toContain('no lab is running');
  });
});
