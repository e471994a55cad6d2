import type { Sql } from '../../database/connect.js';
import { type JobRow, jobColumns } from '../rows.js';
import { wakeDispatchers } from '../notify.js';

export type ApproveResult =
  | { outcome: 'approved'; job: JobRow }
  | { outcome: 'not_waiting'; job: JobRow }
  /** Nobody approves their own job: a second person lets it spend trusted capacity. */
  | { outcome: 'own_job'; job: JobRow }
  | { outcome: 'not_found' };

/**
 * Promotes a job that passed its untrusted lane and waits in `awaiting_approval` to the trusted lane
 * it asked for: `queued` there, with the approver as the actor of the state change, so the event
 * log records who let it spend trusted capacity. The approver is never the job's submitter,
 * whatever its roles: that is in the same statement as the change.
 */
export async function approveJob(sql: Sql, jobId: string, approver: string, note: string | undefined): Promise<ApproveResult> {
  const [approved] = await sql<JobRow[]>`
    update jobs set state = 'queued', lane = promote_to, state_actor = ${approver}, updated_at = now(),
                    state_reason = 'approved by ' || ${approver} || ' to run in ' || promote_to || ${note ? `: ${note}` : ''}
    where id = ${jobId} and state = 'awaiting_approval' and promote_to is not null and submitter_id <> ${approver}
    returning ${sql(jobColumns)}`;
  if (approved) {
    await wakeDispatchers(sql, approved.lane);
    return { outcome: 'approved', job: approved };
  }
  const [job] = await sql<JobRow[]>`select ${sql(jobColumns)} from jobs where id = ${jobId}`;
  if (!job) return { outcome: 'not_found' };
  return job.submitterId === approver && job.state === 'awaiting_approval' ? { outcome: 'own_job', job } : { outcome: 'not_waiting', job };
}
