import type { Logger } from 'pino';
import { StaleError } from '../errors.js';
import type { AttemptEnding, JobState } from '../job-states.js';
import { attemptTransition } from '../policy/attempt-transition.js';
import type { Metrics } from '../metrics.js';
import type { Fence } from '../store/fence.js';
import { writeAttemptEnd } from '../store/attempts/end-attempt.js';
import { type ReplicaContext, laneOf } from './context.js';

/** The attempt being ended, as its caller knows it. */
export interface EndingAttempt {
  lane: string;
  prover: string;
}

/**
 * Ends an attempt this replica holds, for every path that ends one (a verdict, a failed launch, a
 * lease that expired with the attempt gone, evidence that never came): the lane's retry limit and
 * the promotion rules decide where the job goes (policy/attempt-transition.ts), the store writes
 * it, and the metric and the log line follow. An attempt held at a later epoch by now is counted
 * as a stale write and left alone. Returns the job's new state, or `stale`.
 */
export async function finishAttempt(
  ctx: ReplicaContext,
  fence: Fence,
  ending: AttemptEnding,
  attempt: EndingAttempt,
  log: Logger,
): Promise<JobState | 'stale'> {
  const lane = laneOf(ctx, attempt.lane);
  let state: JobState;
  try {
    state = await writeAttemptEnd(
      ctx.sql,
      fence,
      (facts) => attemptTransition(ending, facts, { retryLimit: lane.retryLimit, promotion: ctx.config.promotion }),
      log,
    );
  } catch (error) {
    if (!(error instanceof StaleError)) throw error;
    ctx.metrics.staleWrites.inc();
    log.info({ epoch: fence.epoch, reason: ending.reason }, 'attempt is held at a later epoch now; not ended here');
    return 'stale';
  }
  recordAttemptEnded(ctx.metrics, log, attempt, state, ending.reason);
  return state;
}

/**
 * The metric and the log line of an ended attempt: finishAttempt's, and a cancel's (which ends
 * the attempt in the same transaction as its job, cancel-job.ts).
 */
export function recordAttemptEnded(
  metrics: Metrics,
  log: Pick<Logger, 'info'>,
  attempt: EndingAttempt,
  state: JobState,
  reason: string,
): void {
  metrics.attemptsEnded.inc({ lane: attempt.lane, prover: attempt.prover, state });
  log.info({ state, reason }, 'attempt ended');
}
