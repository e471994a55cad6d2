import { expireApprovals } from '../store/jobs/expire-approvals.js';
import type { ReplicaContext } from './context.js';
import { recordJobEnded } from './finish-attempt.js';

/** Jobs that waited for approval longer than their lane's `awaitingApprovalSeconds`: `cancelled`, with the reason. */
export async function expireAwaitedApprovals(ctx: ReplicaContext, limit: number): Promise<void> {
  for (const lane of ctx.config.lanes) {
    if (lane.awaitingApprovalSeconds === undefined) continue;
    for (const job of await expireApprovals(ctx.sql, lane.name, lane.awaitingApprovalSeconds, limit)) {
      recordJobEnded(ctx.metrics, job, 'cancelled');
      ctx.log.info(
        { component: 'reaper', jobId: job.id, lane: job.lane, promoteTo: job.promoteTo, reason: job.stateReason },
        'approval expired; job cancelled',
      );
    }
  }
}
