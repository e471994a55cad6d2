import type { Queryable } from '../../database/connect.js';
import type { AttemptState } from '../../job-states.js';

export interface HeldAttempt {
  attemptId: string;
  jobId: string;
  attemptNo: number;
  name: string;
  lane: string;
  prover: string;
  state: AttemptState;
  epoch: number;
  deadlineAt: Date;
  observedAt: Date | null;
  hasEvidence: boolean;
  /** What was dispatched, for the judge to bind the evidence to. */
  sourceUrl: string;
  commitSha: string;
  subdirectory: string | null;
  targets: string[];
  goals: { name: string; statement: string }[];
  /** Null until the attempt started. */
  profile: unknown;
  allowedAxioms: string[] | null;
}

/** The attempts this replica holds a lease on: the ones its watcher is responsible for. */
export async function heldAttempts(sql: Queryable, holder: string): Promise<HeldAttempt[]> {
  return sql<HeldAttempt[]>`
    select a.id as attempt_id, a.job_id, a.attempt_no, a.name, a.lane, j.prover, a.state, c.epoch,
           a.deadline_at, a.observed_at, (e.attempt_id is not null) as has_evidence,
           j.source_url, j.commit_sha, j.subdirectory, j.targets, j.goals, a.profile, a.allowed_axioms
    from claims c
    join attempts a on a.id = c.attempt_id
    join jobs j on j.id = a.job_id
    left join evidence e on e.attempt_id = a.id
    where c.holder = ${holder}`;
}
