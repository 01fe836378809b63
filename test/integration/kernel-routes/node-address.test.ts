// The node's own address read through kernel/netlink (links, routes and addresses dumped over our
// codec, no `ip -j`): the uplink's address, the default route's preferred source when it names one,
// and the first global address on a non-pod interface when there is no default route. Runs the
// compiled dist/felix/node-address.js inside a namespace (Node cannot switch its own).
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet } from '../../support/netns.js';

const nets = new NetnsSet();
const moduleUrl = new URL('../../../dist/felix/node-address.js', import.meta.url).href;
let node = '';
let peer = '';

async function detected(family: 4 | 6): Promise<string> {
  const script = `import(${JSON.stringify(moduleUrl)}).then(async (m) => console.log(String(await m.detectNodeAddress(${family}))))`;
  const r = await nets.exec(node, process.execPath, ['--input-type=module', '-e', script]);
  return r.stdout.trim();
}

const ip = (...args: string[]) => execa('ip', ['-n', node, ...args]);

describe('detectNodeAddress (kernel/netlink snapshot)', () => {
  beforeAll(async () => {
    expect(fileURLToPath(moduleUrl)).toMatch(/dist\/felix\/node-address\.js$/);
    node = await nets.add('addr-node');
    peer = await nets.add('addr-peer');
    // A pod-like veth first (lower index, global address): never the node's address.
    await execa('ip', [
      '-n',
      node,
      'link',
      'add',
      'tern0123456789a',
      'type',
      'veth',
      'peer',
      'name',
      'podside',
    ]);
    await ip('addr', 'add', '10.99.0.1/32', 'dev', 'tern0123456789a');
    await ip('link', 'set', 'tern0123456789a', 'up');
    await nets.link(node, 'side0', '198.51.100.7/24', peer, 'p-side0', '198.51.100.1/24');
    await nets.link(node, 'uplink0', '192.0.2.10/24', peer, 'p-uplink0', '192.0.2.1/24');
    await ip('addr', 'add', '2001:db8:1::10/64', 'dev', 'uplink0', 'nodad');
  }, 30_000);
  afterAll(() => nets.cleanup());

  it('without a default route: the first global address on a non-pod interface', async () => {
    expect(await detected(4)).toBe('198.51.100.7');
    expect(await detected(6)).toBe('2001:db8:1::10');
  });

  it("with a default route: its interface's global address", async () => {
    await ip('route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'uplink0');
    await ip('-6', 'route', 'add', 'default', 'via', '2001:db8:1::1', 'dev', 'uplink0');
    expect(await detected(4)).toBe('192.0.2.10');
    expect(await detected(6)).toBe('2001:db8:1::10');
  });

  it("a default route's preferred source wins", async () => {
    await ip('addr', 'add', '192.0.2.99/24', 'dev', 'uplink0');
    await ip('route', 'replace', 'default', 'via', '192.0.2.1', 'dev', 'uplink0', 'src', '192.0.2.99');
    expect(await detected(4)).toBe('192.0.2.99');
  });
});
