import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_PROC_SYS_NET,
  procSysNet,
  readSysctl,
  sysctlPath,
  writeSysctl,
} from '../../../kernel/sysfs.js';

describe('sysctl root of the CNI dataplane (TERN_PROC_SYS_NET, for the unprivileged DaemonSet)', () => {
  const saved = process.env.TERN_PROC_SYS_NET;
  afterEach(() => {
    if (saved === undefined) delete process.env.TERN_PROC_SYS_NET;
    else process.env.TERN_PROC_SYS_NET = saved;
  });

  it('is /proc/sys/net when unset or empty', () => {
    expect(procSysNet({})).toBe(DEFAULT_PROC_SYS_NET);
    expect(procSysNet({ TERN_PROC_SYS_NET: '' })).toBe('/proc/sys/net');
  });

  it('is the variable’s absolute path, trailing slashes dropped; a relative path is an error naming it', () => {
    expect(procSysNet({ TERN_PROC_SYS_NET: '/host/proc/sys/net/' })).toBe('/host/proc/sys/net');
    expect(() => procSysNet({ TERN_PROC_SYS_NET: 'host/proc' })).toThrow(/TERN_PROC_SYS_NET/);
    expect(sysctlPath('ipv4.conf', 'tern0123456789a', 'proxy_arp', '/host/proc/sys/net')).toBe(
      '/host/proc/sys/net/ipv4/conf/tern0123456789a/proxy_arp',
    );
    expect(sysctlPath('ipv4.neigh', 'eth0.100', 'proxy_delay', '/r')).toBe(
      '/r/ipv4/neigh/eth0.100/proxy_delay',
    );
  });

  it('writeSysctl and readSysctl go through the root the variable names', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tern-proc-sys-net-'));
    try {
      await mkdir(join(root, 'ipv4/conf/terntest'), { recursive: true });
      await writeFile(join(root, 'ipv4/conf/terntest/proxy_arp'), '0');
      process.env.TERN_PROC_SYS_NET = root;
      writeSysctl('ipv4.conf', 'terntest', 'proxy_arp', '1');
      expect(await readFile(join(root, 'ipv4/conf/terntest/proxy_arp'), 'utf8')).toBe('1');
      expect(await readSysctl('ipv4.conf', 'terntest', 'proxy_arp')).toBe('1');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
