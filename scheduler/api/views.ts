import type { EventRow } from '../store/jobs/get-job.js';
import type { AttemptRow, JobRow } from '../store/rows.js';
import type { JobView } from './job-schemas.js';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toJobView(job: JobRow, attempts?: AttemptRow[]): JobView {
  return {
    id: job.id,
    state: job.state,
    stateReason: job.stateReason,
    submitter: job.submitterId,
    source: { url: job.sourceUrl, commit: job.commitSha, subdirectory: job.subdirectory },
    prover: job.prover,
    targets: job.targets,
    goals: job.goals,
    lane: job.lane,
    priority: job.priority,
    labels: job.labels,
    idempotencyKey: job.idempotencyKey,
    promoteTo: job.promoteTo,
    concurrency: job.concurrencyGroup === null ? null : { group: job.concurrencyGroup, cancelInProgress: job.cancelInProgress },
    supersededBy: job.supersededBy,
    canary: job.canary,
    attemptsMade: job.attemptsMade,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    finishedAt: iso(job.finishedAt),
    ...(attempts
      ? {
          attempts: attempts.map((a) => ({
            attemptNo: a.attemptNo,
            name: a.name,
            state: a.state,
            stateReason: a.stateReason,
            createdAt: a.createdAt.toISOString(),
            startedAt: iso(a.startedAt),
            deadlineAt: a.deadlineAt.toISOString(),
            finishedAt: iso(a.finishedAt),
            observedExitCode: a.observedExitCode,
            observedImageDigest: a.observedImageDigest,
            // A build container exists only for profiles with a build step; observed once the attempt finished.
            observedBuild:
              a.observedAt && (a.observedBuildExitCode !== null || a.observedBuildImageDigest !== null)
                ? { exitCode: a.observedBuildExitCode, imageDigest: a.observedBuildImageDigest }
                : null,
          })),
        }
      : {}),
  };
}

export function toEventView(event: EventRow) {
  return {
    attemptNo: event.attemptNo,
    at: event.at.toISOString(),
    actor: event.actor,
    from: event.fromState,
    to: event.toState,
    reason: event.reason,
  };
}
