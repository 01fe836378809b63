// Keeps a receive-queue overrun of a subscribed netlink socket from killing the agent, and still
// reports it. netlink@0.3.0's native poll handler aborts the process when the kernel flags an
// overrun as a socket error (docs/routes.md, known issues), so the socket gets NETLINK_NO_ENOBUFS
// and the overrun is noticed instead by the kernel's drop counter for it in /proc/net/netlink.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setNetlinkNoEnobufs } from '../../native/netlink.js';

const NETLINK_ROUTE = 0;

export interface NetlinkSocketInfo {
  inode: number;
  drops: number;
}

/**
 * The row of /proc/net/netlink (columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode) for
 * the rtnetlink socket bound to `portId`, read in the caller's network namespace.
 */
export function parseNetlinkTable(text: string, portId: number): NetlinkSocketInfo | undefined {
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || Number(f[1]) !== NETLINK_ROUTE || Number(f[2]) !== portId) continue;
    return { drops: Number(f[8]), inode: Number(f[9]) };
  }
  return undefined;
}

export function readNetlinkSocket(portId: number): NetlinkSocketInfo | undefined {
  return parseNetlinkTable(readFileSync('/proc/net/netlink', 'utf8'), portId);
}

/** This process's descriptor of the socket with `inode`, found through /proc/self/fd. */
export function fdOfSocketInode(inode: number): number | undefined {
  const want = `socket:[${inode}]`;
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === want) return Number(name);
    } catch {
      // closed between readdir and readlink
    }
  }
  return undefined;
}

export interface OverrunGuardOptions {
  /** How often the drop counter is read. */
  pollMs?: number;
  /** Told once per poll that found new drops. */
  onDrops: (dropped: number) => void;
  /** Told why the socket could not be protected (it then still works, with the abort risk). */
  onUnprotected?: (reason: string) => void;
}

export class OverrunGuard {
  private readonly timer: NodeJS.Timeout | undefined;
  private drops = 0;
  /** Whether the socket carries NETLINK_NO_ENOBUFS. */
  readonly protected: boolean;

  constructor(portId: number, options: OverrunGuardOptions) {
    const info = readNetlinkSocket(portId);
    if (!info) {
      this.protected = false;
      options.onUnprotected?.(`no rtnetlink socket with port ${portId} in /proc/net/netlink`);
      return;
    }
    this.drops = info.drops;
    this.protected = this.protect(info.inode, options);
    this.timer = setInterval(() => {
      const now = readNetlinkSocket(portId);
      if (!now || now.drops === this.drops) return;
      const dropped = now.drops - this.drops;
      this.drops = now.drops;
      options.onDrops(dropped);
    }, options.pollMs ?? 1000);
    this.timer.unref();
  }

  private protect(inode: number, options: OverrunGuardOptions): boolean {
    try {
      const fd = fdOfSocketInode(inode);
      if (fd === undefined) throw new Error(`no descriptor of socket inode ${inode} in /proc/self/fd`);
      setNetlinkNoEnobufs(fd);
      return true;
    } catch (err) {
      options.onUnprotected?.((err as Error).message);
      return false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
