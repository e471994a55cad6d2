import type { Queryable } from '../../database/connect.js';

/** A lease past its expiry, with what the reaper needs to recover its attempt. */
export interface ExpiredClaim {
  attemptId: string;
  jobId: string;
  attemptNo: number;
  name: string;
  lane: string;
  prover: string;
  attemptState: 'dispatching' | 'running';
  holder: string;
  epoch: number;
  expiresAt: Date;
}

/** Leases past their expiry, oldest first: what the reaper takes over. */
export async function findExpiredClaims(sql: Queryable, limit: number): Promise<ExpiredClaim[]> {
  return sql<ExpiredClaim[]>`
    select c.attempt_id, a.job_id, a.attempt_no, a.name, a.lane, j.prover, a.state as attempt_state,
           c.holder, c.epoch, c.expires_at
    from claims c join attempts a on a.id = c.attempt_id join jobs j on j.id = a.job_id
    where c.expires_at < now()
    order by c.expires_at
    limit ${limit}`;
}
