import type { Sql } from '../../database/connect.js';
import { type JobRow, jobColumns } from '../rows.js';

export interface NewJob {
  submitterId: string;
  sourceUrl: string;
  commitSha: string;
  subdirectory: string | null;
  prover: string;
  targets: string[];
  lane: string;
  priority: number;
  labels: Record<string, string>;
  idempotencyKey: string | null;
  /** SHA-256 of the normalised request, to tell a retry from a different request under one key. */
  requestHash: Buffer;
}

export type SubmitResult =
  | { outcome: 'created'; job: JobRow }
  | { outcome: 'existing'; job: JobRow }
  | { outcome: 'conflict'; job: JobRow };

/**
 * Inserts a queued job. With an idempotency key, `on conflict do nothing` makes concurrent retries
 * race safely: exactly one insert wins, the others read the winner and compare request hashes.
 * The NOTIFY is only a hint for dispatchers to look now; they poll regardless.
 */
export async function submitJob(sql: Sql, job: NewJob): Promise<SubmitResult> {
  const inserted = await sql<JobRow[]>`
    insert into jobs (submitter_id, source_url, commit_sha, subdirectory, prover, targets, lane, priority,
                      labels, idempotency_key, request_hash, state, state_reason, state_actor)
    values (${job.submitterId}, ${job.sourceUrl}, ${job.commitSha}, ${job.subdirectory}, ${job.prover},
            ${job.targets}, ${job.lane}, ${job.priority}, ${sql.json(job.labels)}, ${job.idempotencyKey},
            ${job.requestHash}, 'queued', 'submitted', ${job.submitterId})
    on conflict (submitter_id, idempotency_key) do nothing
    returning ${sql(jobColumns)}`;
  const created = inserted[0];
  if (created) {
    await sql`select pg_notify('proofpod_jobs', ${job.lane})`;
    return { outcome: 'created', job: created };
  }
  const [existing] = await sql<(JobRow & { requestHash: Buffer })[]>`
    select ${sql(jobColumns)}, request_hash from jobs
    where submitter_id = ${job.submitterId} and idempotency_key = ${job.idempotencyKey}`;
  if (!existing) throw new Error('idempotency key conflicted but no job holds it');
  const { requestHash, ...row } = existing;
  return { outcome: requestHash.equals(job.requestHash) ? 'existing' : 'conflict', job: row };
}
