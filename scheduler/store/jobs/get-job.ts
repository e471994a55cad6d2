import type { Queryable } from '../../database/connect.js';
import { type AttemptRow, type JobRow, jobColumns } from '../rows.js';

export async function getJob(sql: Queryable, id: string): Promise<JobRow | undefined> {
  const [job] = await sql<JobRow[]>`select ${sql(jobColumns)} from jobs where id = ${id}`;
  return job;
}

export async function getAttempts(sql: Queryable, jobId: string): Promise<AttemptRow[]> {
  return sql<AttemptRow[]>`select * from attempts where job_id = ${jobId} order by attempt_no`;
}

export interface EventRow {
  id: number;
  attemptNo: number | null;
  at: Date;
  actor: string;
  fromState: string | null;
  toState: string;
  reason: string;
}

export async function getEvents(sql: Queryable, jobId: string): Promise<EventRow[]> {
  return sql<EventRow[]>`
    select id, attempt_no, at, actor, from_state, to_state, reason from events
    where job_id = ${jobId} order by id`;
}
