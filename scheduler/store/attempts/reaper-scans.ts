import type { Queryable } from '../../database/connect.js';
import { inFlight } from '../states.js';

export interface UnreportedAttempt {
  attemptId: string;
  jobId: string;
  attemptNo: number;
  lane: string;
  prover: string;
  epoch: number;
  observedAt: Date;
}

/** Attempts the substrate reported finished longer than `graceSeconds` ago with no evidence. */
export async function findUnreportedAttempts(sql: Queryable, graceSeconds: number, limit: number): Promise<UnreportedAttempt[]> {
  return sql<UnreportedAttempt[]>`
    select a.id as attempt_id, a.job_id, a.attempt_no, a.lane, j.prover, c.epoch, a.observed_at
    from attempts a
    join jobs j on j.id = a.job_id
    join claims c on c.attempt_id = a.id
    left join evidence e on e.attempt_id = a.id
    where a.state in ${inFlight(sql)}
      and a.observed_at < now() - make_interval(secs => ${graceSeconds})
      and e.attempt_id is null
    order by a.observed_at
    limit ${limit}`;
}

/** Of the given substrate names, the ones that belong to an attempt still in flight. */
export async function liveAttemptNames(sql: Queryable, names: string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const rows = await sql<{ name: string }[]>`
    select name from attempts where name = any(${names}) and state in ${inFlight(sql)}`;
  return new Set(rows.map((r) => r.name));
}
