import type { Logger } from 'pino';
import type { Sql, TransactionSql } from '../../database/connect.js';
import type { AttemptEnding, JobState } from '../../job-states.js';
import { type PromotionRule, promotionRuleFor } from '../../lanes.js';
import { type Fence, lockFence } from '../fence.js';

/**
 * Ends a held attempt and moves its job on: to its verdict, to an error, or — for an
 * infrastructure failure while the lane's retry limit allows — back to `queued` for a new attempt.
 * A job that passed an untrusted lane with a `promoteTo` does not end there: it moves to that
 * trusted lane when a promotion rule covers it (`queued`, the rule as actor), and otherwise waits in
 * `awaiting_approval`. The lease is released and the attempt's upload credentials are revoked in
 * the same transaction. Returns the job's new state.
 */
export async function endAttempt(
  sql: Sql,
  fence: Fence,
  ending: AttemptEnding,
  retryLimit: number,
  log?: Logger,
  promotion: readonly PromotionRule[] = [],
): Promise<JobState> {
  const next = await sql.begin(async (tx) => {
    await lockFence(tx, fence, log);
    const [attempt] = await tx<{ jobId: string; attemptNo: number; inLane: number; lane: string; promoteTo: string | null; submitterId: string }[]>`
      select a.job_id, a.attempt_no, j.lane, j.promote_to, j.submitter_id,
             (select count(*)::int from attempts o where o.job_id = a.job_id and o.lane = a.lane) as in_lane
      from attempts a join jobs j on j.id = a.job_id
      where a.id = ${fence.attemptId}`;
    if (!attempt) throw new Error(`attempt ${fence.attemptId} is held but does not exist`);
    const { attemptState, jobState, jobReason } = decide(ending, attempt.inLane, retryLimit);
    await closeAttempt(tx, fence.attemptId, attemptState, ending.reason, fence.holder);
    if (jobState === 'verified' && attempt.promoteTo && attempt.promoteTo !== attempt.lane) {
      const rule = promotionRuleFor(promotion, { lane: attempt.lane, promoteTo: attempt.promoteTo, submitterId: attempt.submitterId });
      if (rule) {
        await tx`
          update jobs set state = 'queued', lane = ${attempt.promoteTo}, state_actor = ${`policy:${rule.name}`}, updated_at = now(),
                          state_reason = ${`passed ${attempt.lane} (${jobReason}); promoted to ${attempt.promoteTo} by policy ${rule.name}`}
          where id = ${attempt.jobId}`;
        return 'queued';
      }
      await tx`
        update jobs set state = 'awaiting_approval', state_actor = ${fence.holder}, updated_at = now(),
                        state_reason = ${`passed ${attempt.lane} (${jobReason}); awaiting approval to run in ${attempt.promoteTo}`}
        where id = ${attempt.jobId}`;
      return 'awaiting_approval';
    }
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
  attemptsInLane: number,
  retryLimit: number,
): { attemptState: 'succeeded' | 'failed'; jobState: JobState; jobReason: string } {
  switch (ending.kind) {
    case 'verdict':
      return { attemptState: 'succeeded', jobState: ending.jobState, jobReason: ending.reason };
    case 'error':
      return { attemptState: 'failed', jobState: ending.jobState, jobReason: ending.reason };
    case 'infrastructure':
      return attemptsInLane <= retryLimit
        ? { attemptState: 'failed', jobState: 'queued', jobReason: `retrying after attempt ${attemptsInLane}: ${ending.reason}` }
        : {
            attemptState: 'failed',
            jobState: 'error',
            jobReason: `gave up after ${attemptsInLane} attempts: ${ending.reason}`,
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
