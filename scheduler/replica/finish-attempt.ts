import type { Logger } from 'pino';
import { type JudgedAttempt, issueAttestation } from '../attestation/issue-attestation.js';
import { StaleError } from '../errors.js';
import { type AttemptEnding, type JobState, isFinalJobState } from '../job-states.js';
import { attemptTransition } from '../policy/attempt-transition.js';
import type { Metrics } from '../metrics.js';
import type { Fence } from '../store/fence.js';
import { writeAttemptEnd } from '../store/attempts/end-attempt.js';
import { type ContainerTiming, attemptPhases } from '../substrate/attempt-phases.js';
import { type ReplicaContext, laneOf } from './context.js';
import { type HealthChange, logHealthChange, writeProverHealth } from './prover-health.js';

/** The attempt being ended, as its caller knows it. */
export interface EndingAttempt {
  lane: string;
  prover: string;
  /** When the substrate reported the pod finished: its containers' timestamps, whose phase durations are observed. */
  timings?: readonly ContainerTiming[] | undefined;
  /** What the judge decided a verdict from: a final verdict is signed from it in the ending's transaction. */
  judged?: JudgedAttempt | undefined;
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
  let health: HealthChange;
  try {
    ({ state, alongside: health } = await writeAttemptEnd(
      ctx.sql,
      fence,
      (facts) => attemptTransition(ending, facts, { retryLimit: lane.retryLimit, promotion: ctx.config.promotion }),
      log,
      async (tx, jobState) => {
        const change = await writeProverHealth(tx, fence.attemptId, attempt.prover, ending, ctx.config.proverHealth.failureThreshold);
        if (attempt.judged && ending.kind === 'verdict')
          await issueAttestation(tx, ctx.signingKey, attempt.judged, jobState, ending.reason);
        return change;
      },
    ));
  } catch (error) {
    if (!(error instanceof StaleError)) throw error;
    ctx.metrics.staleWrites.inc();
    log.info({ epoch: fence.epoch, reason: ending.reason }, 'attempt is held at a later epoch now; not ended here');
    return 'stale';
  }
  recordAttemptEnded(ctx.metrics, log, attempt, state, ending.reason);
  logHealthChange(log, attempt.prover, health, ending.reason);
  return state;
}

/**
 * The metrics and the log line of an ended attempt: finishAttempt's, and a cancel's (which ends
 * the attempt in the same transaction as its job, cancel-job.ts). `state` is the job's state after
 * it; when final, the job's verdict is counted here too.
 */
export function recordAttemptEnded(
  metrics: Metrics,
  log: Pick<Logger, 'info'>,
  attempt: EndingAttempt,
  state: JobState,
  reason: string,
): void {
  const { lane, prover } = attempt;
  metrics.attemptsEnded.inc({ lane, prover, state });
  for (const { phase, seconds } of attemptPhases(attempt.timings ?? []))
    metrics.attemptPhaseSeconds.observe({ lane, prover, phase }, seconds);
  recordJobEnded(metrics, attempt, state);
  log.info({ state, reason }, 'attempt ended');
}

/**
 * Counts a job's verdict when `state` is final, once per job: by recordAttemptEnded for a job that
 * ended with its attempt, and by the API alone for one that ended with none in flight (a cancel or
 * supersession of a waiting job). A state that is not final (a retry, a promotion) counts nothing.
 */
export function recordJobEnded(metrics: Metrics, job: { lane: string; prover: string }, state: JobState): void {
  if (isFinalJobState(state)) metrics.verdicts.inc({ lane: job.lane, prover: job.prover, outcome: state });
}
