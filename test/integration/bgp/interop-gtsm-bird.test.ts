// GTSM (RFC 5082) interop with BIRD `ttl security on`, and IP_MINTTL refusing a peer two hops away (see gtsm-scenario.ts).
import { describe, it } from 'vitest';
import { runGtsmScenario } from './gtsm-scenario.js';

describe('GTSM: tern-bgp ↔ bird, and a tern peer behind a router', () => {
  it('is Established with a directly connected peer (tern active and passive) and refuses a peer two hops away unless two hops are allowed', async () => {
    await runGtsmScenario('bird');
  }, 150_000);
});
