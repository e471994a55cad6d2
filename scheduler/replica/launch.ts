import { DuplicateError, StaleError, coerceError } from '../errors.js';
import type { Fence } from '../store/fence.js';
import type { LaunchTarget } from '../store/attempts/launch-target.js';
import { markAttemptStarted } from '../store/attempts/start-attempt.js';
import { mintUploadCredential } from '../store/evidence/upload-credentials.js';
import { type ReplicaContext, laneOf, laneProfile } from './context.js';
import type { AttemptLaunch } from '../substrate/substrate.js';
import { finishAttempt } from './finish-attempt.js';

/**
 * The create stage: mint the attempt's upload credential, create it in the substrate (one of the
 * replica's `dispatch.launchConcurrency` creates at once, launch-pool.ts), mark it running. A
 * DuplicateError from the substrate means an earlier holder created it already: the attempt is
 * adopted, not started twice. A StaleError means another replica holds it now. When Postgres does
 * not take the outcome (the attempt running, or its failed start), the attempt stays dispatching
 * under this replica's lease, and the watcher carries it on once no stage does (carried-launches.ts).
 */
export async function launchAttempt(ctx: ReplicaContext, target: LaunchTarget, fence: Fence): Promise<void> {
  const log = ctx.log.child({ jobId: target.jobId, attempt: target.attemptNo, lane: target.lane });
  const lane = laneOf(ctx, target.lane);
  let inSubstrate = false;
  try {
    // The profile as this lane runs it: what the pod runs, the attempt records and the judge holds the evidence to.
    const profile = laneProfile(ctx, target.prover, target.lane);
    // The credential expires with the attempt's deadline; the reporter keeps a margin before it.
    const uploadCredential = await mintUploadCredential(ctx.sql, fence, target.deadlineAt, log);
    try {
      const launch: AttemptLaunch = {
        name: target.name,
        attemptId: target.attemptId,
        jobId: target.jobId,
        attemptNo: target.attemptNo,
        lane: target.lane,
        prover: target.prover,
        laneConfig: lane,
        profile,
        source: { url: target.sourceUrl, commit: target.commitSha, subdirectory: target.subdirectory },
        targets: target.targets,
        goals: target.goals,
        deadlineAt: target.deadlineAt,
        uploadCredential,
        uploadUrl: `${ctx.uploadBaseUrl}/v1/attempts/${target.attemptId}/evidence`,
      };
      const created = await ctx.launches.create(async () => {
        // Claimed before the substrate stopped answering: wait for it instead of spending the attempt.
        if (!(await ctx.substrateGate.whenOpen())) return false;
        await ctx.substrate.start(launch).catch((error: unknown) => {
          // No answer at all (not a refusal): hold dispatch until the substrate answers again.
          ctx.substrateGate.noteStartFailure(error);
          throw error;
        });
        return true;
      });
      if (!created) {
        // The replica stops; its leases go back, and whoever takes this one starts it.
        log.info({ name: target.name }, 'not started: the replica stops while the substrate does not answer');
        return;
      }
      ctx.metrics.attemptsStarted.inc({ lane: target.lane, prover: target.prover });
      if (target.attemptNo === 1) {
        ctx.metrics.dispatchLatency.observe({ lane: target.lane }, (Date.now() - target.submittedAt.getTime()) / 1000);
      }
      log.info({ name: target.name, epoch: fence.epoch }, 'attempt started');
    } catch (error) {
      if (!(error instanceof DuplicateError)) throw error;
      log.info({ name: target.name, epoch: fence.epoch }, 'attempt exists in the substrate already; adopting it');
    }
    inSubstrate = true;
    await markAttemptStarted(ctx.sql, fence, { profile, allowedAxioms: lane.allowedAxioms }, log);
  } catch (error) {
    if (error instanceof StaleError) {
      ctx.metrics.staleWrites.inc();
      return;
    }
    if (inSubstrate) {
      // It runs; only the record says otherwise. Failing it now would start a second pod for nothing.
      log.error({ err: error }, `could not record the start: ${coerceError(error).message}; the watcher carries it on`);
      return;
    }
    const reason = `could not start attempt: ${coerceError(error).message}`;
    log.error({ err: error }, reason);
    await finishAttempt(ctx, fence, { kind: 'infrastructure', reason }, target, log).catch((endError: unknown) => {
      if (endError instanceof StaleError) return;
      log.error({ err: endError }, 'could not record the failed start; the watcher carries it on');
    });
  }
}
