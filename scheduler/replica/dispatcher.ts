import { claimAttempts } from '../store/claims/claim-attempts.js';
import { type ReplicaContext, forEachLimit } from './context.js';
import { launchAttempt } from './launch.js';

/**
 * The claim stage of the dispatch pipeline, run once per cycle:
 *   claim (per lane, up to the batch size and the lane's free capacity) → launch each claim.
 * Lanes are claimed and launched side by side, so a lane whose launches are slow (or a deep,
 * full untrusted lane) never holds back another; within a lane a cycle claims up to a whole batch.
 * A lane whose whole batch was claimed asks for another cycle at once, so a deep queue drains at the
 * speed of the substrate, not one batch per interval.
 */
export async function dispatchCycle(ctx: ReplicaContext): Promise<{ claimed: number; more: boolean }> {
  const { quotas, fairness, dispatch, claims } = ctx.config;
  const maxRunningBySubmitter = Object.fromEntries(Object.entries(quotas.submitters).map(([id, q]) => [id, q.maxRunning]));
  const perLane = await Promise.all(
    [...ctx.lanes.values()].map(async (lane) => {
      const batch = await claimAttempts(ctx.sql, {
        lane: lane.name,
        concurrency: lane.concurrency,
        limit: dispatch.batchSize,
        holder: ctx.holder,
        ttlSeconds: claims.ttlSeconds,
        deadlineSeconds: lane.maxDeadlineSeconds,
        maxRunning: quotas.maxRunning,
        maxRunningBySubmitter,
        usageHalfLifeSeconds: fairness.usageHalfLifeSeconds,
      });
      await forEachLimit(batch, 16, (attempt) =>
        launchAttempt(ctx, attempt, { attemptId: attempt.attemptId, epoch: attempt.epoch, holder: ctx.holder }),
      );
      return batch.length;
    }),
  );
  return { claimed: perLane.reduce((a, b) => a + b, 0), more: perLane.some((n) => n === dispatch.batchSize) };
}
