import { withReaperLock } from '../store/locks.js';
import { findExpiredClaims } from '../store/claims/expired-claims.js';
import { type ReplicaContext, forEachLimit } from './context.js';
import { recoverExpired } from './reap-expired.js';
import { deleteOrphans } from './reap-orphans.js';
import { failUnreported } from './reap-unreported.js';
import { expireAwaitedApprovals } from './reap-approvals.js';
import { submitCanaries } from './reap-canaries.js';

const SWEEP_LIMIT = 500;

/**
 * One reaper sweep, run by whichever replica holds the reaper lock:
 *  1. expired leases: take over, then adopt what the substrate still has, start what it never got,
 *     and retry (or fail) what vanished;
 *  2. attempts that finished without evidence within the grace window: error;
 *  3. jobs that waited in `awaiting_approval` longer than their lane allows: cancelled;
 *  4. unhealthy prover profiles due a canary: submit it;
 *  5. substrate objects of ours with no attempt in flight: delete.
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
    await failUnreported(ctx, SWEEP_LIMIT);
    await expireAwaitedApprovals(ctx, SWEEP_LIMIT);
    await submitCanaries(ctx);
    await deleteOrphans(ctx, log);
  });
}
