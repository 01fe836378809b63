// BFD with BIRD (protocol bfd + `bfd on`): see bfd-scenario.ts.
import { describe, expect, it } from 'vitest';
import { runBfdCut, runBfdIpv6, runHoldTimerCut } from './bfd-scenario.js';

describe('tern-bgp ↔ bird with BFD', () => {
  it('comes Up at 100 ms × 3, takes BGP down in under 1 s when the link is cut, holds it until BFD is Up again', async () => {
    const ms = await runBfdCut('bird');
    console.log(`bird: cut → tern BGP left Established with BFD 100 ms × 3: ${ms} ms`);
  }, 120_000);

  it('without BFD the same cut is noticed only by the hold timer (9 s)', async () => {
    const ms = await runHoldTimerCut('bird');
    console.log(`bird: cut → tern BGP left Established without BFD (hold 9 s): ${ms} ms`);
    expect(ms).toBeGreaterThan(1000);
  }, 120_000);

  it('runs BFD over IPv6 (fd00::) with the BGP session over it', async () => {
    await runBfdIpv6('bird');
  }, 120_000);
});
