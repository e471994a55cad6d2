import { StaleError, coerceError } from './errors.js';
import { type ReplicaContext, forEachLimit, laneOf, profileOf } from './dispatch/context.js';
import { launchAttempt } from './dispatch/launch.js';
import type { Fence } from './store/fence.js';
import { endAttempt } from './store/queries/end-attempt.js';
import { getLaunchTarget } from './store/queries/launch-target.js';
import { findUnreportedAttempts, liveAttemptNames } from './store/queries/reaper-scans.js';
import { markAttemptStarted } from './store/queries/start-attempt.js';
import { type ExpiredClaim, findExpiredClaims, takeOverClaim } from './store/queries/take-over-claim.js';

// Shared by every replica: only the one holding it sweeps.
export const REAPER_LOCK = 0x72656170; // "reap"
const SWEEP_LIMIT = 500;

/**
 * One reaper sweep, run by whichever replica holds the reaper advisory lock:
 *  1. expired leases: take over, then adopt what the substrate still has, start what it never got,
 *     and retry (or fail) what vanished;
 *  2. attempts that finished without evidence within the grace window: error;
 *  3. substrate objects of ours with no attempt in flight: delete.
 * Returns false when another replica holds the lock.
 */
export async function reaperSweep(ctx: ReplicaContext): Promise<boolean> {
  const log = ctx.log.child({ component: 'reaper' });
  return ctx.sql.begin(async (tx) => {
    const [lock] = await tx<{ locked: boolean }[]>`select pg_try_advisory_xact_lock(${REAPER_LOCK}) as locked`;
    if (!lock?.locked) return false;
    const expired = await findExpiredClaims(ctx.sql, SWEEP_LIMIT);
    await forEachLimit(expired, 8, (claim) => recoverExpired(ctx, claim));
    await failUnreported(ctx);
    await deleteOrphans(ctx, log);
    return true;
  });
}

async function recoverExpired(ctx: ReplicaContext, claim: ExpiredClaim): Promise<void> {
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
    const status = await ctx.substrate.observe(claim.name);
    if (status) {
      ctx.metrics.takeovers.inc({ action: 'adopted' });
      if (claim.attemptState === 'dispatching') await markAttemptStarted(ctx.sql, fence, { profile: profileOf(ctx, claim.prover), allowedAxioms: laneOf(ctx, claim.lane).allowedAxioms }, log);
      return;
    }
    if (claim.attemptState === 'dispatching') {
      // The old holder claimed it but never got it into the substrate: start it under our lease.
      const target = await getLaunchTarget(ctx.sql, claim.attemptId);
      if (!target) return;
      ctx.metrics.takeovers.inc({ action: 'launched' });
      await launchAttempt(ctx, target, fence);
      return;
    }
    ctx.metrics.takeovers.inc({ action: 'retried' });
    await endAttempt(
      ctx.sql,
      fence,
      { kind: 'infrastructure', reason: `lease of ${claim.holder} expired and the attempt is gone from the substrate` },
      laneOf(ctx, claim.lane).retryLimit,
      log,
    );
  } catch (error) {
    if (error instanceof StaleError) ctx.metrics.staleWrites.inc();
    else log.error({ err: error }, `recovering an expired lease failed: ${coerceError(error).message}`);
  }
}

async function failUnreported(ctx: ReplicaContext): Promise<void> {
  const grace = ctx.config.reaper.evidenceGraceSeconds;
  const unreported = await findUnreportedAttempts(ctx.sql, grace, SWEEP_LIMIT);
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
    try {
      await endAttempt(ctx.sql, { attemptId: attempt.attemptId, epoch, holder: ctx.holder }, { kind: 'error', jobState: 'error', reason }, 0, log);
      log.warn({ reason }, 'attempt ended without evidence');
    } catch (error) {
      if (error instanceof StaleError) ctx.metrics.staleWrites.inc();
      else throw error;
    }
  }
}

async function deleteOrphans(ctx: ReplicaContext, log: ReplicaContext['log']): Promise<void> {
  // List first, then ask the database: an attempt is recorded before it is created, so anything
  // listed whose attempt is not in flight by the time we ask really is an orphan.
  const present = await ctx.substrate.list();
  if (present.length === 0) return;
  const live = await liveAttemptNames(ctx.sql, present.map((o) => o.name));
  for (const object of present) {
    if (live.has(object.name)) continue;
    await ctx.substrate.stop(object.name);
    log.info({ name: object.name, phase: object.status.phase }, 'deleted substrate object with no attempt in flight');
  }
}
