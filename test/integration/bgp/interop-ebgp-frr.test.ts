// eBGP interop with frr in network namespaces (see ebgp-scenario.ts for what is checked).
import { describe, it } from 'vitest';
import { runEbgpScenario } from './ebgp-scenario.js';

describe('tern-bgp ↔ frr (eBGP)', () => {
  it('establishes with tern active and passive, exchanges and withdraws IPv4 routes with AS prepend and next hop set, and drops a frozen peer on hold-timer expiry', async () => {
    await runEbgpScenario('frr');
  }, 90_000);
});
