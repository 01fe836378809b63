// A real runtime calls tern: a private containerd (Debian's 1.6) and `ctr run --cni --rootfs` with a
// local rootfs (no image pull). ctr runs the CNI plugins itself from /etc/cni/net.d and
// /opt/cni/bin, so it runs in a private mount namespace where those two paths are a tmpfs and an
// overlay holding only our conflist and our `tern`. containerd and ctr run in the node netns
// (nsenter, which keeps the host's cgroup mounts that runc needs).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopProcess, waitFor } from '../../support/netns.js';
import { CniLab, TERN_BIN } from './harness.js';

// scripts/setup.sh installs containerd (and with it ctr and runc): missing ones are a setup
// failure, reported as such rather than skipped.
const missing = ['/usr/bin/ctr', '/usr/bin/containerd', '/usr/sbin/runc'].filter((f) => !existsSync(f));
const lab = new CniLab({ pools: ['ctr=10.90.0.0/24,26'] });
let dir = '';
let containerd: ChildProcess | undefined;
const ID = `terntest${lab.netns.suffix}`;

const inNode = (cmd: string[]) => ['nsenter', `--net=/var/run/netns/${lab.node}`, ...cmd];
const ctr = (args: string[]) => {
  const [c, ...rest] = inNode(['ctr', '-a', join(dir, 'containerd.sock'), ...args]);
  return execa(c!, rest, { reject: false, timeout: 30_000 });
};

async function buildRootfs(rootfs: string): Promise<void> {
  for (const bin of ['/bin/sleep', '/bin/sh', '/usr/sbin/ip']) {
    const libs = (await execa('ldd', [bin])).stdout.match(/\/[^\s)]+/g) ?? [];
    for (const f of [bin, ...libs]) {
      await mkdir(join(rootfs, dirname(f)), { recursive: true });
      await cp(f, join(rootfs, f), { dereference: true });
    }
  }
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc']) await mkdir(join(rootfs, d), { recursive: true });
}

beforeAll(async () => {
  if (missing.length)
    throw new Error(`containerd is not installed (missing ${missing.join(', ')}): run scripts/setup.sh`);
  await lab.start();
  dir = await mkdtemp('/dev/shm/tern-ctr-');
  await Promise.all(['root', 'state', 'rootfs', 'etc-upper', 'etc-work'].map((d) => mkdir(join(dir, d))));
  await buildRootfs(join(dir, 'rootfs'));
  await writeFile(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${dir}/containerd.sock"`,
      '[ttrpc]',
      `  address = "${dir}/containerd.sock.ttrpc"`,
    ].join('\n'),
  );
  // Installed as on a node: the bundle itself is the plugin binary.
  await copyFile(TERN_BIN, join(dir, 'tern'));
  await chmod(join(dir, 'tern'), 0o755);
  await writeFile(
    join(dir, '10-tern.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'tern-ctr',
      plugins: [{ type: 'tern', agentSocket: lab.socket }],
    }),
  );
  const [c, ...args] = inNode(['containerd', '--config', join(dir, 'config.toml')]);
  containerd = spawn(c!, args, { stdio: 'ignore' });
  await waitFor('containerd', async () => (await ctr(['version'])).exitCode === 0, 60_000, 200);
}, 300_000);

afterAll(async () => {
  if (dir) {
    await ctr(['tasks', 'kill', '-s', 'SIGKILL', ID]);
    await ctr(['containers', 'delete', ID]);
  }
  await stopProcess(containerd?.pid);
  await lab.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('containerd (ctr run --cni) calls tern', () => {
  it('the container gets its address and is pingable from the node; removal runs DEL and leaves nothing', async () => {
    const script = [
      `mount -t tmpfs none /opt && mkdir -p /opt/cni/bin && cp ${dir}/tern /opt/cni/bin/tern`,
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/etc-upper,workdir=${dir}/etc-work /etc`,
      `mkdir -p /etc/cni/net.d && cp ${dir}/10-tern.conflist /etc/cni/net.d/`,
      `exec ctr -a ${dir}/containerd.sock run --rm --cni --rootfs ${dir}/rootfs ${ID} /bin/sleep 600`,
    ].join(' && ');
    const [c, ...args] = inNode(['unshare', '-m', '--propagation', 'private', 'sh', '-c', script]);
    const run = spawn(c!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    run.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    run.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => run.on('exit', (code) => r(code)));

    // ctr's container ID is "<namespace>-<id>" and it sends no K8S_* args.
    const route = await waitFor(
      "tern's route for the container",
      async () => {
        if (run.exitCode !== null) throw new Error(`ctr exited ${run.exitCode}: ${out}`);
        return (await lab.ip(['-4', 'route', 'show', 'proto', '90'])).stdout.trim();
      },
      60_000,
      200,
    );
    const ip = route.split(' ')[0]!;
    const links = (await lab.ip(['-d', 'link', 'show'])).stdout;
    expect(links).toContain(`alias tern:tern-ctr:default-${ID}:eth0`);
    expect((await lab.inNode('ping', ['-c1', '-W2', ip], false)).exitCode).toBe(0);
    const inside = await ctr([
      'tasks',
      'exec',
      '--exec-id',
      'probe',
      ID,
      '/usr/sbin/ip',
      '-4',
      'addr',
      'show',
      'dev',
      'eth0',
    ]);
    expect(inside.stdout).toContain(`inet ${ip}/32`);

    await ctr(['tasks', 'kill', '-s', 'SIGKILL', ID]);
    await exited;
    await waitFor('DEL to remove the attachment', async () => {
      const r = await lab.residue();
      return r.veths.length === 0 && r.routes.length === 0;
    });
    expect(lab.agentLog).toMatch(/"command":"DEL","containerId":"default-terntest/);
  }, 180_000);
});
