// The allocation path sits on CNI ADD: warm, it must cost one datastore write and nothing else.
import { afterEach, describe, expect, it } from 'vitest';
import { Ipam } from '../../../ipam/index.js';
import { closeAll, counting, pool, request, storeWith } from './fixture.js';

const opened: Ipam[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((i) => i.close()));
  await closeAll();
});

describe('datastore round trips', () => {
  it('a warm assign is one CAS write, a warm release one more; nothing is read', async () => {
    const { ds, calls } = counting(
      await storeWith([pool('p', '10.110.0.0/24'), pool('v6', 'fd00:110::/120')]),
    );
    const ipam = new Ipam({ datastore: ds });
    opened.push(ipam);
    await ipam.assign(request('warmup', 'n1'));
    calls.length = 0;
    await ipam.assign(request('a', 'n1', { families: [4] }));
    expect(calls).toEqual(['update']);
    calls.length = 0;
    await ipam.release({ containerID: 'ctr-a', ifname: 'eth0' });
    expect(calls).toEqual(['update']);
    calls.length = 0;
    await ipam.assign(request('b', 'n1'));
    expect(calls).toEqual(['update', 'update']);
  });

  it('without node labels in the request, the Node object is read once more', async () => {
    const { ds, calls } = counting(await storeWith([pool('p', '10.110.0.0/24')], { n1: {} }));
    const ipam = new Ipam({ datastore: ds });
    opened.push(ipam);
    await ipam.assign(request('warmup', 'n1'));
    calls.length = 0;
    await ipam.assign({ attachment: request('a', 'n1').attachment, node: 'n1' });
    expect(calls.sort()).toEqual(['get', 'update']);
  });
});
