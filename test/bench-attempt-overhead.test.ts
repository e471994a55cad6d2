import { describe, expect, it } from 'vitest';
import { measureAttemptOverhead } from './bench/attempt-overhead.js';
import { createTestDatabase } from './support/database.js';

/**
 * The tiny run of `npm run bench:overhead` (docs/benchmarks.md): two single jobs, a burst of three
 * and one job with instrumented pod programs, so the benchmark cannot rot.
 */
const db = await createTestDatabase();

describe('the per-attempt overhead benchmark', () => {
  it('times single jobs phase by phase and a burst against bare coqc and coqchk, every job verified', async () => {
    const f = await measureAttemptOverhead({ databaseUrl: db.url, singles: 2, burst: 3, concurrencies: [2], programRuns: 1 });
    expect(f.bare.totalMs).toBeGreaterThan(0);
    for (const phase of Object.values(f.proofpod)) expect(phase).toBeGreaterThanOrEqual(0);
    expect(f.proofpod.totalMs).toBeGreaterThan(f.proofpod.fetchMs);
    expect(f.bursts).toHaveLength(1);
    expect(f.bursts[0]).toMatchObject({ jobs: 3, concurrency: 2, states: { verified: 3 } });
    expect(f.bursts[0]!.ratio).toBeGreaterThan(0);
    // Each program reported its own CPU time, and each ran Node's start-up at least.
    const programs = f.programs!;
    expect(programs.runs).toBe(1);
    expect(programs.nodeStartMs).toBeGreaterThan(0);
    for (const ms of [programs.fetchMs, programs.checkMs, programs.reporterMs]) expect(ms).toBeGreaterThan(programs.nodeStartMs / 2);
  });
});
