/**
 * Postgres lost in the middle of a launch: the attempt is in the substrate (or its start failed)
 * but the replica cannot record that, and it still holds the lease and renews it. Found by the
 * chaos run's Postgres scenario (docs/reliability.md): such a job stayed `dispatching` for ever,
 * its pod finished and its evidence accepted, because the watcher leaves dispatching attempts to
 * the launch stage, which had given up, and the reaper only looks at expired leases.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptLaunch } from '../scheduler/substrate/substrate.js';
import { connect } from '../scheduler/database/connect.js';
import { createDatabaseIfMissing } from '../scheduler/store/create-database.js';
import { claimAttempts } from '../scheduler/store/claims/claim-attempts.js';
import { RestartablePostgres } from './support/restartable-postgres.js';
import { createToken } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance, waitFor } from './support/instance.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Postgres lost mid-launch (cluster is a FAKE that runs nothing)', () => {
  const log = pino({ level: 'silent' });
  let home: string;
  let database: RestartablePostgres;
  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'proofpod-lost-mid-launch-'));
    database = await RestartablePostgres.start(home, log);
  });
  afterAll(async () => {
    await database?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  /**
   * A fake cluster whose first start stops Postgres, after creating the attempt (`after`) or
   * instead of it (`instead`, the start then failing), and starts it again a moment later.
   */
  function clusterLosingPostgres(when: 'after' | 'instead', endpoints: () => string[]) {
    const cluster = new FakeCluster({ runMs: 50, endpoints });
    const start = cluster.start.bind(cluster);
    let back: Promise<void> | undefined;
    let arm = () => {};
    const armed = new Promise<void>((resolve) => {
      arm = resolve;
    });
    cluster.start = async (launch: AttemptLaunch) => {
      if (back) return start(launch);
      // Not before the submission has its answer: the outage is the launch's, not the API's.
      await armed;
      if (when === 'after') await start(launch);
      await database.stop();
      back = sleep(1_500).then(() => database.start());
      if (when === 'instead') throw new Error('the create was refused: 422 Unprocessable Entity');
    };
    return { cluster, arm, back: () => back };
  }

  /** A database of each test's own: nothing of another test's is left to take over. */
  async function databaseOfItsOwn(name: string): Promise<string> {
    const admin = connect(database.url, { max: 1 });
    await createDatabaseIfMissing(admin, name).finally(() => admin.end());
    return database.urlOf(name);
  }

  async function expectVerified(proofpodUrl: string, token: string, jobId: string): Promise<{ attempts: unknown[] }> {
    let job: { state?: string; attempts: unknown[] } = { attempts: [] };
    await waitFor(
      'the job to be verified',
      async () => {
        job = (await call(proofpodUrl, 'GET', `/v1/jobs/${jobId}`, { token })).body;
        return job.state === 'verified';
      },
      15_000,
      100,
    ).catch(() => expect(job).toMatchObject({ state: 'verified' }));
    return job;
  }

  for (const when of ['after', 'instead'] as const) {
    const what =
      when === 'after'
        ? 'created, then the start not recorded: adopted once Postgres is back, never created twice'
        : 'the create failed and the failure not recorded: started again once Postgres is back';
    it(`${what}; verified`, async () => {
      const url = await databaseOfItsOwn(`lost_${when}`);
      let proofpodUrl = '';
      const { cluster, arm, back } = clusterLosingPostgres(when, () => [proofpodUrl]);
      // A lease far longer than the outage: its heartbeat keeps it, so no takeover hides the hole.
      const proofpod = await startInstance(
        url,
        { ...fastLoops, claims: { ttlSeconds: 60, heartbeatSeconds: 0.5 } },
        { substrate: cluster },
      );
      proofpodUrl = proofpod.url;
      const setup = connect(url, { max: 1 });
      const token = await createToken(setup, { id: `lost-${when}` }).finally(() => setup.end());
      try {
        const created = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
        expect(created.status).toBe(201);
        arm();
        await waitFor('the outage to begin', async () => back() !== undefined, 10_000, 20);
        await back();
        const job = await expectVerified(proofpod.url, token, created.body.id);
        // One attempt, and the substrate created its pod exactly once.
        expect(job.attempts).toHaveLength(1);
        expect(cluster.created).toHaveLength(1);
        expect(cluster.duplicateCreates).toEqual([]);
      } finally {
        cluster.shutdown();
        await proofpod.stop();
      }
    }, 40_000);
  }

  it("a claim that committed but whose answer never came back (made here, with the replica's holder): launched by the watcher; verified", async () => {
    const url = await databaseOfItsOwn('lost_claim_answer');
    let proofpodUrl = '';
    // Each attempt runs 3 s, so the first holds the lane (concurrency 1) while the second is claimed by hand.
    const cluster = new FakeCluster({ runMs: 3_000, endpoints: () => [proofpodUrl] });
    const lane = { name: 'verify', trust: 'trusted' as const, concurrency: 1, maxDeadlineSeconds: 300 };
    const proofpod = await startInstance(
      url,
      { ...fastLoops, claims: { ttlSeconds: 60, heartbeatSeconds: 0.5 }, lanes: [lane] },
      { substrate: cluster },
    );
    proofpodUrl = proofpod.url;
    const sql = connect(url, { max: 1 });
    try {
      const token = await createToken(sql, { id: 'lost-claim-answer' });
      const first = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
      await waitFor('the first job to run', async () => cluster.created.length === 1, 10_000, 20);
      const second = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest({ targets: ['Other.v'] }) });
      expect(second.status).toBe(201);
      // The replica's own cycles leave it queued (its lane is full); this claim is its, as far as
      // Postgres knows, and its heartbeat renews it, but no dispatch cycle of it ever heard of it.
      const claimed = await claimAttempts(sql, {
        lane: 'verify',
        concurrency: 10,
        limit: 1,
        holder: proofpod.holder,
        ttlSeconds: 60,
        deadlineSeconds: 300,
      });
      expect(claimed.map((c) => c.jobId)).toEqual([second.body.id]);
      await expectVerified(proofpod.url, token, first.body.id);
      const job = await expectVerified(proofpod.url, token, second.body.id);
      expect(job.attempts).toHaveLength(1);
      expect(cluster.created).toHaveLength(2);
      expect(cluster.duplicateCreates).toEqual([]);
    } finally {
      await sql.end();
      cluster.shutdown();
      await proofpod.stop();
    }
  }, 40_000);
});
