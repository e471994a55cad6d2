import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SET_MM, measureMetamath } from './bench/metamath.js';
import { createTestDatabase } from './support/database.js';

/** The tiny run of `npm run bench:metamath` (docs/benchmarks.md): a small database instead of set.mm, so the benchmark cannot rot. */
const db = await createTestDatabase();

describe('the Metamath benchmark', () => {
  it('measures a database (here: the opening of set.mm) bare and through proofpod in both lanes, and proofpod verifies it', async () => {
    expect(existsSync(SET_MM), 'Debian metamath-databases provides the reference set.mm (.ci/run installs it)').toBe(true);
    const f = await measureMetamath({ databaseUrl: db.url, database: 'test/fixtures/proofs/setmm-prop.mm', repetitions: 1 });
    for (const lane of [f.proofpod.verify, f.proofpod.audit]) {
      expect(
        lane.runs.map((r) => r.state),
        lane.runs[0]?.stateReason,
      ).toEqual(['verified']);
      expect(lane.medianMs).toBeGreaterThan(0);
      expect(lane.medianRun.phases.metamathRsMs).toBeGreaterThanOrEqual(0);
    }
    expect(f.proofpod.audit.medianRun.phases.metamathCMs).toBeGreaterThanOrEqual(0);
    expect(f.proofpod.verify.medianRun.phases.metamathCMs).toBeNull();
    expect(f.proofpod.verify.medianRun.readerLines).toEqual([
      expect.stringMatching(/^\[reference .*set\.mm .*: \d+ logical axioms\]$/),
      expect.stringMatching(/^\[read setmm-prop\.mm: \d+ logical axioms, 0 not in the reference\]$/),
    ]);
    expect(f.bare.metamathC.medianMs).toBeGreaterThan(0);
    expect(f.bare.metamathRs.medianMs).toBeGreaterThan(0);
    expect(f.ratios.verify).toBeGreaterThan(0);
    expect(f.ratios.audit).toBeGreaterThan(0);
  });
});
