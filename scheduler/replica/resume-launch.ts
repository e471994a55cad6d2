import type { Logger } from 'pino';
import type { Fence } from '../store/fence.js';
import { getLaunchTarget } from '../store/attempts/launch-target.js';
import { markAttemptStarted } from '../store/attempts/start-attempt.js';
import { type ReplicaContext, laneOf, laneProfile } from './context.js';
import { launchAttempt } from './launch.js';

/** A dispatching attempt, as the reaper's expired claims and the watcher's held attempts both know it. */
export interface DispatchingAttempt {
  attemptId: string;
  name: string;
  prover: string;
  lane: string;
}

/**
 * Carries on, under `fence`, a dispatching attempt whose launch nobody is carrying on: a lease
 * taken over from another holder (reap-expired.ts), or one this replica holds and no stage of it
 * carries (carried-launches.ts: a launch that could not record how it went, a claim whose answer
 * was lost). The substrate says which it was: an attempt it has is adopted (marked running, not
 * created again); one it lacks is started now. `gone`: the attempt is no longer there to launch.
 */
export async function resumeLaunch(
  ctx: ReplicaContext,
  attempt: DispatchingAttempt,
  fence: Fence,
  log: Logger,
): Promise<'adopted' | 'launched' | 'gone'> {
  const release = ctx.carried.hold(attempt.attemptId);
  try {
    if (await ctx.substrate.observe(attempt.name)) {
      const lane = laneOf(ctx, attempt.lane);
      await markAttemptStarted(
        ctx.sql,
        fence,
        { profile: laneProfile(ctx, attempt.prover, attempt.lane), allowedAxioms: lane.allowedAxioms },
        log,
      );
      return 'adopted';
    }
    const target = await getLaunchTarget(ctx.sql, attempt.attemptId);
    if (!target) return 'gone';
    await launchAttempt(ctx, target, fence);
    return 'launched';
  } finally {
    release();
  }
}
