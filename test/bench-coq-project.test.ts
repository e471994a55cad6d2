import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { STDPP_SOURCES, measureCoqProject } from './bench/coq-project.js';
import { createTestDatabase } from './support/database.js';

/** The tiny run of `npm run bench:coq-project` (docs/benchmarks.md): one file of stdpp, so the benchmark cannot rot. */
const db = await createTestDatabase();

describe('the Coq-project benchmark', () => {
  it('measures stdpp (here: base.v alone) through proofpod and bare, and proofpod verifies it', async () => {
    expect(existsSync(STDPP_SOURCES), 'Debian libcoq-stdpp provides the sources (.ci/run installs it)').toBe(true);
    const figures = await measureCoqProject({ databaseUrl: db.url, files: ['base.v'] });
    expect(figures.proofpod, figures.proofpod.stateReason).toMatchObject({ state: 'verified' });
    expect(figures.bare.totalMs).toBeGreaterThan(0);
    expect(figures.ratio).toBeGreaterThan(0);
  });
});
