import { coerceError } from '../errors.js';
import { claimAttempts } from '../store/claims/claim-attempts.js';
import type { ReplicaContext } from './context.js';
import { launchAttempt } from './launch.js';

/**
 * The claim stage of the dispatch pipeline, run once per cycle:
 *   wait for room in the launch pool → hold while the substrate does not answer → claim (per lane, up to its share of the room and the lane's
 *   free capacity) → hand each claim to the pool, which launches it (launch.ts).
 * The cycle returns once its claims are handed over, not when they are launched: launches persist
 * across cycles in `ctx.launches` (launch-pool.ts: `dispatch.launchConcurrency` creates at once),
 * so the next cycle claims while earlier creates are in flight, and one slow create holds up one
 * slot, never a batch. Lanes are claimed side by side, so a lane whose queue is deep never holds
 * back another; a lane whose claim took all it was allowed asks for another cycle at once, so a deep
 * queue drains at the speed of the substrate, not one batch per interval.
 *
 * A graceful stop drains the pool after the loops have stopped (`ctx.launches.drain()`), so that
 * every attempt claimed here is launched, or ended by finishAttempt, before the leases go back.
 */
export async function dispatchCycle(ctx: ReplicaContext): Promise<{ claimed: number; more: boolean }> {
  const { quotas, fairness, dispatch, claims } = ctx.config;
  const pool = ctx.launches;
  // Draining a deep queue, a cycle waits for half the pool to be free (as many launches as creates
  // run at once), so that it claims in chunks instead of a slot at a time (a claim is a transaction
  // under the lane's lock) while the other half keeps every create slot busy; a job that arrives at
  // an idle replica is claimed with whatever room there is.
  await pool.whenRoom(pool.anyBacklogged ? pool.creates : 1);
  // While the substrate does not answer, a claim would only spend an attempt of its job.
  if (!(await ctx.substrateGate.admits())) return { claimed: 0, more: false };
  const maxRunningBySubmitter = Object.fromEntries(Object.entries(quotas.submitters).map(([id, q]) => [id, q.maxRunning]));
  const proverImages = Object.fromEntries(ctx.config.provers.map((p) => [p.name, p.image]));
  const lanes = [...ctx.lanes.values()];
  const shares = pool.share(
    lanes.map((lane) => lane.name),
    dispatch.batchSize,
  );
  const perLane = await Promise.all(
    lanes.map(async (lane) => {
      const limit = shares.get(lane.name) ?? 0;
      if (limit === 0) return { claimed: 0, full: false };
      const batch = await claimAttempts(ctx.sql, {
        lane: lane.name,
        concurrency: lane.concurrency,
        limit,
        holder: ctx.holder,
        ttlSeconds: claims.ttlSeconds,
        deadlineSeconds: lane.maxDeadlineSeconds,
        maxRunning: quotas.maxRunning,
        maxRunningBySubmitter,
        proverImages,
        usageHalfLifeSeconds: fairness.usageHalfLifeSeconds,
      });
      pool.claimed(lane.name, limit, batch.length);
      for (const attempt of batch) {
        // Carried from here, waiting for a slot included: the watcher leaves it alone meanwhile.
        const release = ctx.carried.hold(attempt.attemptId);
        pool.run(
          () => launchAttempt(ctx, attempt, { attemptId: attempt.attemptId, epoch: attempt.epoch, holder: ctx.holder }).finally(release),
          (error) =>
            ctx.log.error({ err: error, jobId: attempt.jobId }, `launch failed outside its own handling: ${coerceError(error).message}`),
        );
      }
      return { claimed: batch.length, full: batch.length === limit };
    }),
  );
  return { claimed: perLane.reduce((sum, lane) => sum + lane.claimed, 0), more: perLane.some((lane) => lane.full) };
}
