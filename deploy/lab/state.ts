// What the lab has created, written to disk as it goes, so that `lab down` removes all of
// it even after `up` crashed half way.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LAB_NETNS_PREFIX = 'ternlab-';

export interface LabProcess {
  role: string;
  pid: number;
  /** Command line, to make sure a recycled PID is not ours before killing it. */
  cmdline: string;
}

export interface LabState {
  dir: string;
  /** Prefix of every network namespace this lab creates (`down` also sweeps by it). */
  prefix: string;
  createdAt: string;
  namespaces: string[];
  processes: LabProcess[];
  /** The topology the lab was built from (JSON), for status and verbs. */
  topology?: unknown;
  /** Addresses and sockets of each node, filled as nodes come up. */
  nodes: Record<
    string,
    { netns: string; address: string; agentSocket: string; cniSocket: string; httpSocket: string }
  >;
  pods: Record<string, { netns: string; node: string; containerID: string; ip?: string }>;
  etcdEndpoint?: string;
  torAddress?: string;
  /** The Kubernetes control plane (kubernetes labs): its namespace, API server URL, admin kubeconfig. */
  kube?: { netns: string; address: string; url: string; adminKubeconfig: string };
}

export class LabStateFile {
  readonly file: string;
  constructor(readonly dir: string) {
    this.file = join(dir, 'state.json');
  }

  exists(): boolean {
    return existsSync(this.file);
  }

  read(): LabState {
    return JSON.parse(readFileSync(this.file, 'utf8')) as LabState;
  }

  create(prefix: string): LabState {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const state: LabState = {
      dir: this.dir,
      prefix,
      createdAt: new Date().toISOString(),
      namespaces: [],
      processes: [],
      nodes: {},
      pods: {},
    };
    this.write(state);
    return state;
  }

  write(state: LabState): void {
    writeFileSync(this.file + '.tmp', JSON.stringify(state, null, 2));
    // rename is atomic: a crash never leaves a half-written state file.
    renameSync(this.file + '.tmp', this.file);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
