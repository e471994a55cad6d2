import type { Sql } from '../../database/connect.js';
import type { LaunchTarget } from './launch-target.js';

export interface ClaimRequest {
  lane: string;
  /** The lane's cap on attempts in flight. */
  concurrency: number;
  /** At most this many claims in this call. */
  limit: number;
  holder: string;
  ttlSeconds: number;
  deadlineSeconds: number;
}

/** A freshly claimed attempt, with what the launch stage needs to start it. */
export type ClaimedAttempt = LaunchTarget & { epoch: number };

// Advisory lock class for per-lane dispatch decisions; the second key is hashtext(lane).
const LANE_LOCK_CLASS = 0x6c616e65; // "lane"

/**
 * Claims up to `limit` queued jobs of one lane, highest priority then oldest first, and creates for
 * each a new attempt and its lease at epoch 1, all in one transaction.
 *
 * The per-lane advisory lock serialises dispatch decisions of one lane across replicas so that the
 * count of attempts in flight, and so the concurrency cap, is exact. `for update skip locked` still
 * matters inside it: a job row locked by a cancel or an approval is passed over instead of waited on.
 */
export async function claimAttempts(sql: Sql, request: ClaimRequest): Promise<ClaimedAttempt[]> {
  const { lane, concurrency, limit, holder, ttlSeconds, deadlineSeconds } = request;
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${LANE_LOCK_CLASS}, hashtext(${lane}))`;
    return tx<ClaimedAttempt[]>`
      with in_flight as (
        select count(*)::int as n from attempts where lane = ${lane} and state in ('dispatching', 'running')
      ),
      picked as (
        select id from jobs
        where state = 'queued' and lane = ${lane}
        order by priority desc, seq
        limit greatest(0, least(${limit}::int, ${concurrency}::int - (select n from in_flight)))
        for update skip locked
      ),
      taken as (
        update jobs set state = 'dispatching', attempts_made = jobs.attempts_made + 1,
                        state_reason = 'claimed for attempt ' || (jobs.attempts_made + 1),
                        state_actor = ${holder}, updated_at = now()
        from picked where jobs.id = picked.id
        returning jobs.*
      ),
      made as (
        insert into attempts (job_id, attempt_no, lane, state, state_reason, state_actor, deadline_at)
        select id, attempts_made, lane, 'dispatching', 'claimed', ${holder},
               now() + make_interval(secs => ${deadlineSeconds})
        from taken
        returning id, job_id, attempt_no, name, lane, deadline_at
      ),
      leased as (
        insert into claims (attempt_id, holder, epoch, expires_at)
        select id, ${holder}, 1, now() + make_interval(secs => ${ttlSeconds}) from made
        returning attempt_id, epoch
      )
      select made.id as attempt_id, made.job_id, made.attempt_no, made.name, made.lane, leased.epoch,
             made.deadline_at, taken.prover, taken.source_url, taken.commit_sha, taken.subdirectory,
             taken.targets, taken.created_at as submitted_at
      from made
      join leased on leased.attempt_id = made.id
      join taken on taken.id = made.job_id
      order by taken.priority desc, taken.seq`;
  });
}
