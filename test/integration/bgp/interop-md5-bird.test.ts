// TCP MD5 (RFC 2385) interop with BIRD in network namespaces (see md5-scenario.ts).
import { describe, it } from 'vitest';
import { runMd5Scenario } from './md5-scenario.js';

describe('TCP MD5: tern-bgp ↔ bird, tern ↔ tern', () => {
  it('is Established with matching passwords (tern active, tern passive, tern ↔ tern; IPv4 and IPv6) with the key on the sockets, and never with different ones', async () => {
    await runMd5Scenario('bird');
  }, 150_000);
});
