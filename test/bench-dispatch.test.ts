import { describe, expect, it } from 'vitest';
import { measure } from './bench/dispatch.js';
import { createTestDatabase } from './support/database.js';

/** The tiny run of `npm run bench:dispatch` (docs/benchmarks.md): 200 queued jobs, 100 decisions, so the benchmark cannot rot. */
const db = await createTestDatabase();

describe('the dispatch-decision benchmark', () => {
  it('queues jobs over 4 lanes and 50 submitters and claims the decisions it asks for', async () => {
    const run = await measure(db.sql, 200, 100);
    expect(run.batchMs.length).toBeGreaterThan(0);
    expect(run.perSecond).toBeGreaterThan(0);
    const [claimed] = await db.sql<{ n: number }[]>`select count(*)::int as n from attempts`;
    expect(claimed!.n).toBeGreaterThanOrEqual(100);
  });
});
