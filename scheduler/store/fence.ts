import type { Logger } from 'pino';
import type { TransactionSql } from '../database/connect.js';
import { StaleError } from '../errors.js';

/** What a replica holds: the attempt, the epoch it claimed it at, and who it is. */
export interface Fence {
  attemptId: string;
  epoch: number;
  holder: string;
}

/**
 * Locks the claim row of a fenced write, inside the caller's transaction. The row lock orders this
 * write after any takeover (which updates the same row), and the epoch and holder comparison then
 * refuses a write from anyone who is no longer the current holder. Throws StaleError, having
 * changed nothing, when the fence does not hold.
 */
export async function lockFence(tx: TransactionSql, fence: Fence, log?: Logger): Promise<void> {
  const [claim] = await tx`
    select epoch, holder from claims where attempt_id = ${fence.attemptId} for update`;
  if (claim && claim.epoch === fence.epoch && claim.holder === fence.holder) return;
  const current = claim ? `held by ${claim.holder} at epoch ${claim.epoch}` : 'released';
  log?.warn(
    { attemptId: fence.attemptId, staleEpoch: fence.epoch, holder: fence.holder, current },
    'stale write refused: attempt no longer held at this epoch',
  );
  throw new StaleError(fence.attemptId, fence.epoch, `attempt ${fence.attemptId} at epoch ${fence.epoch}: ${current}`);
}
