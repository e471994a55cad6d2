import type { Queryable } from '../../database/connect.js';
import { inFlight, open } from '../states.js';

export interface LaneStats {
  lane: string;
  queued: number;
  awaitingApproval: number;
  running: number;
  /** Seconds since the longest-waiting queued job became queued; null when none waits. */
  oldestWaitingSeconds: number | null;
  /** Submission to first attempt, over first attempts created in the last `windowSeconds`. */
  dispatchLatency: { p50Seconds: number; p95Seconds: number; attempts: number } | null;
}

/**
 * What each lane holds now, from Postgres (every replica sees the same): depth, running, the
 * oldest wait, and recent dispatch latency. Each figure is an index lookup per lane, so it stays
 * cheap with a deep queue.
 */
export async function laneStats(sql: Queryable, lanes: readonly string[], windowSeconds = 900): Promise<LaneStats[]> {
  if (lanes.length === 0) return [];
  const rows = await sql<
    {
      lane: string;
      queued: number;
      awaitingApproval: number;
      running: number;
      oldestWaitingSeconds: number | null;
      p50: number | null;
      p95: number | null;
      dispatched: number;
    }[]
  >`
    select l.lane,
      (select count(*)::int from jobs where state = 'queued' and lane = l.lane) as queued,
      (select count(*)::int from jobs where state = 'awaiting_approval' and lane = l.lane) as awaiting_approval,
      (select count(*)::int from attempts where lane = l.lane and state in ${inFlight(sql)}) as running,
      (select extract(epoch from now() - updated_at)::float8 from jobs
        where state = 'queued' and lane = l.lane order by seq limit 1) as oldest_waiting_seconds,
      d.p50, d.p95, d.dispatched
    from unnest(${sql.array([...lanes])}::text[]) as l(lane)
    cross join lateral (
      select percentile_cont(0.5) within group (order by latency) as p50,
             percentile_cont(0.95) within group (order by latency) as p95,
             count(*)::int as dispatched
      from (
        select extract(epoch from a.created_at - j.created_at)::float8 as latency
        from attempts a join jobs j on j.id = a.job_id
        where a.lane = l.lane and a.attempt_no = 1 and a.created_at > now() - make_interval(secs => ${windowSeconds})
      ) recent
    ) d`;
  return rows.map((r) => ({
    lane: r.lane,
    queued: r.queued,
    awaitingApproval: r.awaitingApproval,
    running: r.running,
    oldestWaitingSeconds: r.oldestWaitingSeconds,
    dispatchLatency: r.dispatched > 0 ? { p50Seconds: r.p50 ?? 0, p95Seconds: r.p95 ?? 0, attempts: r.dispatched } : null,
  }));
}

/** Jobs by lane and state, of the states that are not final: the queue as the database holds it. */
export async function openJobCounts(sql: Queryable): Promise<{ lane: string; state: string; n: number }[]> {
  return sql<{ lane: string; state: string; n: number }[]>`
    select lane, state, count(*)::int as n from jobs
    where state in ${open(sql)}
    group by lane, state`;
}
