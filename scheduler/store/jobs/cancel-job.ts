import type { Sql, TransactionSql } from '../../database/connect.js';
import { type JobState, isFinalJobState } from '../../job-states.js';
import { type JobRow, jobColumns } from '../rows.js';
import { closeAttempt } from '../attempts/end-attempt.js';
import { ClaimedMeanwhileError, retryingRaces } from './retrying-races.js';
import { inFlight } from '../states.js';

export type CancelResult =
  | { outcome: 'cancelled'; job: JobRow; stopAttempt?: CancelledAttempt }
  | { outcome: 'final'; job: JobRow }
  | { outcome: 'not_found' };

/**
 * Cancels a job in any non-final state. An in-flight attempt loses its lease (so its holder's
 * later writes are fenced out), is marked cancelled and its credentials revoked; the caller then
 * stops it in the substrate by the returned name, and the reaper deletes it if that fails.
 * Locks the claim before the job, the same order as fenced writes, so the two cannot deadlock.
 */
export async function cancelJob(sql: Sql, jobId: string, actor: string, reason: string): Promise<CancelResult> {
  return retryingRaces(() => sql.begin((tx) => cancelJobIn(tx, jobId, actor, reason)));
}

/** The attempt a cancel ended: the substrate object to stop, and what its metric and log line name. */
export interface CancelledAttempt {
  name: string;
  lane: string;
  prover: string;
  reason: string;
}

/** cancelJob inside the caller's transaction; `supersededBy` names the job that replaced this one. */
export async function cancelJobIn(
  tx: TransactionSql,
  jobId: string,
  actor: string,
  reason: string,
  supersededBy: string | null = null,
): Promise<CancelResult> {
  const [live] = await tx<{ attemptId: string; name: string; lane: string; prover: string }[]>`
    select a.id as attempt_id, a.name, a.lane, j.prover from attempts a
    join jobs j on j.id = a.job_id
    join claims c on c.attempt_id = a.id
    where a.job_id = ${jobId} and a.state in ${inFlight(tx)}
    for update of c`;
  const [job] = await tx<{ state: JobState }[]>`select state from jobs where id = ${jobId} for update`;
  if (!job) return { outcome: 'not_found' } as const;
  if (isFinalJobState(job.state)) {
    const [row] = await tx<JobRow[]>`select ${tx(jobColumns)} from jobs where id = ${jobId}`;
    return { outcome: 'final', job: row! } as const;
  }
  if (!live && (job.state === 'dispatching' || job.state === 'running')) {
    throw new ClaimedMeanwhileError(`job ${jobId} was claimed while it was being cancelled`);
  }
  if (live) await closeAttempt(tx, live.attemptId, 'cancelled', reason, actor);
  const [row] = await tx<JobRow[]>`
    update jobs set state = 'cancelled', state_reason = ${reason}, state_actor = ${actor},
                    updated_at = now(), finished_at = now(), superseded_by = ${supersededBy}
    where id = ${jobId}
    returning ${tx(jobColumns)}`;
  return live
    ? { outcome: 'cancelled', job: row!, stopAttempt: { name: live.name, lane: live.lane, prover: live.prover, reason } }
    : { outcome: 'cancelled', job: row! };
}
