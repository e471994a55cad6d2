import type { Queryable } from '../../database/connect.js';

/**
 * Takes over a lease held at `seenEpoch`, bumping the epoch so that every later write of the old
 * holder is refused. By default only an expired lease is taken; `evenIfLive` takes it from a live
 * holder, for a decision the reaper makes on its behalf (an attempt silent past the grace window).
 * Returns the new epoch, or undefined when someone else moved first (the holder renewed, or
 * another replica took it over): then there is nothing to do.
 */
export async function takeOverClaim(
  sql: Queryable,
  claim: { attemptId: string; seenEpoch: number; holder: string; ttlSeconds: number; evenIfLive?: boolean },
): Promise<number | undefined> {
  const [row] = await sql<{ epoch: number }[]>`
    update claims set holder = ${claim.holder}, epoch = epoch + 1, claimed_at = now(),
                      expires_at = now() + make_interval(secs => ${claim.ttlSeconds})
    where attempt_id = ${claim.attemptId} and epoch = ${claim.seenEpoch}
      ${claim.evenIfLive ? sql`` : sql`and expires_at < now()`}
    returning epoch`;
  return row?.epoch;
}
