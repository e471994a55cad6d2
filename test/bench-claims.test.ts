import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { measureClaims } from './bench/claims.js';
import { createTestDatabase } from './support/database.js';

/** The tiny run of `npm run bench` (docs/benchmarks.md): 200 claims and 20 submissions, so the benchmark cannot rot. */
const db = await createTestDatabase();

describe('the claim-throughput benchmark', () => {
  it('claims every queued job with two claimers and dispatches every submission through the API', async () => {
    const figures = await measureClaims({
      url: db.url,
      sql: db.sql,
      home: mkdtempSync(path.join(tmpdir(), 'proofpod-bench-claims-')),
      claimJobs: 200,
      latencyJobs: 20,
      submitRate: 200,
    });
    expect(figures.claimed).toBe(200);
    expect(figures.claimsPerSecond).toBeGreaterThan(0);
    expect(figures.latencies).toHaveLength(20);
  });
});
