import type { Logger } from 'pino';
import type { Queryable, TransactionSql } from '../database/connect.js';
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
  const [claim] = await tx<{ epoch: number; holder: string }[]>`
    select epoch, holder from claims where attempt_id = ${fence.attemptId} for update`;
  if (claim && claim.epoch === fence.epoch && claim.holder === fence.holder) return;
  throw refused(fence, claim, log);
}

/**
 * The write-side half of a fence kept in one statement: a CTE `fenced` of this shape locks the
 * claim row only where holder and epoch still match, and the statement writes only through it. The
 * row lock orders the write after any takeover as lockFence does (Postgres re-checks the condition
 * against a row a takeover updated meanwhile), in one round trip instead of a transaction of three
 * or more. For the two writes every launch makes (credential, mark running) that halved the
 * scheduler's own CPU for them, 0.9 → 0.4 ms per launch on a 2-core machine. The caller passes the
 * number of rows `fenced` held; 0 becomes the same StaleError as lockFence's.
 */
export async function checkFenced(sql: Queryable, fence: Fence, fencedRows: number, log?: Logger): Promise<void> {
  if (fencedRows > 0) return;
  const [claim] = await sql<{ epoch: number; holder: string }[]>`
    select epoch, holder from claims where attempt_id = ${fence.attemptId}`;
  throw refused(fence, claim, log);
}

function refused(fence: Fence, claim: { epoch: number; holder: string } | undefined, log?: Logger): StaleError {
  const current = claim ? `held by ${claim.holder} at epoch ${claim.epoch}` : 'released';
  log?.warn(
    { attemptId: fence.attemptId, staleEpoch: fence.epoch, holder: fence.holder, current },
    'stale write refused: attempt no longer held at this epoch',
  );
  return new StaleError(fence.attemptId, fence.epoch, `attempt ${fence.attemptId} at epoch ${fence.epoch}: ${current}`);
}
