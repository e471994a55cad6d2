import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { defaultImagePaths } from '../scheduler/substrate/local/images.js';
import { until } from './support/cluster.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FixtureRepo, scratch } from './support/git-fixtures.js';
import { call, startInstance } from './support/instance.js';

/**
 * Prover health (docs/operations.md, "Prover health") on the real local substrate with real Coq: the
 * coq profile's image maps a path this host lacks, so its pods fail with ErrImagePull. After two
 * such failures the profile is unhealthy and its job waits, queued, instead of burning attempts;
 * once the path exists, the canary (Arith.v) verifies, the profile is healthy again and the job
 * that waited is verified too.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'health' });
const work = scratch('proofpod-prover-health-');
chmodSync(work.root, 0o755);
const missingLayer = path.join(work.root, 'coq-layer');

let proofpod: Proofpod;
let repo: FixtureRepo;
let commit: string;

beforeAll(async () => {
  repo = new FixtureRepo(work.dir('proofs'));
  commit = repo.commit({ 'Arith.v': readFileSync(path.resolve('test/fixtures/proofs/Arith.v')) });
  proofpod = await startInstance(db.url, {
    substrate: 'local',
    home: work.dir('home'),
    pod: { allowFileSources: true },
    // Uids of this file's own: test files run at once, each with a local substrate of its own.
    local: {
      sandboxUids: { first: 560_000, count: 1024 },
      images: {
        'proofpod/task:latest': { paths: [...defaultImagePaths] },
        'proofpod/prover-coq:latest': { paths: [...defaultImagePaths, missingLayer] },
      },
    },
    lanes: [{ name: 'verify', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 120, retryLimit: 5 }],
    dispatch: { intervalSeconds: 0.2, batchSize: 10 },
    reaper: { intervalSeconds: 0.5, evidenceGraceSeconds: 30 },
    proverHealth: {
      failureThreshold: 2,
      canaryIntervalSeconds: 1,
      canaries: { coq: { source: { url: repo.url, commit }, targets: ['Arith.v'], lane: 'verify' } },
    },
  });
});
afterAll(async () => {
  await proofpod?.stop();
  work.remove();
});

const coqHealth = async () =>
  (
    (await call(proofpod.url, 'GET', '/v1/provers', { token })).body.provers as {
      name: string;
      healthy: boolean;
      consecutiveFailures: number;
      lastFailure: string | null;
    }[]
  ).find((p) => p.name === 'coq')!;
const metricsText = async () => (await call<string>(proofpod.url, 'GET', '/metrics')).body;
const jobOf = async (id: string) => (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body;

describe('prover health', () => {
  it('an image that cannot be pulled makes the profile unhealthy after 2 failures; its job waits; a canary restores it', async () => {
    expect(await coqHealth()).toMatchObject({ healthy: true, consecutiveFailures: 0 });
    const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
      token,
      body: { source: { url: repo.url, commit }, prover: 'coq', targets: ['Arith.v'], lane: 'verify' },
    });
    expect(submitted.status).toBe(201);
    const id = submitted.body.id as string;

    const unhealthy = await until('coq unhealthy', async () => {
      const health = await coqHealth();
      return !health.healthy && health;
    });
    expect(unhealthy.consecutiveFailures).toBeGreaterThanOrEqual(2);
    expect(unhealthy.lastFailure).toMatch(/ErrImagePull/);
    expect(await metricsText()).toMatch(/^proofpod_prover_healthy\{prover="coq"\} 0$/m);
    const waiting = await until('the job back in the queue', async () => {
      const job = await jobOf(id);
      return job.state === 'queued' && job;
    });
    const attemptsWhenUnhealthy = waiting.attempts.length;
    expect(attemptsWhenUnhealthy).toBe(2);
    // It waits: well past several dispatch cycles, no attempt more (retryLimit 5 would allow them).
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const still = await jobOf(id);
    expect(still.state).toBe('queued');
    expect(still.attempts).toHaveLength(attemptsWhenUnhealthy);
    // The canaries meanwhile fail as the job did, and keep it unhealthy; each then waits like the job.
    const canaries = await db.sql<{ state: string }[]>`select state from jobs where submitter_id = 'proofpod-canary'`;
    expect(canaries.length).toBeGreaterThanOrEqual(1);
    expect((await coqHealth()).healthy).toBe(false);

    // The image can be pulled now: a canary verifies, the profile is healthy, the job runs.
    mkdirSync(missingLayer);
    const verified = await until(
      'the waiting job verified',
      async () => {
        const job = await jobOf(id);
        return ['verified', 'rejected', 'error', 'cancelled', 'timed_out'].includes(job.state) && job;
      },
      60_000,
    );
    expect(verified.state).toBe('verified');
    expect(await coqHealth()).toMatchObject({ healthy: true, consecutiveFailures: 0 });
    expect(await metricsText()).toMatch(/^proofpod_prover_healthy\{prover="coq"\} 1$/m);
    const [restoredBy] = await db.sql<{ state: string; finishedAt: Date }[]>`
      select state, finished_at from jobs where canary and prover = 'coq' and state = 'verified'`;
    expect(restoredBy?.state).toBe('verified');
    // The canary's verdict came before the job's first attempt after the wait.
    const [resumed] = await db.sql<{ createdAt: Date }[]>`
      select a.created_at from attempts a where a.job_id = ${id} and a.attempt_no = ${attemptsWhenUnhealthy + 1}`;
    expect(resumed!.createdAt.getTime()).toBeGreaterThanOrEqual(restoredBy!.finishedAt.getTime());
  });

  it('without a canary, the oldest waiting job probes the profile, once per interval, and is verified once the image is there', async () => {
    const layer = path.join(work.root, 'coq-layer-2');
    // A database of its own: the first instance, canary and all, must not see this one's jobs.
    const own = await createTestDatabase();
    const ownToken = await createToken(own.sql, { id: 'health' });
    const probing = await startInstance(own.url, {
      substrate: 'local',
      home: work.dir('home-2'),
      pod: { allowFileSources: true },
      local: {
        sandboxUids: { first: 561_100, count: 800 },
        images: {
          'proofpod/task:latest': { paths: [...defaultImagePaths] },
          'proofpod/prover-coq:latest': { paths: [...defaultImagePaths, layer] },
        },
      },
      lanes: [{ name: 'verify', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 120, retryLimit: 20 }],
      dispatch: { intervalSeconds: 0.2, batchSize: 10 },
      reaper: { intervalSeconds: 0.3, evidenceGraceSeconds: 30 },
      proverHealth: { failureThreshold: 2, canaryIntervalSeconds: 1 },
    });
    try {
      const submitted = await call(probing.url, 'POST', '/v1/jobs', {
        token: ownToken,
        body: { source: { url: repo.url, commit }, prover: 'coq', targets: ['Arith.v'], lane: 'verify' },
      });
      const id = submitted.body.id as string;
      const attempts = async () => (await call(probing.url, 'GET', `/v1/jobs/${id}`, { token: ownToken })).body.attempts.length as number;
      await until('coq unhealthy', async () => (await own.sql`select 1 from prover_health where unhealthy_since is not null`).length > 0);
      const atUnhealthy = await attempts();
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      // One probe a second at most, not the twenty retries its lane allows at once.
      const later = await attempts();
      expect(later).toBeGreaterThan(atUnhealthy);
      expect(later - atUnhealthy).toBeLessThanOrEqual(5);
      expect((await call(probing.url, 'GET', `/v1/jobs/${id}`, { token: ownToken })).body.state).not.toBe('error');

      mkdirSync(layer);
      const ended = await until(
        'the probing job to end',
        async () => {
          const job = (await call(probing.url, 'GET', `/v1/jobs/${id}`, { token: ownToken })).body;
          return ['verified', 'rejected', 'error', 'cancelled', 'timed_out'].includes(job.state) && job;
        },
        30_000,
      );
      expect(ended.state, ended.stateReason).toBe('verified');
      expect(ended.canary).toBe(true);
      const provers = (await call(probing.url, 'GET', '/v1/provers', { token: ownToken })).body.provers as {
        name: string;
        healthy: boolean;
      }[];
      expect(provers.find((p) => p.name === 'coq')?.healthy).toBe(true);
    } finally {
      await probing.stop();
    }
  });
});
