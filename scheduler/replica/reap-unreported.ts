import { findUnreportedAttempts } from '../store/attempts/reaper-scans.js';
import { takeOverClaim } from '../store/claims/take-over-claim.js';
import type { ReplicaContext } from './context.js';
import { finishAttempt } from './finish-attempt.js';

/** Attempts the substrate reported finished longer than the grace window ago with no evidence: `error`, never `verified`. */
export async function failUnreported(ctx: ReplicaContext, limit: number): Promise<void> {
  const grace = ctx.config.reaper.evidenceGraceSeconds;
  const unreported = await findUnreportedAttempts(ctx.sql, grace, limit);
  for (const attempt of unreported) {
    const log = ctx.log.child({ component: 'reaper', jobId: attempt.jobId, attempt: attempt.attemptNo, lane: attempt.lane });
    const epoch = await takeOverClaim(ctx.sql, {
      attemptId: attempt.attemptId,
      seenEpoch: attempt.epoch,
      holder: ctx.holder,
      ttlSeconds: ctx.config.claims.ttlSeconds,
      evenIfLive: true,
    });
    if (epoch === undefined) continue;
    const reason = `no evidence: the attempt finished at ${attempt.observedAt.toISOString()} and nothing was uploaded within ${grace}s`;
    await finishAttempt(
      ctx,
      { attemptId: attempt.attemptId, epoch, holder: ctx.holder },
      { kind: 'error', jobState: 'error', reason },
      attempt,
      log,
    );
  }
}
