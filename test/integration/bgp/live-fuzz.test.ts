// RFC 7606 on a live session: mutated UPDATEs (count from FUZZ_COUNT, default 30 000; see live-fuzz.ts).
import { describe, expect, it } from 'vitest';
import { runLiveFuzz } from './live-fuzz.js';

const COUNT = Number(process.env.FUZZ_COUNT ?? 30_000);

describe('RFC 7606 live fuzz', () => {
  it(`${COUNT} mutated UPDATEs: attribute-level errors keep the session, resets draw the predicted NOTIFICATION, nothing crashes`, async () => {
    const r = await runLiveFuzz({
      count: COUNT,
      seed: Number(process.env.FUZZ_SEED ?? 7606),
      onProgress: (p) => console.log(`progress ${JSON.stringify(p)}`),
    });
    console.log(JSON.stringify(r));
    expect(r.sent).toBe(COUNT);
    expect(r.internalErrors).toBe(0);
    expect(r.unexpectedResets).toBe(0);
    expect(r.resetChecked).toBeGreaterThan(0);
    expect(r.resetMatched).toBe(r.resetChecked);
    expect(r.treatAsWithdraw + r.attributeDiscard).toBeGreaterThan(0);
  }, 3_600_000);
});
