import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { isFinalJobState } from '../scheduler/job-states.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FixtureRepo, scratch } from './support/git-fixtures.js';
import { call, startInstance, waitFor } from './support/instance.js';

/**
 * The loops are woken by events, not only by their intervals (docs/architecture.md, "The dispatch
 * pipeline"): with every interval at a minute, a job on the real local substrate still ends within
 * seconds — the watcher is woken when its pod ends — and a job waiting for the lane's only slot is
 * dispatched as soon as the attempt before it ends. Without either wake-up this test waits out the
 * minute and fails.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'wake-ups' });
const work = scratch('proofpod-wake-ups-');
chmodSync(work.root, 0o755);

let proofpod: Proofpod;
let repo: FixtureRepo;
let commit: string;

beforeAll(async () => {
  proofpod = await startInstance(db.url, {
    substrate: 'local',
    home: work.dir('home'),
    pod: { allowFileSources: true },
    // Uids of this file's own: test files run at once, each with a local substrate of its own.
    local: { sandboxUids: { first: 520_000, count: 1024 } },
    lanes: [{ name: 'verify', trust: 'trusted', concurrency: 1, maxDeadlineSeconds: 120 }],
    // Only the first cycle of each loop runs at start; every later one must come from a wake-up.
    dispatch: { intervalSeconds: 60, batchSize: 10 },
    claims: { ttlSeconds: 180, heartbeatSeconds: 60 },
    reaper: { intervalSeconds: 60, evidenceGraceSeconds: 60 },
  });
  repo = new FixtureRepo(work.dir('proofs'));
  commit = repo.commit({ 'Arith.v': readFileSync(path.resolve('test/fixtures/proofs/Arith.v')) });
});
afterAll(async () => {
  await proofpod?.stop();
  work.remove();
});

describe('event-driven dispatch and completion', () => {
  it('ends two jobs in a one-slot lane within seconds though every loop polls once a minute', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await call(proofpod.url, 'POST', '/v1/jobs', {
        token,
        body: { source: { url: repo.url, commit }, prover: 'coq', targets: ['Arith.v'], lane: 'verify' },
      });
      expect(r.status).toBe(201);
      ids.push(r.body.id);
    }
    const started = Date.now();
    await waitFor(
      'both jobs to end',
      async () => {
        const states = await Promise.all(ids.map(async (id) => (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body.state));
        return states.every(isFinalJobState);
      },
      45_000,
      100,
    );
    expect(Date.now() - started, 'well before any loop polled again').toBeLessThan(45_000);
    for (const id of ids) expect((await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body.state).toBe('verified');
  });
});
