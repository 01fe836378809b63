import { describe, expect, it } from 'vitest';
import { CniError } from '../../../cni/errors.js';
import { parseCniArgs, parseRequest, interfaceNameProblem, NON_K8S_NAMESPACE } from '../../../cni/request.js';

const env = (over: Record<string, string | undefined> = {}) => {
  const base: Record<string, string> = {
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: 'abc123',
    CNI_NETNS: '/var/run/netns/x',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
};
const conf = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: '1.0.0', name: 'tern', type: 'tern', ...over });

function codeOf(fn: () => unknown): { code: number; msg: string; details?: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError)
      return { code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) };
    throw e;
  }
  throw new Error('expected a CniError');
}

describe('request parsing (checklist A, B, G–I)', () => {
  it.each([
    ['empty CNI_COMMAND', { CNI_COMMAND: '' }, 4, /CNI_COMMAND/],
    ['unknown CNI_COMMAND', { CNI_COMMAND: 'FROB' }, 4, /unknown CNI_COMMAND "FROB"/],
    ['ADD without CNI_NETNS', { CNI_NETNS: '' }, 4, /CNI_NETNS/],
    [
      'ADD without CNI_CONTAINERID and CNI_IFNAME',
      { CNI_CONTAINERID: undefined, CNI_IFNAME: '' },
      4,
      /CNI_CONTAINERID,CNI_IFNAME/,
    ],
    ['ADD without CNI_PATH (skel)', { CNI_PATH: undefined }, 4, /CNI_PATH/],
    ['container ID with bad characters', { CNI_CONTAINERID: 'a/b' }, 4, /CNI_CONTAINERID/],
    ['ifname longer than 15 bytes', { CNI_IFNAME: 'abcdefghijklmnop' }, 4, /CNI_IFNAME/],
    ['ifname "."', { CNI_IFNAME: '.' }, 4, /CNI_IFNAME/],
    ['ifname with a slash', { CNI_IFNAME: 'a/b' }, 4, /CNI_IFNAME/],
    ['ifname with a colon', { CNI_IFNAME: 'a:b' }, 4, /CNI_IFNAME/],
    ['ifname with whitespace', { CNI_IFNAME: 'a b' }, 4, /CNI_IFNAME/],
    ['CNI_ARGS pair without =', { CNI_ARGS: 'K8S_POD_NAME' }, 4, /CNI_ARGS/],
  ])('%s → code %i naming the problem', (_what, over, code, msg) => {
    const r = codeOf(() => parseRequest(env(over), conf()));
    expect(r.code).toBe(code);
    expect(r.msg).toMatch(msg);
  });

  it.each([
    ['not JSON', '{nope', 6],
    ['JSON but not an object', '[1,2]', 6],
    ['missing name', JSON.stringify({ cniVersion: '1.0.0', type: 'tern' }), 7],
    ['invalid name', conf({ name: 'bad/name' }), 7],
    ['missing cniVersion (means 0.1.0)', JSON.stringify({ name: 'n', type: 'tern' }), 1],
    ['unknown cniVersion', conf({ cniVersion: '0.2.0' }), 1],
    ['mtu out of range', conf({ mtu: 10 }), 7],
    ['a delegate IPAM type', conf({ ipam: { type: 'host-local' } }), 2],
  ])('stdin %s → code %i', (_what, stdin, code) => {
    expect(codeOf(() => parseRequest(env(), stdin)).code).toBe(code);
  });

  it('an unknown version names the config version and the supported ones', () => {
    const r = codeOf(() => parseRequest(env(), conf({ cniVersion: '9.9.9' })));
    expect(r.msg).toBe('incompatible CNI versions');
    expect(r.details).toContain('9.9.9');
    expect(r.details).toContain('0.3.0 0.3.1 0.4.0 1.0.0 1.1.0');
  });

  it('an unsupported field error names key and value', () => {
    expect(codeOf(() => parseRequest(env(), conf({ ipam: { type: 'dhcp' } }))).msg).toContain(
      'ipam.type="dhcp"',
    );
  });

  it.each([
    ['CHECK', '0.3.1', 'config version does not allow CHECK'],
    ['GC', '1.0.0', 'config version does not allow GC'],
    ['STATUS', '1.0.0', 'config version does not allow STATUS'],
  ])('%s with a %s config → code 1', (command, version, msg) => {
    const r = codeOf(() => parseRequest(env({ CNI_COMMAND: command }), conf({ cniVersion: version })));
    expect(r).toMatchObject({ code: 1, msg });
  });

  it('DEL accepts an empty CNI_NETNS', () => {
    const r = parseRequest(env({ CNI_COMMAND: 'DEL', CNI_NETNS: '' }), conf());
    expect(r.command).toBe('DEL');
    if (r.command === 'DEL') expect(r.netns).toBe('');
  });

  // Checklist A3 quotes libcni's ValidateContainerID (empty → 3), but that check runs in the
  // runtime before the plugin is exec'd. In the plugin, skel's env check comes first and reports an
  // empty CNI_CONTAINERID as a missing variable, code 4 — the spec's code for invalid env vars,
  // which names CNI_CONTAINERID. Code 3 would also tell the runtime it need not clean up (DEL).
  it.each(['ADD', 'CHECK', 'DEL'])(
    '%s with an empty CNI_CONTAINERID is code 4 naming it (as skel), never 3 (container unknown)',
    (command) => {
      const r = codeOf(() => parseRequest(env({ CNI_COMMAND: command, CNI_CONTAINERID: '' }), conf()));
      expect(r).toEqual({
        code: 4,
        msg: 'required env variables [CNI_CONTAINERID] missing',
        details: `CNI_COMMAND=${command}`,
      });
    },
  );

  it('GC and STATUS need no container env (libcni sends them empty)', () => {
    const empty = { CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '' };
    expect(
      parseRequest(env({ ...empty, CNI_COMMAND: 'STATUS', CNI_PATH: '' }), conf({ cniVersion: '1.1.0' }))
        .command,
    ).toBe('STATUS');
    expect(parseRequest(env({ ...empty, CNI_COMMAND: 'GC' }), conf({ cniVersion: '1.1.0' })).command).toBe(
      'GC',
    );
  });

  it('GC merges cni.dev/valid-attachments with the legacy cni.dev/attachments', () => {
    const r = parseRequest(
      env({ CNI_COMMAND: 'GC' }),
      conf({
        cniVersion: '1.1.0',
        'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }],
        'cni.dev/attachments': [
          { containerID: 'a', ifname: 'eth0' },
          { containerID: 'b', ifname: 'net1' },
        ],
      }),
    );
    expect(r.command === 'GC' && r.valid).toEqual([
      { containerId: 'a', ifname: 'eth0' },
      { containerId: 'b', ifname: 'net1' },
    ]);
  });

  it('tolerates capabilities, unknown top-level keys and reserved cni.dev/ keys', () => {
    const r = parseRequest(
      env(),
      conf({ capabilities: { portMappings: true }, whatever: 1, 'cni.dev/x': 2 }),
    );
    expect(r.command).toBe('ADD');
  });

  it('reads pod identity from K8S_* args in any order, ignoring unknown keys', () => {
    const r = parseRequest(
      env({ CNI_ARGS: 'K8S_POD_UID=u;K8S_POD_NAME=web-0;IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;FOO=bar' }),
      conf(),
    );
    expect(r.command === 'ADD' && r.pod).toEqual({ namespace: 'shop', name: 'web-0', kubernetes: true });
  });

  it('without K8S_* args (ctr) the container is its own pod; podman sends only K8S_POD_NAME', () => {
    const ctr = parseRequest(env({ CNI_ARGS: '' }), conf());
    expect(ctr.command === 'ADD' && ctr.pod).toEqual({
      namespace: NON_K8S_NAMESPACE,
      name: 'abc123',
      kubernetes: false,
    });
    const podman = parseRequest(env({ CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=myctr' }), conf());
    expect(podman.command === 'ADD' && podman.pod).toEqual({
      namespace: NON_K8S_NAMESPACE,
      name: 'myctr',
      kubernetes: false,
    });
  });

  it('matches runtimeConfig capability keys case-insensitively (containerd sends Go field names)', () => {
    const r = parseRequest(
      env(),
      conf({
        runtimeConfig: {
          IPs: ['10.1.2.3/24'],
          'IO.Kubernetes.CRI.Pod-Annotations': { 'tern.network/ipv4-pools': '["a"]' },
          DNS: { Servers: ['10.0.0.10'], Searches: ['svc.local'], Options: ['ndots:5'] },
        },
      }),
    );
    expect(r.conf.requestedIps).toEqual(['10.1.2.3']);
    expect(r.conf.podAnnotations).toEqual({ 'tern.network/ipv4-pools': '["a"]' });
    expect(r.conf.dns).toEqual({ nameservers: ['10.0.0.10'], search: ['svc.local'], options: ['ndots:5'] });
  });

  it('reads requested addresses from args.cni.ips too', () => {
    expect(parseRequest(env(), conf({ args: { cni: { ips: ['10.9.9.9'] } } })).conf.requestedIps).toEqual([
      '10.9.9.9',
    ]);
  });

  it('maps assignIpv4/assignIpv6 to families, and leaves them to IPAM when absent', () => {
    expect(parseRequest(env(), conf()).conf.ipam.families).toBeUndefined();
    expect(parseRequest(env(), conf({ ipam: { assignIpv6: true } })).conf.ipam.families).toEqual([4, 6]);
    expect(
      parseRequest(env(), conf({ ipam: { assignIpv4: 'false', assignIpv6: true } })).conf.ipam.families,
    ).toEqual([6]);
    expect(codeOf(() => parseRequest(env(), conf({ ipam: { assignIpv4: false } }))).code).toBe(7);
  });

  it('parses CNI_ARGS with empty segments and values containing no "="', () => {
    expect(parseCniArgs('A=1;;B=')).toEqual({ A: '1', B: '' });
  });

  it('accepts every interface name the kernel accepts, e.g. Multus net1', () => {
    for (const ok of ['eth0', 'net1', 'a', 'abcdefghijklmno'])
      expect(interfaceNameProblem(ok)).toBeUndefined();
  });
});
