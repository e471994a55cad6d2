import { StaleError, coerceError } from './errors.js';
import { type ReplicaContext, forEachLimit, laneOf, profileOf } from './dispatch/context.js';
import { launchAttempt } from './dispatch/launch.js';
import type { Fence } from './store/fence.js';
import { finishAttempt } from './dispatch/finish-attempt.js';
import { getLaunchTarget } from './store/queries/launch-target.js';
import { findUnreportedAttempts, liveAttemptNames } from './store/queries/reaper-scans.js';
import { markAttemptStarted } from './store/queries/start-attempt.js';
import { withReaperLock } from './store/locks.js';
import { type ExpiredClaim, findExpiredClaims, takeOverClaim } from './store/queries/take-over-claim.js';

const SWEEP_LIMIT = 500;

/**
 * One reaper sweep, run by whichever replica holds the reaper lock:
 *  1. expired leases: take over, then adopt what the substrate still has, start what it never got,
 *     and retry (or fail) what vanished;
 *  2. attempts that finished without evidence within the grace window: error;
 *  3. substrate objects of ours with no attempt in flight: delete.
 * Leadership is a session-level advisory lock on a connection of its own, held for the sweep and
 * released after it: no transaction stays open while the sweep calls the substrate (an idle
 * transaction would be killed by `idle_in_transaction_session_timeout`). Every write of the sweep
 * is fenced, so a second sweeper after a lost connection would change nothing twice.
 * Returns false when another replica holds the lock.
 */
export async function reaperSweep(ctx: ReplicaContext): Promise<boolean> {
  const log = ctx.log.child({ component: 'reaper' });
  return withReaperLock(ctx.sql, async () => {
    const expired = await findExpiredClaims(ctx.sql, SWEEP_LIMIT);
    await forEachLimit(expired, 8, (claim) => recoverExpired(ctx, claim));
    await failUnreported(ctx);
    await deleteOrphans(ctx, log);
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
    await finishAttempt(ctx, fence, { kind: 'infrastructure', reason: `lease of ${claim.holder} expired and the attempt is gone from the substrate` }, claim, log);
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
    await finishAttempt(ctx, { attemptId: attempt.attemptId, epoch, holder: ctx.holder }, { kind: 'error', jobState: 'error', reason }, attempt, log);
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
