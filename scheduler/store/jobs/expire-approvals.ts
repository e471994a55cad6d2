import type { Sql } from '../../database/connect.js';
import { type JobRow, jobColumns } from '../rows.js';

/** The actor the event log names for an expired approval. */
export const EXPIRY_ACTOR = 'reaper';

/**
 * Ends `cancelled` the jobs of `lane` that have waited in `awaiting_approval` longer than
 * `seconds` (since the attempt that passed the lane ended), at most `limit` of them. No attempt is
 * in flight for such a job, so nothing else is closed; an approval racing this one changes the row
 * first or finds it cancelled.
 */
export async function expireApprovals(sql: Sql, lane: string, seconds: number, limit: number): Promise<JobRow[]> {
  return sql<JobRow[]>`
    update jobs set state = 'cancelled', state_actor = ${EXPIRY_ACTOR}, updated_at = now(), finished_at = now(),
      state_reason = 'approval expired: waited ' || floor(extract(epoch from now() - updated_at))::bigint
        || ' s in awaiting_approval for promotion to ' || coalesce(promote_to, '?')
        || ' (lane ' || lane || ' allows ' || ${seconds}::int || ' s)'
    where id in (
      select id from jobs
      where state = 'awaiting_approval' and lane = ${lane} and updated_at < now() - make_interval(secs => ${seconds})
      order by updated_at limit ${limit}
      for update skip locked)
    returning ${sql(jobColumns)}`;
}
