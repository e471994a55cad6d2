import { claimAttempts } from '../store/queries/claim-attempts.js';
import { type ReplicaContext, forEachLimit } from './context.js';
import { launchAttempt } from './launch.js';

/**
 * The claim stage of the dispatch pipeline, run once per cycle:
 *   claim (per lane, up to the batch size and the lane's free capacity) → launch each claim.
 * A lane whose whole batch was claimed asks for another cycle at once, so a deep queue drains at
 * the speed of the substrate, not one batch per interval.
 */
export async function dispatchCycle(ctx: ReplicaContext): Promise<{ claimed: number; more: boolean }> {
  let claimed = 0;
  let more = false;
  for (const lane of ctx.lanes.values()) {
    const batch = await claimAttempts(ctx.sql, {
      lane: lane.name,
      concurrency: lane.concurrency,
      limit: ctx.config.dispatch.batchSize,
      holder: ctx.holder,
      ttlSeconds: ctx.config.claims.ttlSeconds,
      deadlineSeconds: lane.maxDeadlineSeconds,
    });
    claimed += batch.length;
    if (batch.length === ctx.config.dispatch.batchSize) more = true;
    await forEachLimit(batch, 16, (attempt) =>
      launchAttempt(ctx, attempt, { attemptId: attempt.attemptId, epoch: attempt.epoch, holder: ctx.holder }),
    );
  }
  return { claimed, more };
}
