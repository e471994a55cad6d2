import type { AttemptState, JobState } from '../job-states.js';

/** A job as stored; columns arrive camelCased from the driver. */
export interface JobRow {
  id: string;
  seq: number;
  submitterId: string;
  sourceUrl: string;
  commitSha: string;
  subdirectory: string | null;
  prover: string;
  targets: string[];
  goals: { name: string; statement: string }[];
  lane: string;
  priority: number;
  labels: Record<string, string>;
  idempotencyKey: string | null;
  state: JobState;
  stateReason: string;
  stateActor: string;
  attemptsMade: number;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  promoteTo: string | null;
  concurrencyGroup: string | null;
  cancelInProgress: boolean;
  supersededBy: string | null;
  /** Submitted by the scheduler to see whether an unhealthy profile works again. */
  canary: boolean;
}

export interface AttemptRow {
  id: string;
  jobId: string;
  attemptNo: number;
  name: string;
  lane: string;
  state: AttemptState;
  stateReason: string;
  stateActor: string;
  createdAt: Date;
  startedAt: Date | null;
  deadlineAt: Date;
  observedAt: Date | null;
  observedExitCode: number | null;
  observedImageDigest: string | null;
  observedBuildExitCode: number | null;
  observedBuildImageDigest: string | null;
  finishedAt: Date | null;
}

/** Columns of `jobs` as returned to callers (everything but the request hash). */
export const jobColumns = [
  'id',
  'seq',
  'submitter_id',
  'source_url',
  'commit_sha',
  'subdirectory',
  'prover',
  'targets',
  'goals',
  'lane',
  'priority',
  'labels',
  'idempotency_key',
  'state',
  'state_reason',
  'state_actor',
  'attempts_made',
  'created_at',
  'updated_at',
  'finished_at',
  'promote_to',
  'concurrency_group',
  'cancel_in_progress',
  'superseded_by',
  'canary',
] as const;
