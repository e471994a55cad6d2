import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { StaleError } from '../scheduler/errors.js';
import { claimAttempts } from '../scheduler/store/claims/claim-attempts.js';
import type { Logger } from 'pino';
import type { AttemptEnding } from '../scheduler/job-states.js';
import { attemptTransition } from '../scheduler/policy/attempt-transition.js';
import type { Fence } from '../scheduler/store/fence.js';
import { writeAttemptEnd } from '../scheduler/store/attempts/end-attempt.js';
import { recordFinishObservation } from '../scheduler/store/attempts/record-observation.js';
import { renewClaims } from '../scheduler/store/claims/renew-claims.js';
import { markAttemptStarted } from '../scheduler/store/attempts/start-attempt.js';
import { defaultProfile } from './support/evidence.js';
import { cancelJob } from '../scheduler/store/jobs/cancel-job.js';
import { submitJob } from '../scheduler/store/jobs/submit-job.js';
import { takeOverClaim } from '../scheduler/store/claims/take-over-claim.js';
import { mintUploadCredential } from '../scheduler/store/evidence/upload-credentials.js';
import { createTestDatabase, createToken } from './support/database.js';

/** The store's end-of-attempt write under the lane policy's decision, as finishAttempt makes it (no promotion rules). */
const endAttempt = (sql: Parameters<typeof writeAttemptEnd>[0], fence: Fence, ending: AttemptEnding, retryLimit: number, log?: Logger) =>
  writeAttemptEnd(sql, fence, (facts) => attemptTransition(ending, facts, { retryLimit, promotion: [] }), log).then((r) => r.state);

const { sql } = await createTestDatabase();
await createToken(sql, { id: 'alice' });

async function queuedJob(lane = 'verify') {
  const result = await submitJob(
    sql,
    {
      submitterId: 'alice',
      sourceUrl: 'https://example.org/p.git',
      commitSha: 'a'.repeat(40),
      subdirectory: null,
      prover: 'coq',
      targets: ['A.v'],
      goals: [],
      lane,
      priority: 0,
      labels: {},
      idempotencyKey: null,
      requestHash: Buffer.from('x'),
      promoteTo: null,
      concurrency: null,
    },
    { maxQueued: 1_000_000 },
  );
  if (result.outcome !== 'created') throw new Error(`not created: ${result.outcome}`);
  return result.job;
}

function capturingLogger() {
  const lines: { msg: string; staleEpoch?: number }[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'warn' }, stream), lines };
}

async function snapshot(attemptId: string) {
  const [row] = await sql`
    select a.state as attempt_state, a.observed_at, j.state as job_state, c.holder, c.epoch,
           (select count(*)::int from upload_credentials u where u.attempt_id = a.id) as credentials,
           (select count(*)::int from events e where e.job_id = a.job_id) as events
    from attempts a join jobs j on j.id = a.job_id left join claims c on c.attempt_id = a.id
    where a.id = ${attemptId}`;
  return row;
}

describe('fencing', () => {
  it("a stale holder's late writes (old epoch) change nothing on an attempt taken over, and are logged", async () => {
    const job = await queuedJob();
    const [claimed] = await claimAttempts(sql, {
      lane: 'verify',
      concurrency: 10,
      limit: 1,
      holder: 'replica-a',
      ttlSeconds: 30,
      deadlineSeconds: 600,
    });
    expect(claimed?.jobId).toBe(job.id);
    expect(claimed?.epoch).toBe(1);
    const stale = { attemptId: claimed!.attemptId, epoch: 1, holder: 'replica-a' };

    // replica-a stalls; its lease runs out; replica-b takes the attempt over.
    await sql`update claims set expires_at = now() - interval '1 second' where attempt_id = ${claimed!.attemptId}`;
    const epoch = await takeOverClaim(sql, { attemptId: claimed!.attemptId, seenEpoch: 1, holder: 'replica-b', ttlSeconds: 30 });
    expect(epoch).toBe(2);
    // A second takeover based on the same stale view loses.
    expect(await takeOverClaim(sql, { attemptId: claimed!.attemptId, seenEpoch: 1, holder: 'replica-c', ttlSeconds: 30 })).toBeUndefined();

    const before = await snapshot(claimed!.attemptId);
    const { log, lines } = capturingLogger();
    await expect(markAttemptStarted(sql, stale, { profile: defaultProfile('coq'), allowedAxioms: [] }, log)).rejects.toBeInstanceOf(
      StaleError,
    );
    await expect(
      recordFinishObservation(sql, stale, { check: { exitCode: 0, imageDigest: null }, build: null }, log),
    ).rejects.toBeInstanceOf(StaleError);
    await expect(mintUploadCredential(sql, stale, new Date(Date.now() + 60_000), log)).rejects.toBeInstanceOf(StaleError);
    await expect(endAttempt(sql, stale, { kind: 'verdict', jobState: 'verified', reason: 'late verdict' }, 2, log)).rejects.toBeInstanceOf(
      StaleError,
    );
    // Renewing does not win the lease back either.
    expect(await renewClaims(sql, 'replica-a', 30)).toBe(0);

    expect(await snapshot(claimed!.attemptId)).toEqual(before);
    expect(before).toMatchObject({ attemptState: 'dispatching', jobState: 'dispatching', holder: 'replica-b', epoch: 2, credentials: 0 });
    expect(lines.filter((l) => l.msg.startsWith('stale write refused'))).toHaveLength(4);
    expect(lines.every((l) => l.staleEpoch === 1)).toBe(true);

    // The current holder's writes go through.
    const current = { attemptId: claimed!.attemptId, epoch: 2, holder: 'replica-b' };
    await markAttemptStarted(sql, current, { profile: defaultProfile('coq'), allowedAxioms: [] });
    expect(await endAttempt(sql, current, { kind: 'verdict', jobState: 'rejected', reason: 'proof broken' }, 2)).toBe('rejected');
    const after = await snapshot(claimed!.attemptId);
    expect(after).toMatchObject({ attemptState: 'succeeded', jobState: 'rejected', holder: null });
  });

  it('an ended attempt cannot be ended again, not even by its last holder', async () => {
    await queuedJob();
    const [claimed] = await claimAttempts(sql, {
      lane: 'verify',
      concurrency: 10,
      limit: 1,
      holder: 'replica-a',
      ttlSeconds: 30,
      deadlineSeconds: 600,
    });
    const fence = { attemptId: claimed!.attemptId, epoch: 1, holder: 'replica-a' };
    await markAttemptStarted(sql, fence, { profile: defaultProfile('coq'), allowedAxioms: [] });
    await endAttempt(sql, fence, { kind: 'verdict', jobState: 'verified', reason: 'ok' }, 2);
    await expect(endAttempt(sql, fence, { kind: 'verdict', jobState: 'rejected', reason: 'flip' }, 2)).rejects.toBeInstanceOf(StaleError);
    const [job] = await sql`select state from jobs where id = ${claimed!.jobId}`;
    expect(job?.state).toBe('verified');
  });

  it('the database itself refuses to move a job out of a final state', async () => {
    const job = await queuedJob();
    await sql`update jobs set state = 'cancelled', state_actor = 'test', state_reason = 'test' where id = ${job.id}`;
    await expect(sql`update jobs set state = 'queued', state_actor = 'bug', state_reason = 'bug' where id = ${job.id}`).rejects.toThrow(
      /is final in state cancelled/,
    );
  });

  it('the event log is append-only', async () => {
    await expect(sql`delete from events`).rejects.toThrow(/append-only/);
    await expect(sql`update events set reason = 'rewritten'`).rejects.toThrow(/append-only/);
  });

  it('an infrastructure failure requeues the job until the retry limit, then errors', async () => {
    const job = await queuedJob('audit');
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const [claimed] = await claimAttempts(sql, {
        lane: 'audit',
        concurrency: 10,
        limit: 1,
        holder: 'r',
        ttlSeconds: 30,
        deadlineSeconds: 600,
      });
      expect(claimed?.attemptNo).toBe(i + 1);
      outcomes.push(
        await endAttempt(sql, { attemptId: claimed!.attemptId, epoch: 1, holder: 'r' }, { kind: 'infrastructure', reason: 'node lost' }, 2),
      );
    }
    expect(outcomes).toEqual(['queued', 'queued', 'error']);
    const [row] = await sql`select state, state_reason from jobs where id = ${job.id}`;
    expect(row).toEqual({ state: 'error', stateReason: 'gave up after 3 attempts: node lost' });
  });

  it('a cancel that races a claim of the same job waits for it and then cancels the claimed attempt', async () => {
    const job = await queuedJob('audit');
    // A claim in progress: its transaction has moved the job and made the lease, not committed yet.
    const claimer = await sql.reserve();
    try {
      await claimer`begin`;
      await claimer`update jobs set state = 'dispatching', attempts_made = 1, state_reason = 'claimed', state_actor = 'replica-a' where id = ${job.id}`;
      const [attempt] = await claimer<{ id: string; name: string }[]>`
        insert into attempts (job_id, attempt_no, lane, state, state_reason, state_actor, deadline_at)
        values (${job.id}, 1, 'audit', 'dispatching', 'claimed', 'replica-a', now() + interval '10 minutes') returning id, name`;
      await claimer`insert into claims (attempt_id, holder, epoch, expires_at) values (${attempt!.id}, 'replica-a', 1, now() + interval '30 seconds')`;
      // The cancel reads no lease yet, then waits on the job row until the claim commits.
      const cancelling = cancelJob(sql, job.id, 'alice', 'cancelled by alice');
      await new Promise((resolve) => setTimeout(resolve, 200));
      await claimer`commit`;
      const result = await cancelling;
      expect(result).toMatchObject({ outcome: 'cancelled', stopAttempt: { name: attempt!.name } });
      const [after] = await sql<{ jobState: string; attemptState: string; leases: number }[]>`
        select j.state as job_state, a.state as attempt_state, (select count(*)::int from claims where attempt_id = a.id) as leases
        from jobs j join attempts a on a.job_id = j.id where j.id = ${job.id}`;
      expect(after).toEqual({ jobState: 'cancelled', attemptState: 'cancelled', leases: 0 });
    } finally {
      claimer.release();
    }
  });

  it('the lane concurrency cap holds across claimers', async () => {
    for (let i = 0; i < 10; i++) await queuedJob('replay');
    const batches = await Promise.all(
      ['a', 'b', 'c'].map((holder) =>
        claimAttempts(sql, { lane: 'replay', concurrency: 4, limit: 3, holder, ttlSeconds: 30, deadlineSeconds: 600 }),
      ),
    );
    expect(batches.flat()).toHaveLength(4);
    expect(new Set(batches.flat().map((c) => c.jobId)).size).toBe(4);
  });
});
