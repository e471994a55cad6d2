import type { Logger } from 'pino';
import type { Sql, TransactionSql } from '../../database/connect.js';
import { type JobState, isFinalJobState } from '../../job-states.js';
import type { AttemptTransition, EndingFacts } from '../../policy/attempt-transition.js';
import { type Fence, lockFence } from '../fence.js';
import { wakeDispatchers } from '../notify.js';

/**
 * The store's end-of-attempt write (its one caller is scheduler/replica/finish-attempt.ts): under
 * the attempt's fence, reads what `decide` needs, closes the attempt (lease released, upload
 * credentials revoked) and moves the job where `decide` says, in one transaction. Returns the job's
 * new state.
 */
export async function writeAttemptEnd<T = undefined>(
  sql: Sql,
  fence: Fence,
  decide: (facts: EndingFacts) => AttemptTransition,
  log?: Logger,
  /** More writes that must commit with the ending, or not at all (the profile's health). */
  alongside?: (tx: TransactionSql, state: JobState) => Promise<T>,
): Promise<{ state: JobState; alongside: T | undefined }> {
  return sql.begin(async (tx) => {
    await lockFence(tx, fence, log);
    const [facts] = await tx<(EndingFacts & { jobId: string })[]>`
      select a.job_id, j.lane, j.promote_to, j.submitter_id,
             (select count(*)::int from attempts o where o.job_id = a.job_id and o.lane = a.lane) as attempts_in_lane
      from attempts a join jobs j on j.id = a.job_id
      where a.id = ${fence.attemptId}`;
    if (!facts) throw new Error(`attempt ${fence.attemptId} is held but does not exist`);
    const { attemptState, attemptReason, job } = decide(facts);
    await closeAttempt(tx, fence.attemptId, attemptState, attemptReason, fence.holder);
    await tx`
      update jobs set state = ${job.state}, state_reason = ${job.reason}, state_actor = ${job.actor ?? fence.holder},
                      lane = ${job.lane ?? facts.lane}, updated_at = now(),
                      finished_at = case when ${isFinalJobState(job.state)} then now() else null end
      where id = ${facts.jobId}`;
    return { state: job.state, alongside: alongside ? await alongside(tx, job.state) : undefined };
  });
}

/**
 * Final state for the attempt, lease released, credentials revoked. Caller holds the fence. The
 * capacity the attempt held in its lane is free once this commits: the dispatchers are woken then
 * (a job put back in the queue is in that notification too).
 */
export async function closeAttempt(
  tx: TransactionSql,
  attemptId: string,
  state: 'succeeded' | 'failed' | 'cancelled',
  reason: string,
  actor: string,
): Promise<void> {
  const [closed] = await tx<{ lane: string }[]>`
    update attempts set state = ${state}, state_reason = ${reason}, state_actor = ${actor}, finished_at = now()
    where id = ${attemptId}
    returning lane`;
  await tx`delete from claims where attempt_id = ${attemptId}`;
  // A used credential is spent already: only the unused ones need revoking.
  await tx`update upload_credentials set revoked_at = now() where attempt_id = ${attemptId} and used_at is null and revoked_at is null`;
  await wakeDispatchers(tx, closed?.lane);
}
