import type { Sql } from '../../database/connect.js';
import { type JobRow, jobColumns } from '../rows.js';
import { type CancelledAttempt, cancelJobIn } from './cancel-job.js';
import { retryingRaces } from './retrying-races.js';
import { wakeDispatchers } from '../notify.js';
import { lockSubmitter } from '../locks.js';
import { overQueueQuota } from '../../policy/admission.js';
import { supersededStates } from '../../policy/supersession.js';
import { waiting as waitingList } from '../states.js';

export interface NewJob {
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
  /** SHA-256 of the normalised request, to tell a retry from a different request under one key. */
  requestHash: Buffer;
  promoteTo: string | null;
  concurrency: { group: string; cancelInProgress: boolean } | null;
  /** A canary of an unhealthy profile (docs/operations.md, "Prover health"): dispatched even so. */
  canary?: boolean;
}

export type SubmitResult =
  | {
      outcome: 'created';
      job: JobRow;
      /** Jobs of the same concurrency group this one superseded. */
      superseded: string[];
      /** Superseded jobs that had no attempt in flight: the caller counts their end. */
      endedWaiting: { lane: string; prover: string }[];
      /** Substrate names of superseded attempts that were in flight: the caller stops them. */
      stopAttempts: CancelledAttempt[];
    }
  | { outcome: 'existing'; job: JobRow }
  | { outcome: 'conflict'; job: JobRow }
  | { outcome: 'quota'; waiting: number };

/**
 * Inserts a queued job, in one transaction with what it implies: a retry under the same
 * idempotency key returns the first job; a submitter at its `maxQueued` gets nothing written; a
 * job with a concurrency group supersedes the group's waiting jobs, and with `cancelInProgress`
 * its job in flight too. The NOTIFY is only a hint for dispatchers to look now.
 */
export async function submitJob(sql: Sql, job: NewJob, quota: { maxQueued: number }): Promise<SubmitResult> {
  return retryingRaces(() =>
    sql.begin(async (tx): Promise<SubmitResult> => {
      await lockSubmitter(tx, job.submitterId);
      if (job.idempotencyKey !== null) {
        const [existing] = await tx<(JobRow & { requestHash: Buffer })[]>`
        select ${tx(jobColumns)}, request_hash from jobs
        where submitter_id = ${job.submitterId} and idempotency_key = ${job.idempotencyKey}`;
        if (existing) {
          const { requestHash, ...row } = existing;
          return { outcome: requestHash.equals(job.requestHash) ? 'existing' : 'conflict', job: row };
        }
      }
      const [waiting] = await tx<{ n: number }[]>`
      select count(*)::int as n from jobs
      where submitter_id = ${job.submitterId} and state in ${waitingList(tx)}`;
      if (overQueueQuota(waiting!.n, quota)) return { outcome: 'quota', waiting: waiting!.n };

      const [created] = await tx<JobRow[]>`
      insert into jobs (submitter_id, source_url, commit_sha, subdirectory, prover, targets, goals, lane, priority,
                        labels, idempotency_key, request_hash, promote_to, concurrency_group, cancel_in_progress,
                        canary, state, state_reason, state_actor)
      values (${job.submitterId}, ${job.sourceUrl}, ${job.commitSha}, ${job.subdirectory}, ${job.prover},
              ${job.targets}, ${tx.json(job.goals)}, ${job.lane}, ${job.priority}, ${tx.json(job.labels)}, ${job.idempotencyKey},
              ${job.requestHash}, ${job.promoteTo}, ${job.concurrency?.group ?? null}, ${job.concurrency?.cancelInProgress ?? false},
              ${job.canary ?? false}, 'queued', ${job.canary ? 'canary of an unhealthy prover profile' : 'submitted'}, ${job.submitterId})
      returning ${tx(jobColumns)}`;
      const superseded: string[] = [];
      const endedWaiting: { lane: string; prover: string }[] = [];
      const stopAttempts: CancelledAttempt[] = [];
      if (job.concurrency) {
        const states = supersededStates(job.concurrency);
        const older = await tx<{ id: string }[]>`
        select id from jobs
        where submitter_id = ${job.submitterId} and concurrency_group = ${job.concurrency.group}
          and state in ${tx(states)} and id <> ${created!.id}
        order by seq`;
        for (const { id } of older) {
          const cancelled = await cancelJobIn(
            tx,
            id,
            job.submitterId,
            `superseded by job ${created!.id} in concurrency group ${job.concurrency.group}`,
            created!.id,
          );
          if (cancelled.outcome !== 'cancelled') continue;
          superseded.push(id);
          if (cancelled.stopAttempt) stopAttempts.push(cancelled.stopAttempt);
          else endedWaiting.push({ lane: cancelled.job.lane, prover: cancelled.job.prover });
        }
      }
      // Delivered once this commits, in the same round trip as the rest of the submission.
      await wakeDispatchers(tx, job.lane);
      return { outcome: 'created', job: created!, superseded, endedWaiting, stopAttempts };
    }),
  );
}
