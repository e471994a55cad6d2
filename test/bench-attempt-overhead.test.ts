import { describe, expect, it } from 'vitest';
import { measureAttemptOverhead } from './bench/attempt-overhead.js';
import { createTestDatabase } from './support/database.js';

/** The tiny run of `npm run bench:overhead` (docs/benchmarks.md): two single jobs and a burst of three, so the benchmark cannot rot. */
const db = await createTestDatabase();

describe('the per-attempt overhead benchmark', () => {
  it('times single jobs phase by phase and a burst against bare coqc and coqchk, every job verified', async () => {
    const f = await measureAttemptOverhead({ databaseUrl: db.url, singles: 2, burst: 3, concurrencies: [2] });
    expect(f.bare.totalMs).toBeGreaterThan(0);
    for (const phase of Object.values(f.proofpod)) expect(phase).toBeGreaterThanOrEqual(0);
    expect(f.proofpod.totalMs).toBeGreaterThan(f.proofpod.fetchMs);
    expect(f.bursts).toHaveLength(1);
    expect(f.bursts[0]).toMatchObject({ jobs: 3, concurrency: 2, states: { verified: 3 } });
    expect(f.bursts[0]!.ratio).toBeGreaterThan(0);
  });
});
