// GTSM (RFC 5082) interop with FRR `ttl-security hops 1`, and IP_MINTTL refusing a peer two hops away (see gtsm-scenario.ts).
import { describe, it } from 'vitest';
import { runGtsmScenario } from './gtsm-scenario.js';

describe('GTSM: tern-bgp ↔ frr, and a tern peer behind a router', () => {
  it('is Established with a directly connected peer (tern active and passive) and refuses a peer two hops away unless two hops are allowed', async () => {
    await runGtsmScenario('frr');
  }, 150_000);
});
