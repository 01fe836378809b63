// The real agents (tern-node in the lab, etcd datastore) with cluster IPAM GC switched on: they
// elect one GC runner by the Lease, and a pod whose CNI DEL never came is reclaimed by it.
// The agents run from a private build of this tree (the shared dist/ is rebuilt by others).
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../../deploy/lab/lab.js';
import type { Datastore } from '../../../datastore/types.js';
import { agentGet, REPO, threeNodes } from '../felix/lab-support.js';
import { uniqueSuffix, waitFor } from '../../support/netns.js';

const AGENT_ARGS = [
  '--ipam-gc-enabled',
  'true',
  '--ipam-gc-grace-seconds',
  '2',
  '--ipam-gc-interval-seconds',
  '1',
];

let build: string | undefined;
let lab: Lab | undefined;

/** dist/ compiled from this tree into a directory of our own, with the repo's scripts and packages. */
async function privateBuild(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-gc-agents-'));
  build = dir;
  await execa(
    'npx',
    [
      'tsc',
      '-p',
      'tsconfig.build.json',
      '--outDir',
      join(dir, 'dist'),
      '--tsBuildInfoFile',
      join(dir, 'tsbuildinfo'),
    ],
    { cwd: REPO, reject: false }, // others' work in progress may not typecheck; tsc still emits
  );
  await copyFile(join(REPO, 'package.json'), join(dir, 'package.json'));
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  // The CNI bundler runs as a script only when invoked by its own path (a symlinked scripts/
  // would not be), and bundles <its root>/cni/main.ts: a copy of it, next to links to the sources.
  await mkdir(join(dir, 'scripts'));
  await copyFile(join(REPO, 'scripts/build-cni-bundle.mjs'), join(dir, 'scripts/build-cni-bundle.mjs'));
  for (const src of ['cni', 'model']) await symlink(join(REPO, src), join(dir, src));
  // dist/native/addon.js finds the native addon (netns switching for the CNI data path) at
  // <dir>/native/build, as it finds the repo's from the repo's dist/.
  await symlink(join(REPO, 'native'), join(dir, 'native'));
  return dir;
}

const addressesHeld = async (ds: Datastore) =>
  (await ds.list('IPAMBlock')).items.flatMap((b) => Object.values(b.spec.allocations).map((a) => a.pod));

describe('cluster IPAM GC in the running agents', () => {
  beforeAll(async () => {
    const repo = await privateBuild();
    const suffix = uniqueSuffix();
    lab = new Lab({ dir: join(build!, 'lab'), prefix: `tg${suffix}-`, repo, agentArgs: AGENT_ARGS });
    await lab.up(threeNodes({ bgp: { mode: 'mesh' } }));
  }, 300_000);
  afterAll(async () => {
    await lab?.down();
    if (build) await rm(build, { recursive: true, force: true });
  }, 120_000);

  it('exactly one agent holds the GC Lease, and it frees the address of a pod deleted without a CNI DEL', async () => {
    const ds = await lab!.datastore();
    await lab!.createPod({ namespace: 't', name: 'kept', node: 'node1' }, { server: false });
    await lab!.createPod({ namespace: 't', name: 'lost', node: 'node2' }, { server: false });
    const leader = await waitFor(
      'a GC leader',
      async () =>
        (await ds.get('Lease', { namespace: 'tern-system', name: 'tern-ipam-gc' }))?.spec?.holderIdentity,
      30_000,
    );
    const leaders: string[] = [];
    for (const node of ['node1', 'node2', 'node3']) {
      const metrics = (await agentGet(lab!, node, '/metrics')).body;
      if (/^tern_ipam_gc_leader 1$/m.test(metrics)) leaders.push(node);
    }
    expect(leaders).toEqual([leader]);

    // The pod goes away as if its kubelet never ran DEL (a force delete, a dead node).
    await ds.delete('Pod', { namespace: 't', name: 'lost' });
    await waitFor(
      'the lost pod’s address freed',
      async () => !(await addressesHeld(ds)).includes('lost'),
      60_000,
      200,
    );
    expect(await addressesHeld(ds)).toContain('kept');
    const metrics = (await agentGet(lab!, leader, '/metrics')).body;
    expect(metrics).toMatch(/^tern_ipam_gc_freed_addresses_total\{reason="pod-missing"\} 1$/m);
  }, 120_000);
});
