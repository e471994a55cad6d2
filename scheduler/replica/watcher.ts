import type { Logger } from 'pino';
import { EvidenceSchema } from '../../contract/evidence.js';
import { ProverProfileSchema } from '../../contract/profile.js';
import { judge } from '../evidence/judge.js';
import { StaleError, coerceError } from '../errors.js';
import type { JudgedAttempt } from '../attestation/issue-attestation.js';
import type { AttemptEnding } from '../job-states.js';
import type { Fence } from '../store/fence.js';
import { type HeldAttempt, heldAttempts } from '../store/attempts/held-attempts.js';
import { recordFinishObservation } from '../store/attempts/record-observation.js';
import { getAttemptEvidence } from '../store/evidence/get-evidence.js';
import { type ReplicaContext, forEachLimit } from './context.js';
import { finishAttempt } from './finish-attempt.js';
import { keepAttemptLogs } from './keep-logs.js';
import { resumeLaunch } from './resume-launch.js';

/**
 * The watch and judge stages: for every attempt this replica holds, ask the substrate how it is
 * and move it on. Completion needs both the substrate's own report that the attempt finished and
 * an accepted evidence upload; the judge cross-checks the two.
 */
export async function watchCycle(ctx: ReplicaContext): Promise<void> {
  const held = await heldAttempts(ctx.sql, ctx.holder);
  const stranded = new Set(ctx.carried.stranded(held.filter((a) => a.state === 'dispatching').map((a) => a.attemptId)));
  await forEachLimit(held, 16, (attempt) => watchOne(ctx, attempt, stranded.has(attempt.attemptId)));
}

/** A stranded launch (carried-launches.ts): adopted if the substrate has it, started again if not. */
async function resumeStranded(ctx: ReplicaContext, attempt: HeldAttempt, fence: Fence, log: Logger): Promise<void> {
  try {
    const how = await resumeLaunch(ctx, attempt, fence, log);
    log.info({ name: attempt.name, how }, 'stranded launch carried on');
  } catch (error) {
    if (error instanceof StaleError) {
      ctx.metrics.staleWrites.inc();
      return;
    }
    log.error({ err: error }, `carrying on a stranded launch failed: ${coerceError(error).message}`);
  }
}

async function watchOne(ctx: ReplicaContext, attempt: HeldAttempt, stranded: boolean): Promise<void> {
  const log = ctx.log.child({ jobId: attempt.jobId, attempt: attempt.attemptNo, lane: attempt.lane });
  const fence: Fence = { attemptId: attempt.attemptId, epoch: attempt.epoch, holder: ctx.holder };
  if (attempt.state === 'dispatching') {
    // In the hands of this replica's launch stage, unless no stage has carried it for a while.
    if (stranded) await resumeStranded(ctx, attempt, fence, log);
    return;
  }
  const end = (ending: AttemptEnding) => finishAttempt(ctx, fence, ending, attempt, log);
  // A pod that ended by itself: its logs are kept before the attempt ends (and the pod is deleted).
  const endEnded = async (ending: AttemptEnding) => {
    await keepAttemptLogs(ctx, attempt, log);
    return end(ending);
  };
  const pastDeadline = Date.now() > attempt.deadlineAt.getTime();
  const timedOut = (detail?: string): AttemptEnding => ({
    kind: 'error',
    jobState: 'timed_out',
    reason: `deadline ${attempt.deadlineAt.toISOString()} passed${detail ? `: ${detail}` : ''}`,
  });
  try {
    const status = await ctx.substrate.observe(attempt.name);
    if (!status) {
      await end({ kind: 'infrastructure', reason: 'attempt vanished from the substrate' });
      return;
    }
    switch (status.phase) {
      case 'pending':
      case 'running':
        if (pastDeadline) {
          await keepAttemptLogs(ctx, attempt, log);
          await ctx.substrate.stop(attempt.name);
          await end(timedOut());
        }
        return;
      case 'source_refused':
        await endEnded({ kind: 'error', jobState: 'error', reason: `source refused: ${status.reason}` });
        return;
      case 'infrastructure_failure':
        await keepAttemptLogs(ctx, attempt, log);
        await ctx.substrate.stop(attempt.name);
        // Past its deadline an attempt is not retried, whatever killed it: the job timed out.
        await end(
          pastDeadline
            ? timedOut(status.reason)
            : { kind: 'infrastructure', reason: status.reason, ...(status.ofProfile ? { ofProfile: true } : {}) },
        );
        return;
      case 'build_failed':
        await endEnded({ kind: 'error', jobState: 'error', reason: status.reason });
        return;
      case 'finished': {
        const observed = { check: status.check, build: status.build };
        // An ending from here follows the pod's end: its phase durations are observed with it.
        const endFinished = (ending: AttemptEnding, judged?: JudgedAttempt) =>
          finishAttempt(ctx, fence, ending, { ...attempt, timings: status.timings, judged }, log);
        if (!attempt.observedAt) {
          await keepAttemptLogs(ctx, attempt, log);
          await recordFinishObservation(ctx.sql, fence, observed, log);
        }
        // Without evidence the attempt waits; the reaper ends it once the grace window has passed.
        if (!attempt.hasEvidence) return;
        const stored = await getAttemptEvidence(ctx.sql, attempt.attemptId);
        const evidence = EvidenceSchema.safeParse(stored?.body);
        if (!evidence.success) {
          // Accepted under another schema (an upload from before an upgrade): it cannot be judged.
          await endFinished({ kind: 'error', jobState: 'error', reason: 'the stored evidence does not match the current evidence schema' });
          return;
        }
        const profile = ProverProfileSchema.safeParse(attempt.profile);
        if (!profile.success || !attempt.allowedAxioms) {
          await endFinished({
            kind: 'error',
            jobState: 'error',
            reason: 'the attempt has no recorded prover profile to judge its evidence against',
          });
          return;
        }
        const source = { url: attempt.sourceUrl, commit: attempt.commitSha, subdirectory: attempt.subdirectory };
        const dispatched = {
          source,
          targets: attempt.targets,
          profile: profile.data,
          allowedAxioms: attempt.allowedAxioms,
          goals: attempt.goals,
        };
        await endFinished(judge(evidence.data, observed, dispatched), {
          attemptId: attempt.attemptId,
          jobId: attempt.jobId,
          attemptNo: attempt.attemptNo,
          lane: attempt.lane,
          jobUrl: ctx.config.publicUrl ? `${ctx.config.publicUrl.replace(/\/$/, '')}/v1/jobs/${attempt.jobId}` : null,
          evidence: evidence.data,
          evidenceDigest: stored!.digest,
          observed,
          dispatched,
        });
        return;
      }
    }
  } catch (error) {
    if (error instanceof StaleError) {
      ctx.metrics.staleWrites.inc();
      return;
    }
    log.error({ err: error }, `watching attempt failed: ${coerceError(error).message}`);
  }
}
