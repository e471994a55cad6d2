import { StaleError, coerceError } from '../errors.js';
import type { Fence } from '../store/fence.js';
import type { ExpiredClaim } from '../store/claims/expired-claims.js';
import { takeOverClaim } from '../store/claims/take-over-claim.js';
import type { ReplicaContext } from './context.js';
import { finishAttempt } from './finish-attempt.js';
import { resumeLaunch } from './resume-launch.js';

/**
 * An expired lease: take it over at the epoch it was seen at, then ask the substrate. Adopt what
 * it still has, start what never got into it, and end as an infrastructure failure what was
 * running and is gone (retried while the lane allows).
 */
export async function recoverExpired(ctx: ReplicaContext, claim: ExpiredClaim): Promise<void> {
  const log = ctx.log.child({ component: 'reaper', jobId: claim.jobId, attempt: claim.attemptNo, lane: claim.lane });
  const epoch = await takeOverClaim(ctx.sql, {
    attemptId: claim.attemptId,
    seenEpoch: claim.epoch,
    holder: ctx.holder,
    ttlSeconds: ctx.config.claims.ttlSeconds,
  });
  if (epoch === undefined) return;
  const fence: Fence = { attemptId: claim.attemptId, epoch, holder: ctx.holder };
  log.warn({ previousHolder: claim.holder, previousEpoch: claim.epoch, epoch }, 'lease expired; taken over');
  try {
    if (claim.attemptState === 'dispatching') {
      // The old holder claimed it and may or may not have got it into the substrate.
      const how = await resumeLaunch(ctx, claim, fence, log);
      if (how !== 'gone') ctx.metrics.takeovers.inc({ action: how });
      return;
    }
    if (await ctx.substrate.observe(claim.name)) {
      ctx.metrics.takeovers.inc({ action: 'adopted' });
      return;
    }
    ctx.metrics.takeovers.inc({ action: 'retried' });
    await finishAttempt(
      ctx,
      fence,
      { kind: 'infrastructure', reason: `lease of ${claim.holder} expired and the attempt is gone from the substrate` },
      claim,
      log,
    );
  } catch (error) {
    if (error instanceof StaleError) {
      ctx.metrics.staleWrites.inc();
      return;
    }
    // Held here now: a dispatching one is the watcher's to carry on (carried-launches.ts).
    log.error({ err: error }, `recovering an expired lease failed: ${coerceError(error).message}`);
  }
}
