import type { Logger } from 'pino';
import type { Sql, TransactionSql } from '../../database/connect.js';
import type { AttemptEnding, JobState } from '../../job-states.js';
import { type Fence, lockFence } from '../fence.js';

/**
 * Ends a held attempt and moves its job on: to its verdict, to an error, or — for an
 * infrastructure failure while the lane's retry limit allows — back to `queued` for a new attempt.
 * The lease is released and the attempt's upload credentials are revoked in the same transaction.
 * Returns the job's new state.
 */
export async function endAttempt(
  sql: Sql,
  fence: Fence,
  ending: AttemptEnding,
  retryLimit: number,
  log?: Logger,
): Promise<JobState> {
  const next = await sql.begin(async (tx) => {
    await lockFence(tx, fence, log);
    const [attempt] = await tx<{ jobId: string; attemptNo: number }[]>`
      select job_id, attempt_no from attempts where id = ${fence.attemptId}`;
    if (!attempt) throw new Error(`attempt ${fence.attemptId} is held but does not exist`);
    const { attemptState, jobState, jobReason } = decide(ending, attempt.attemptNo, retryLimit);
    await closeAttempt(tx, fence.attemptId, attemptState, ending.reason, fence.holder);
    await tx`
      update jobs set state = ${jobState}, state_reason = ${jobReason}, state_actor = ${fence.holder},
                      updated_at = now(),
                      finished_at = case when ${jobState} = 'queued' then null else now() end
      where id = ${attempt.jobId}`;
    return jobState;
  });
  if (next === 'queued') await sql`select pg_notify('proofpod_jobs', '')`;
  return next;
}

function decide(
  ending: AttemptEnding,
  attemptNo: number,
  retryLimit: number,
): { attemptState: 'succeeded' | 'failed'; jobState: JobState; jobReason: string } {
  switch (ending.kind) {
    case 'verdict':
      return { attemptState: 'succeeded', jobState: ending.jobState, jobReason: ending.reason };
    case 'error':
      return { attemptState: 'failed', jobState: ending.jobState, jobReason: ending.reason };
    case 'infrastructure':
      return attemptNo <= retryLimit
        ? { attemptState: 'failed', jobState: 'queued', jobReason: `retrying after attempt ${attemptNo}: ${ending.reason}` }
        : {
            attemptState: 'failed',
            jobState: 'error',
            jobReason: `gave up after ${attemptNo} attempts: ${ending.reason}`,
          };
  }
}

/** Final state for the attempt, lease released, credentials revoked. Caller holds the fence. */
export async function closeAttempt(
  tx: TransactionSql,
  attemptId: string,
  state: 'succeeded' | 'failed' | 'cancelled',
  reason: string,
  actor: string,
): Promise<void> {
  await tx`
    update attempts set state = ${state}, state_reason = ${reason}, state_actor = ${actor}, finished_at = now()
    where id = ${attemptId}`;
  await tx`delete from claims where attempt_id = ${attemptId}`;
  await tx`update upload_credentials set revoked_at = now() where attempt_id = ${attemptId} and revoked_at is null`;
}
