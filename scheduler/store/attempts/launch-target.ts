import type { Queryable } from '../../database/connect.js';

/** The facts needed to start an attempt in a substrate. */
export interface LaunchTarget {
  attemptId: string;
  jobId: string;
  attemptNo: number;
  name: string;
  lane: string;
  deadlineAt: Date;
  prover: string;
  sourceUrl: string;
  commitSha: string;
  subdirectory: string | null;
  targets: string[];
  goals: { name: string; statement: string }[];
  submittedAt: Date;
}

export async function getLaunchTarget(sql: Queryable, attemptId: string): Promise<LaunchTarget | undefined> {
  const [row] = await sql<LaunchTarget[]>`
    select a.id as attempt_id, a.job_id, a.attempt_no, a.name, a.lane, a.deadline_at, j.prover, j.source_url,
           j.commit_sha, j.subdirectory, j.targets, j.goals, j.created_at as submitted_at
    from attempts a join jobs j on j.id = a.job_id
    where a.id = ${attemptId}`;
  return row;
}
