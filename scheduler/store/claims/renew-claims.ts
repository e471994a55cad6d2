import type { Sql } from '../../database/connect.js';

/**
 * Heartbeat: extends every lease this holder still has, in one statement. A lease taken over by
 * another replica has another holder and is not touched, so a replica that stalled past its TTL
 * cannot win its attempts back by renewing.
 */
export async function renewClaims(sql: Sql, holder: string, ttlSeconds: number): Promise<number> {
  const result = await sql`
    update claims set expires_at = now() + make_interval(secs => ${ttlSeconds})
    where holder = ${holder}`;
  return result.count;
}

/** Graceful stop: every lease of this holder expires now, so another replica adopts its attempts on its next sweep instead of after the TTL. */
export async function releaseClaims(sql: Sql, holder: string): Promise<void> {
  await sql`update claims set expires_at = now() where holder = ${holder}`;
}
