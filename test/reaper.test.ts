import { afterAll, describe, expect, it } from 'vitest';
import { defaultLanes } from '../scheduler/lanes.js';
import { reaperSweep } from '../scheduler/replica/reaper.js';
import { defaultProfile } from './support/evidence.js';
import { lockKeys } from '../scheduler/store/locks.js';
import { connect } from '../scheduler/database/connect.js';
import { claimAttempts } from '../scheduler/store/claims/claim-attempts.js';
import type { Proofpod } from '../scheduler/app.js';
import { createTestDatabase, createToken, queueJobs } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, replicaContext, startInstance, waitFor } from './support/instance.js';

const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'ci' });

async function jobState(id: string) {
  const [row] = await db.sql<{ state: string; stateReason: string }[]>`select state, state_reason from jobs where id = ${id}`;
  return row!;
}

describe('reaper and watcher against a FAKE cluster', () => {
  const running: { proofpod: Proofpod; cluster: FakeCluster }[] = [];
  afterAll(async () => {
    for (const r of running) {
      r.cluster.shutdown();
      await r.proofpod.stop();
    }
  });
  async function start(cluster: FakeCluster, overrides = {}) {
    const proofpod = await startInstance(db.url, { ...fastLoops, ...overrides }, { substrate: cluster });
    running.push({ proofpod, cluster });
    return proofpod;
  }

  it('a job whose attempt finished but never uploaded evidence is an error after the grace window, never verified', async () => {
    const cluster = new FakeCluster({ runMs: 10, upload: false });
    const proofpod = await start(cluster, { reaper: { intervalSeconds: 0.3, evidenceGraceSeconds: 1 } });
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
    await waitFor('the job to end', async () => (await jobState(job.body.id)).state === 'error', 15_000);
    expect((await jobState(job.body.id)).stateReason).toMatch(/^no evidence: the attempt finished at .* nothing was uploaded within 1s$/);
    const [attempts] = await db.sql<{ n: number }[]>`select count(*)::int as n from attempts where job_id = ${job.body.id}`;
    expect(attempts?.n).toBe(1);
    // The finished object is deleted once its attempt is over.
    await waitFor('the orphan sweep', async () => cluster.objects.size === 0, 5000);
    await running.pop()!.proofpod.stop();
  });

  it('an attempt that vanishes from the substrate is retried with a new attempt and the reason recorded', async () => {
    const cluster = new FakeCluster({ runMs: 60_000 });
    const proofpod = await start(cluster);
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
    await waitFor('the attempt to start', async () => cluster.created.length === 1);
    await cluster.stop(cluster.created[0]!); // as if someone deleted the pod
    await waitFor('a second attempt', async () => cluster.created.length === 2, 10_000);
    const read = await call(proofpod.url, 'GET', `/v1/jobs/${job.body.id}`, { token });
    expect(read.body.attempts[0]).toMatchObject({ attemptNo: 1, state: 'failed', stateReason: 'attempt vanished from the substrate' });
    expect(read.body.attempts[1]).toMatchObject({ attemptNo: 2 });
    const events = await call(proofpod.url, 'GET', `/v1/jobs/${job.body.id}/events`, { token });
    expect(events.body.events.map((e: { reason: string }) => e.reason)).toContain(
      'retrying after attempt 1: attempt vanished from the substrate',
    );
    await call(proofpod.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { token });
    await running.pop()!.proofpod.stop();
    cluster.shutdown();
  });

  it('cancelling a running job stops its attempt and fences out its holder', async () => {
    const cluster = new FakeCluster({ runMs: 60_000 });
    const proofpod = await start(cluster);
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
    await waitFor('the job to run', async () => (await jobState(job.body.id)).state === 'running');
    const cancelled = await call(proofpod.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { token });
    expect(cancelled.body).toMatchObject({ state: 'cancelled', attempts: [expect.objectContaining({ state: 'cancelled' })] });
    expect(cluster.objects.has(cancelled.body.attempts[0].name)).toBe(false);
    const [creds] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from upload_credentials u join attempts a on a.id = u.attempt_id
      where a.job_id = ${job.body.id} and u.revoked_at is null`;
    expect(creds?.n).toBe(0);
    await running.pop()!.proofpod.stop();
    cluster.shutdown();
  });

  it('deletes substrate objects that belong to no attempt in flight', async () => {
    const cluster = new FakeCluster({ runMs: 60_000 });
    await cluster.start({
      name: 'pp-00000000000000000000000000000000-1',
      attemptId: '00000000-0000-0000-0000-000000000000',
      jobId: '00000000-0000-0000-0000-000000000000',
      attemptNo: 1,
      lane: 'verify',
      prover: 'coq',
      laneConfig: defaultLanes.find((l) => l.name === 'verify')!,
      profile: defaultProfile('coq'),
      source: { url: 'x', commit: 'a'.repeat(40), subdirectory: null },
      targets: ['A.v'],
      goals: [],
      deadlineAt: new Date(),
      uploadCredential: 'none',
      uploadUrl: 'http://127.0.0.1:9/none',
    });
    await start(cluster);
    await waitFor('the orphan to be deleted', async () => cluster.objects.size === 0, 5000);
    await running.pop()!.proofpod.stop();
    cluster.shutdown();
  });

  it('an attempt past its lane deadline is stopped and the job timed out', async () => {
    const cluster = new FakeCluster({ runMs: 60_000 });
    const proofpod = await start(cluster, { lanes: [{ name: 'verify', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 10 }] });
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
    await waitFor('the job to run', async () => (await jobState(job.body.id)).state === 'running');
    await db.sql`update attempts set deadline_at = now() - interval '1 second' where job_id = ${job.body.id}`;
    await waitFor('the job to time out', async () => (await jobState(job.body.id)).state === 'timed_out', 5000);
    const [attempt] = await db.sql<{ name: string }[]>`select name from attempts where job_id = ${job.body.id}`;
    expect(cluster.objects.has(attempt!.name)).toBe(false);
    await running.pop()!.proofpod.stop();
    cluster.shutdown();
  });
});

describe('reaper leadership holds no open transaction', () => {
  it('a sweep longer than idle_in_transaction_session_timeout (1 s) passes', async () => {
    const name = new URL(db.url).pathname.slice(1);
    await db.sql.unsafe(`alter database ${name} set idle_in_transaction_session_timeout = '1s'`);
    // New connections get the setting; the sweep waits 1.5 s on the substrate's list.
    const sql = connect(db.url, { max: 3 });
    class SlowList extends FakeCluster {
      override async list() {
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return super.list();
      }
    }
    const cluster = new SlowList();
    try {
      const [setting] = await sql<{ timeout: string }[]>`select current_setting('idle_in_transaction_session_timeout') as timeout`;
      expect(setting?.timeout).toBe('1s');
      expect(await reaperSweep(replicaContext(db.url, sql, cluster, 'slow-sweeper'))).toBe(true);
      // The lock is released after the sweep: the next one takes it again.
      expect(await reaperSweep(replicaContext(db.url, sql, cluster, 'slow-sweeper'))).toBe(true);
    } finally {
      cluster.shutdown();
      await sql.end();
      await db.sql.unsafe(`alter database ${name} reset idle_in_transaction_session_timeout`);
    }
  });
});

describe('an attempt the reaper adopts', () => {
  it('records the profile as its lane runs it: without the second checker in verify', async () => {
    const cluster = new FakeCluster({ runMs: 60_000 });
    const ctx = replicaContext(db.url, db.sql, cluster, 'adopter');
    await queueJobs(db.sql, { submitter: 'ci', prover: 'smt-z3', targets: ['a.smt2'], commit: 'c'.repeat(40) });
    const [claimed] = await claimAttempts(db.sql, {
      lane: 'verify',
      concurrency: 100,
      limit: 1,
      holder: 'dead',
      ttlSeconds: 30,
      deadlineSeconds: 600,
    });
    // Its holder created it in the substrate, then died before marking it started.
    await cluster.start({
      name: claimed!.name,
      attemptId: claimed!.attemptId,
      jobId: claimed!.jobId,
      attemptNo: 1,
      lane: 'verify',
      prover: 'smt-z3',
      laneConfig: defaultLanes.find((l) => l.name === 'verify')!,
      profile: defaultProfile('smt-z3'),
      source: { url: 'x', commit: 'c'.repeat(40), subdirectory: null },
      targets: ['a.smt2'],
      goals: [],
      deadlineAt: new Date(Date.now() + 600_000),
      uploadCredential: 'none',
      uploadUrl: 'http://127.0.0.1:9/none',
    });
    await db.sql`update claims set expires_at = now() - interval '1 second' where attempt_id = ${claimed!.attemptId}`;
    try {
      expect(await reaperSweep(ctx)).toBe(true);
      const [attempt] = await db.sql<
        { state: string; profile: { check: { second?: unknown } } }[]
      >`select state, profile from attempts where id = ${claimed!.attemptId}`;
      expect(attempt?.state).toBe('running');
      expect(attempt?.profile.check.second).toBeUndefined();
    } finally {
      cluster.shutdown();
      await db.sql`update jobs set state = 'cancelled' where id = ${claimed!.jobId}`;
      await db.sql`delete from claims where attempt_id = ${claimed!.attemptId}`;
    }
  });
});

describe('the reaper is a singleton', () => {
  it('sweeps only while no other replica holds the reaper lock', async () => {
    // No scheduler runs now: every job of the tests above has ended.
    const [open] = await db.sql<{ n: number }[]>`select count(*)::int as n from claims`;
    expect(open?.n).toBe(0);
    const cluster = new FakeCluster();
    const ctx = replicaContext(db.url, db.sql, cluster, 'sweeper');
    // An attempt whose holder died before it reached the substrate.
    await queueJobs(db.sql, { submitter: 'ci', commit: 'c'.repeat(40) });
    const [claimed] = await claimAttempts(db.sql, {
      lane: 'verify',
      concurrency: 100,
      limit: 1,
      holder: 'dead',
      ttlSeconds: 30,
      deadlineSeconds: 600,
    });
    await db.sql`update claims set expires_at = now() - interval '1 second' where attempt_id = ${claimed!.attemptId}`;

    const other = await db.sql.reserve();
    try {
      await other`begin`;
      await other`select pg_advisory_xact_lock(${lockKeys.reaper})`;
      expect(await reaperSweep(ctx)).toBe(false);
      const [still] = await db.sql`select holder from claims where attempt_id = ${claimed!.attemptId}`;
      expect(still?.holder).toBe('dead');
      await other`commit`;
    } finally {
      other.release();
    }
    expect(await reaperSweep(ctx)).toBe(true);
    const [now] = await db.sql`select holder, epoch from claims where attempt_id = ${claimed!.attemptId}`;
    expect(now).toEqual({ holder: 'sweeper', epoch: 2 });
    expect(cluster.created).toEqual([claimed!.name]);
    cluster.shutdown();
  });
});
