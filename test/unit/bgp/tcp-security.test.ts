// The TCP MD5 / GTSM addon wrapper: argument checks before the kernel, typed kernel errors, the
// loader's message, MD5-signed connects over loopback, and two speakers with MD5 over loopback.
import { openSync, closeSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../model/errors.js';
import { NativeAddonMissingError, NativeCallError, openAddon } from '../../../native/addon.js';
import {
  fdOf,
  md5KeyBytes,
  parseMd5Counters,
  secureConnect,
  setMd5Key,
  savedSynTtl,
  setMinTtl,
  setSaveSyn,
  setTtl,
} from '../../../native/tcp-security.js';
import { checkSecurity, explainMd5Timeout, minTtlFor, securityOf } from '../../../bgp/tcp-security.js';
import { BgpSpeaker } from '../../../bgp/speaker.js';
import { waitFor } from '../../support/netns.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(host: string, onConnection: (s: net.Socket) => void = (s) => s.end('hello')) {
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { server, port: (server.address() as net.AddressInfo).port };
}

describe('argument checks (before any system call)', () => {
  it('takes MD5 keys of 1..80 bytes, counting UTF-8 bytes, not characters', () => {
    expect(md5KeyBytes('s3cret')).toEqual(Buffer.from('s3cret'));
    expect(md5KeyBytes('x'.repeat(80)).length).toBe(80);
    expect(() => md5KeyBytes('')).toThrow(/empty/);
    expect(() => md5KeyBytes('x'.repeat(81))).toThrow(/81 bytes.*at most 80/);
    // 41 two-byte characters: 82 bytes.
    expect(() => md5KeyBytes('é'.repeat(41))).toThrow(RangeError);
  });

  it('rejects bad descriptors, addresses and TTLs with errors naming the argument', () => {
    expect(() => setMd5Key(-1, '10.0.0.1', 'k')).toThrow(/fd -1/);
    expect(() => setMd5Key(3, '10.0.0.300', 'k')).toThrow(/peer "10.0.0.300" is not an IP address/);
    expect(() => setTtl(3, 0)).toThrow(/ttl 0 is out of range 1..255/);
    expect(() => setTtl(3, 256)).toThrow(RangeError);
    expect(() => setMinTtl(3, -1)).toThrow(/minTtl -1/);
    expect(() => secureConnect({ host: 'example.com', port: 179, timeoutMs: 1000 })).toThrow(/host/);
    expect(() => secureConnect({ host: '10.0.0.1', port: 0, timeoutMs: 1000 })).toThrow(/port 0/);
    expect(() => secureConnect({ host: '10.0.0.1', port: 179, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() =>
      secureConnect({ host: '10.0.0.1', port: 179, localAddress: 'nope', timeoutMs: 1000 }),
    ).toThrow(/localAddress/);
    expect(() => secureConnect({ host: '10.0.0.1', port: 179, md5Key: '', timeoutMs: 1000 })).toThrow(
      /empty/,
    );
  });

  it('validates per-peer security with ValidationErrors naming the field; GTSM hops map to a minimum TTL', () => {
    expect(() => checkSecurity({ password: 'x'.repeat(81) })).toThrow(ValidationError);
    expect(() => checkSecurity({ password: 'x'.repeat(81) })).toThrow(/password/);
    expect(() => checkSecurity({ ttlSecurity: 0 })).toThrow(/ttlSecurity/);
    expect(() => checkSecurity({ ttlSecurity: 255 })).toThrow(/1..254/);
    expect(() => checkSecurity({ password: 'ok', ttlSecurity: 1 })).not.toThrow();
    expect(minTtlFor(1)).toBe(255);
    expect(minTtlFor(2)).toBe(254);
    expect(securityOf({})).toBeUndefined();
    expect(securityOf({ ttlSecurity: 2 })).toEqual({ ttlSecurity: 2 });
  });
});

describe('loader and kernel errors', () => {
  it('names the missing build and how to make it', () => {
    let err: unknown;
    try {
      openAddon(['/nonexistent/tern_native.node']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeAddonMissingError);
    expect((err as Error).message).toMatch(/\/nonexistent\/tern_native.node/);
    expect((err as Error).message).toMatch(/node-gyp rebuild --nodedir=\/usr/);
  });

  it('reports a refused socket option as NativeCallError with the option and errno name', async () => {
    const { server } = await listen('127.0.0.1');
    let err: unknown;
    try {
      setMd5Key(fdOf(server), 'fd00::1', 'k'); // an IPv4 socket cannot hold an IPv6 peer's key
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeCallError);
    expect(err).toMatchObject({ option: 'TCP_MD5SIG', code: 'EAFNOSUPPORT', errno: 97 });

    const file = openSync('/dev/null', 'r');
    cleanups.push(() => closeSync(file));
    expect(() => setTtl(file, 255)).toThrow(
      expect.objectContaining({ option: 'SO_DOMAIN', code: 'ENOTSOCK' }),
    );
    // Removing a key that is not there.
    expect(() => setMd5Key(fdOf(server), '127.0.0.9', undefined)).toThrow(
      expect.objectContaining({ option: 'TCP_MD5SIG', code: 'ENOENT' }),
    );
  });

  it('reads the TCP MD5 drop counters of /proc/net/netstat and explains a silent timeout with them', () => {
    const text =
      'TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure\nTcpExt: 0 4 1 7\nIpExt: InNoRoutes\nIpExt: 0\n';
    expect(parseMd5Counters(text)).toEqual({ notFound: 4, unexpected: 1, failure: 7 });
    const before = { notFound: 4, unexpected: 1, failure: 7 };
    expect(explainMd5Timeout(before, { ...before, failure: 9 })).toMatch(
      /2 with a wrong signature.*keys differ/,
    );
    expect(explainMd5Timeout(before, { ...before, notFound: 5 })).toMatch(/peer has no key/);
    expect(explainMd5Timeout(before, before)).toMatch(/silently/);
  });
});

describe('MD5-signed connects over loopback', () => {
  it('connects when the listener holds the same key, and the connected socket carries data both ways', async () => {
    const { server, port } = await listen('127.0.4.1', (s) => s.on('data', (d) => s.end(`echo ${d}`)));
    setMd5Key(fdOf(server), '127.0.4.2', 'same key');
    setTtl(fdOf(server), 255); // our minimum TTL 255 would drop a SYN-ACK sent with TTL 64
    const sock = await secureConnect({
      host: '127.0.4.1',
      port,
      localAddress: '127.0.4.2',
      md5Key: 'same key',
      ttl: 255,
      minTtl: 255,
      timeoutMs: 5000,
    }).socket;
    cleanups.push(() => sock.destroy());
    expect(sock.remoteAddress).toBe('127.0.4.1');
    expect(sock.localAddress).toBe('127.0.4.2');
    sock.write('ping');
    const reply = await new Promise<string>((resolve) => sock.once('data', (d) => resolve(String(d))));
    expect(reply).toBe('echo ping');
  });

  it('never connects with a different key (the kernel drops the SYN): times out with ETIMEDOUT', async () => {
    let accepted = 0;
    const { server, port } = await listen('127.0.4.3', (s) => {
      accepted++;
      s.destroy();
    });
    setMd5Key(fdOf(server), '127.0.4.4', 'right');
    const attempt = secureConnect({
      host: '127.0.4.3',
      port,
      localAddress: '127.0.4.4',
      md5Key: 'wrong',
      timeoutMs: 1500,
    });
    await expect(attempt.socket).rejects.toMatchObject({ option: 'connect', code: 'ETIMEDOUT' });
    // An unsigned plain connect is dropped as well.
    const plain = net.connect({ host: '127.0.4.3', port, localAddress: '127.0.4.4' });
    plain.on('error', () => {});
    cleanups.push(() => plain.destroy());
    await new Promise((r) => setTimeout(r, 1000));
    expect(plain.readyState).toBe('opening');
    expect(accepted).toBe(0);
  });

  it('reports a refused connect as ECONNREFUSED and a cancelled one as ECANCELED', async () => {
    const { server, port } = await listen('127.0.4.5');
    await new Promise((r) => server.close(r));
    // No key here: the closed port's unsigned RST would be dropped on a socket holding one.
    await expect(
      secureConnect({ host: '127.0.4.5', port, ttl: 64, timeoutMs: 5000 }).socket,
    ).rejects.toMatchObject({ option: 'connect', code: 'ECONNREFUSED' });
    const { port: port2 } = await listen('127.0.4.6');
    const attempt = secureConnect({ host: '127.0.4.6', port: port2, md5Key: 'k', timeoutMs: 5000 });
    attempt.cancel();
    await expect(attempt.socket).rejects.toMatchObject({ code: 'ECANCELED' });
  });
});

describe('TTL and minimum TTL over loopback (loopback does not decrement the TTL)', () => {
  for (const [family, host] of [
    ['IPv4', '127.0.4.31'],
    ['IPv6', '::1'],
  ] as const) {
    it(`${family}: a minimum TTL of 255 accepts a listener that answers with TTL 255 and drops one at the default 64`, async () => {
      const gtsm = await listen(host);
      setTtl(fdOf(gtsm.server), 255);
      const sock = await secureConnect({ host, port: gtsm.port, ttl: 255, minTtl: 255, timeoutMs: 5000 })
        .socket;
      cleanups.push(() => sock.destroy());
      expect(await new Promise<string>((r) => sock.once('data', (d) => r(String(d))))).toBe('hello');

      const plain = await listen(host); // SYN-ACK with the default TTL / hop limit (64)
      await expect(
        secureConnect({ host, port: plain.port, ttl: 255, minTtl: 255, timeoutMs: 1500 }).socket,
      ).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    });
  }
});

describe('saved SYN', () => {
  it("tells the TTL an accepted connection's SYN arrived with, once", async () => {
    const accepted: net.Socket[] = [];
    const { server, port } = await listen('127.0.4.41', (s) => void accepted.push(s));
    setSaveSyn(fdOf(server), true);
    const sock = await secureConnect({ host: '127.0.4.41', port, ttl: 200, timeoutMs: 5000 }).socket;
    cleanups.push(() => sock.destroy());
    const child = await waitFor('accepted', () => accepted[0]);
    cleanups.push(() => child.destroy());
    expect(savedSynTtl(fdOf(child))).toBe(200);
    expect(savedSynTtl(fdOf(child))).toBeUndefined();
  });
});

describe('two speakers with TCP MD5 over loopback', () => {
  const speakers: BgpSpeaker[] = [];
  afterEach(async () => {
    await Promise.all(speakers.splice(0).map((s) => s.stop()));
  });
  async function speaker(asn: number, host: string) {
    const s = new BgpSpeaker({ asn, routerId: host.replace(/^127/, '10'), listen: { host, port: 0 } });
    speakers.push(s);
    await s.start();
    return s;
  }
  const state = (s: BgpSpeaker) => s.peers()[0]?.state;

  it('establishes with matching passwords, stays down with different ones, and comes up once they match', async () => {
    const a = await speaker(65001, '127.0.4.11');
    const b = await speaker(65002, '127.0.4.12');
    const active = {
      address: '127.0.4.12',
      asn: 65002,
      localAddress: '127.0.4.11',
      port: b.listenPort!,
      connectRetryTime: 1,
    };
    a.addPeer({ ...active, password: 'wrong' });
    b.addPeer({ address: '127.0.4.11', asn: 65001, passive: true, password: 'right' });
    await waitFor(
      'a reports a connect failure',
      () => a.peers()[0]?.lastError?.startsWith('connect: timed out'),
      10_000,
    );
    expect(state(a)).not.toBe('Established');
    expect(state(b)).not.toBe('Established');
    // Which counter rose is checked in a private namespace (integration); the root one is shared.
    expect(a.peers()[0]?.lastError).toMatch(/TCP MD5/);
    a.updatePeer({ ...active, password: 'right' });
    await waitFor('a established', () => state(a) === 'Established', 10_000);
    await waitFor('b established', () => state(b) === 'Established', 10_000);
  });
});
