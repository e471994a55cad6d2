import type { Logger } from 'pino';
import type { TransactionSql } from '../database/connect.js';
import type { AttemptEnding } from '../job-states.js';
import { CANARY_SUBMITTER } from './reap-canaries.js';
import { wakeDispatchers } from '../store/notify.js';
import {
  attemptImage,
  isConfiguredCanaryAttempt,
  recordProfileFailure,
  recordVerdict,
  stopBeingCanary,
} from '../store/provers/prover-health.js';

/** What an ended attempt changed of its profile's health, for the log line after the commit. */
export type HealthChange = { kind: 'unhealthy'; failures: number } | { kind: 'healthy' } | { kind: 'canary_rejected' } | undefined;

/**
 * What an ended attempt says about its prover profile (docs/operations.md, "Prover health"),
 * written in the attempt's ending transaction so that a job put back in the queue by the failure
 * that makes its profile unhealthy is never claimed in between: a failure of the profile's own
 * image or containers counts toward unhealthy; a verdict shows the profile works and makes it
 * healthy again, except a configured canary's `rejected` (a known-good proof refused: the profile
 * runs but is wrong, so it stays unhealthy; a probe job's `rejected` is just a verdict). A canary that failed of its profile waits like the other jobs
 * from then on. Other endings say nothing about the profile.
 */
export async function writeProverHealth(
  tx: TransactionSql,
  attemptId: string,
  prover: string,
  ending: AttemptEnding,
  failureThreshold: number,
): Promise<HealthChange> {
  if (ending.kind === 'infrastructure' && ending.ofProfile) {
    const image = (await attemptImage(tx, attemptId)) ?? 'unknown';
    const { health, becameUnhealthy } = await recordProfileFailure(tx, prover, image, ending.reason, failureThreshold);
    await stopBeingCanary(tx, attemptId);
    return becameUnhealthy ? { kind: 'unhealthy', failures: health.consecutiveFailures } : undefined;
  }
  if (ending.kind !== 'verdict') return undefined;
  if (ending.jobState === 'rejected' && (await isConfiguredCanaryAttempt(tx, attemptId, CANARY_SUBMITTER)))
    return { kind: 'canary_rejected' };
  const { wasUnhealthy } = await recordVerdict(tx, prover);
  if (!wasUnhealthy) return undefined;
  await wakeDispatchers(tx); // its waiting jobs may go now
  return { kind: 'healthy' };
}

export function logHealthChange(log: Logger, prover: string, change: HealthChange, reason: string): void {
  if (change?.kind === 'unhealthy')
    log.warn(
      { prover, failures: change.failures, reason },
      'prover profile unhealthy: its jobs wait until a verdict (a canary) shows it works',
    );
  else if (change?.kind === 'healthy') log.info({ prover }, 'prover profile healthy again: its waiting jobs are dispatched');
  else if (change?.kind === 'canary_rejected')
    log.error({ prover, reason }, 'the canary of the prover profile was rejected: the profile stays unhealthy');
}
