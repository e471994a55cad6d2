import type { Queryable } from '../../database/connect.js';
import type { JobState } from '../../job-states.js';
import { type JobRow, jobColumns } from '../rows.js';

export interface JobFilter {
  states?: JobState[];
  lane?: string;
  prover?: string;
  labels?: Record<string, string>;
  /** Only this submitter's jobs; undefined for an admin view of all. */
  submitterId?: string;
  /** Newest first: only jobs older than this sequence number. */
  beforeSeq?: number;
  limit: number;
}

/**
 * Newest first, keyset-paginated on `seq` so that pages stay stable while jobs are submitted.
 * Fetches one row more than asked to know whether another page exists.
 */
export async function listJobs(sql: Queryable, filter: JobFilter): Promise<{ jobs: JobRow[]; nextSeq?: number }> {
  const rows = await sql<JobRow[]>`
    select ${sql(jobColumns)} from jobs
    where true
      ${filter.states?.length ? sql`and state = any(${filter.states})` : sql``}
      ${filter.lane ? sql`and lane = ${filter.lane}` : sql``}
      ${filter.prover ? sql`and prover = ${filter.prover}` : sql``}
      ${filter.labels && Object.keys(filter.labels).length ? sql`and labels @> ${sql.json(filter.labels)}` : sql``}
      ${filter.submitterId ? sql`and submitter_id = ${filter.submitterId}` : sql``}
      ${filter.beforeSeq !== undefined ? sql`and seq < ${filter.beforeSeq}` : sql``}
    order by seq desc
    limit ${filter.limit + 1}`;
  const more = rows.length > filter.limit;
  const jobs = more ? rows.slice(0, filter.limit) : rows;
  const last = jobs.at(-1);
  return more && last ? { jobs, nextSeq: last.seq } : { jobs };
}
