import { describe, expect, it } from 'vitest';
import { measurePeers } from './bench/peers.js';
import { createTestDatabase } from './support/database.js';

/** The tiny run of `npm run bench:peers` (docs/benchmarks.md): 20 jobs through each system, profiled run included, so the benchmark cannot rot. */
const db = await createTestDatabase();

describe('the peers benchmark', () => {
  it('drains every job in graphile-worker and pg-boss, and proofpod verifies every one', async () => {
    const figures = await measurePeers({ databaseUrl: db.url, jobs: 20, profile: true });
    expect(figures.peers.map((p) => [p.system, p.completed])).toEqual([
      ['graphile-worker', 20],
      ['pg-boss', 20],
      ['proofpod', 20],
    ]);
    for (const peer of figures.peers) {
      expect(peer.transactions).toBeGreaterThan(0);
      expect(peer.perJob).not.toBe('');
    }
    // Both the timed and the profiled run left their 20 jobs verified (the tables are emptied before each).
    const states = await db.sql<{ state: string; n: number }[]>`select state, count(*)::int as n from jobs group by state`;
    expect(states).toEqual([{ state: 'verified', n: 20 }]);
    expect(figures.profile?.shares.length).toBeGreaterThan(0);
  });
});
