import { describe, expect, it } from 'vitest';
import { measureApiLoad } from './bench/api-load.js';
import { createTestDatabase } from './support/database.js';

/** The tiny run of `npm run bench:api` (docs/benchmarks.md): a second of load per route, so that the benchmark cannot rot. */
const db = await createTestDatabase();

describe('the API load benchmark', () => {
  it('submits and reads jobs from a second process with no server error', async () => {
    const figures = await measureApiLoad({ databaseUrl: db.url, durationSeconds: 1, connections: 2 });
    for (const route of [figures.submit, figures.get]) {
      expect(route.requests).toBeGreaterThan(0);
      expect(route.status5xx).toBe(0);
      expect(route.status2xx).toBe(route.requests);
    }
    // Every 2xx is a job written; a request in flight when the time ran out may have been written too.
    const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs`;
    expect(row?.n).toBeGreaterThanOrEqual(figures.submit.status2xx);
    expect(row?.n).toBeLessThanOrEqual(figures.submit.status2xx + 2);
  });
});
