import type { Sql, TransactionSql } from '../../database/connect.js';
import type { LaunchTarget } from '../attempts/launch-target.js';
import { lockLane } from '../locks.js';
import { inFlight } from '../states.js';

export interface ClaimRequest {
  lane: string;
  /** The lane's cap on attempts in flight. */
  concurrency: number;
  /** At most this many claims in this call. */
  limit: number;
  holder: string;
  ttlSeconds: number;
  deadlineSeconds: number;
  /** Attempts in flight one submitter may have across lanes (default: no limit), and the exceptions by submitter id. */
  maxRunning?: number;
  maxRunningBySubmitter?: Record<string, number>;
  /** Half-life of a submitter's decayed usage of the lane (default 600 s). */
  usageHalfLifeSeconds?: number;
  /** Each prover's configured image: an unhealthy record of that image holds the prover's jobs back. */
  proverImages?: Record<string, string>;
}

/** A freshly claimed attempt, with what the launch stage needs to start it. */
export type ClaimedAttempt = LaunchTarget & { epoch: number };

/**
 * Claims up to `limit` queued jobs of one lane and creates for each a new attempt and its lease at
 * epoch 1, all in one transaction.
 *
 * Order inside the lane: priority first; then fairness, by each submitter's decayed recent usage of
 * the lane plus the job's rank in that submitter's own queue, so a burst of one submitter interleaves
 * with the others' jobs instead of pushing them back; then submission order. The queue is read
 * submitter by submitter (a loose index scan, then each one's head up to the batch size), so the
 * cost follows the number of submitters and the batch, not the depth of the queue. A submitter at its
 * running quota, and a job whose concurrency group has a job in flight, wait.
 *
 * The per-lane advisory lock serialises dispatch decisions of one lane across replicas so that the
 * count of attempts in flight, and so the concurrency cap, is exact. `for update skip locked` still
 * matters inside it: a job row locked by a cancel or an approval is passed over instead of waited on.
 */
export async function claimAttempts(sql: Sql, request: ClaimRequest): Promise<ClaimedAttempt[]> {
  const {
    lane,
    concurrency,
    limit,
    holder,
    ttlSeconds,
    deadlineSeconds,
    maxRunning = null,
    maxRunningBySubmitter = {},
    usageHalfLifeSeconds = 600,
    proverImages = {},
  } = request;
  // usage(t) = usage(t0) * 2^(-(t - t0) / halfLife)
  const decayPerSecond = Math.LN2 / usageHalfLifeSeconds;
  return sql.begin(async (tx) => {
    await lockLane(tx, lane);
    const picked = await pickJobs(tx, { lane, concurrency, limit, maxRunning, maxRunningBySubmitter, decayPerSecond, proverImages });
    const claimed = await takeJobs(tx, picked, { holder, ttlSeconds, deadlineSeconds });
    await chargeUsage(
      tx,
      lane,
      claimed.map((c) => c.submitterId),
      decayPerSecond,
    );
    return claimed.map(({ submitterId: _, ...attempt }) => attempt);
  });
}

/**
 * Candidate selection, read top to bottom: the room left under the lane's cap, the submitters with
 * queued jobs (a loose index scan), each one's running quota, each one's head of queue (past its
 * quota and its concurrency groups in flight) with its fairness key, the best of them up to the
 * room — locked, skipping rows another transaction holds. Returns their ids.
 */
async function pickJobs(
  tx: TransactionSql,
  p: {
    lane: string;
    concurrency: number;
    limit: number;
    maxRunning: number | null;
    maxRunningBySubmitter: Record<string, number>;
    decayPerSecond: number;
    proverImages: Record<string, string>;
  },
): Promise<string[]> {
  const rows = await tx<{ id: string }[]>`
      with recursive
      in_flight as (
        -- Counted up to the cap only: all that matters is the room left under it.
        select count(*)::int as n from (
          select 1 from attempts where lane = ${p.lane} and state in ${inFlight(tx)} limit ${p.concurrency}::int
        ) live
      ),
      room as (
        select greatest(0, least(${p.limit}::int, ${p.concurrency}::int - (select n from in_flight))) as n
      ),
      submitters as (
        (select submitter_id from jobs
         where state = 'queued' and lane = ${p.lane} and (select n from room) > 0
         order by submitter_id limit 1)
        union all
        select (select j.submitter_id from jobs j
                where j.state = 'queued' and j.lane = ${p.lane} and j.submitter_id > s.submitter_id
                order by j.submitter_id limit 1)
        from submitters s where s.submitter_id is not null
      ),
      quota as (
        -- Set over the API, else the config's for this submitter, else the default; null: no
        -- running quota (then nothing is counted).
        select s.submitter_id,
               coalesce(known.max_running, (${tx.json(p.maxRunningBySubmitter)}::jsonb ->> s.submitter_id)::int, ${p.maxRunning}::int)
                 as max_running
        from submitters s left join public.submitters known on known.id = s.submitter_id
        where s.submitter_id is not null
      ),
      candidates as (
        select head.id, head.priority, head.seq,
               coalesce(u.usage * exp(-${p.decayPerSecond}::float8 * extract(epoch from now() - u.updated_at)), 0)
                 + row_number() over (partition by q.submitter_id order by head.priority desc, head.seq) as fair_key
        from quota q
        -- The submitter's jobs in flight in any lane, counted up to its quota only.
        cross join lateral (
          select count(*)::int as n from (
            select 1 from jobs f
            where q.max_running is not null and f.submitter_id = q.submitter_id and f.state in ${inFlight(tx)}
            limit q.max_running
          ) live
        ) r
        left join lane_usage u on u.lane = ${p.lane} and u.submitter_id = q.submitter_id
        cross join lateral (
          select j.id, j.priority, j.seq from jobs j
          where j.state = 'queued' and j.lane = ${p.lane} and j.submitter_id = q.submitter_id
            and (j.concurrency_group is null or not exists (
              select 1 from jobs g
              where g.submitter_id = j.submitter_id and g.concurrency_group = j.concurrency_group
                and g.state in ${inFlight(tx)}))
            -- An unhealthy profile's jobs wait (a canary excepted) instead of burning attempts.
            and (j.canary or not exists (
              select 1 from prover_health h
              where h.prover = j.prover and h.unhealthy_since is not null
                and h.image = (${tx.json(p.proverImages)}::jsonb ->> j.prover)))
          order by j.priority desc, j.seq
          limit greatest(0, least((select n from room), coalesce(q.max_running - r.n, (select n from room))))
        ) head
      ),
      chosen as (
        select id from candidates order by priority desc, fair_key, seq limit (select n from room)
      )
      select j.id from jobs j join chosen on chosen.id = j.id
      where j.state = 'queued'
      for update of j skip locked`;
  return rows.map((r) => r.id);
}

/**
 * The writes for the picked jobs (locked by pickJobs in this transaction): each moves to
 * `dispatching`, gets its next attempt and that attempt's lease at epoch 1. Returns what the launch
 * needs, best first.
 */
async function takeJobs(
  tx: TransactionSql,
  ids: string[],
  p: { holder: string; ttlSeconds: number; deadlineSeconds: number },
): Promise<(ClaimedAttempt & { submitterId: string })[]> {
  if (ids.length === 0) return [];
  return tx<(ClaimedAttempt & { submitterId: string })[]>`
      with taken as (
        update jobs set state = 'dispatching', attempts_made = jobs.attempts_made + 1,
                        state_reason = 'claimed for attempt ' || (jobs.attempts_made + 1),
                        state_actor = ${p.holder}, updated_at = now()
        where jobs.id = any(${ids}::uuid[])
        returning jobs.*
      ),
      made as (
        insert into attempts (job_id, attempt_no, lane, state, state_reason, state_actor, deadline_at)
        select id, attempts_made, lane, 'dispatching', 'claimed', ${p.holder},
               now() + make_interval(secs => ${p.deadlineSeconds})
        from taken
        returning id, job_id, attempt_no, name, lane, deadline_at
      ),
      leased as (
        insert into claims (attempt_id, holder, epoch, expires_at)
        select id, ${p.holder}, 1, now() + make_interval(secs => ${p.ttlSeconds}) from made
        returning attempt_id, epoch
      )
      select made.id as attempt_id, made.job_id, made.attempt_no, made.name, made.lane, leased.epoch,
             made.deadline_at, taken.prover, taken.source_url, taken.commit_sha, taken.subdirectory,
             taken.targets, taken.goals, taken.created_at as submitted_at, taken.submitter_id
      from made
      join leased on leased.attempt_id = made.id
      join taken on taken.id = made.job_id
      order by taken.priority desc, taken.seq`;
}

/** Adds this batch's dispatches to each submitter's usage of the lane, decayed to now first. */
async function chargeUsage(tx: TransactionSql, lane: string, submitters: string[], decayPerSecond: number): Promise<void> {
  if (submitters.length === 0) return;
  const counts = new Map<string, number>();
  for (const id of submitters) counts.set(id, (counts.get(id) ?? 0) + 1);
  const rows = [...counts].map(([submitterId, n]) => ({ submitter_id: submitterId, n }));
  await tx`
    insert into lane_usage (lane, submitter_id, usage, updated_at)
    select ${lane}, c.submitter_id, c.n, now()
    from jsonb_to_recordset(${tx.json(rows)}) as c(submitter_id text, n int)
    on conflict (lane, submitter_id) do update
      set usage = lane_usage.usage * exp(-${decayPerSecond}::float8 * extract(epoch from now() - lane_usage.updated_at)) + excluded.usage,
          updated_at = now()`;
}
