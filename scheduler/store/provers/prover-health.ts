import type { Queryable } from '../../database/connect.js';

export interface ProverHealth {
  prover: string;
  /** The image the failures were of. */
  image: string;
  consecutiveFailures: number;
  unhealthySince: Date | null;
  lastFailure: string | null;
  lastFailureAt: Date | null;
  /** When a verdict last reset its failures or made it healthy again. */
  restoredAt: Date | null;
}

/**
 * One more failure of the profile's own image or containers in a row, of `image` (the image the
 * attempt ran; a failure of another image than the counted ones starts a new count); at
 * `threshold` it becomes unhealthy. Returns the health after it, and whether this made it unhealthy.
 */
export async function recordProfileFailure(
  sql: Queryable,
  prover: string,
  image: string,
  reason: string,
  threshold: number,
): Promise<{ health: ProverHealth; becameUnhealthy: boolean }> {
  const [row] = await sql<(ProverHealth & { wasUnhealthy: boolean })[]>`
    with before as (select unhealthy_since is not null and image = ${image} as unhealthy from prover_health where prover = ${prover})
    insert into prover_health as h (prover, image, consecutive_failures, unhealthy_since, last_failure, last_failure_at)
    values (${prover}, ${image}, 1, case when 1 >= ${threshold}::int then now() end, ${reason}, now())
    on conflict (prover) do update set
      consecutive_failures = case when h.image = excluded.image then h.consecutive_failures + 1 else 1 end,
      unhealthy_since = case
        when h.image = excluded.image then coalesce(h.unhealthy_since, case when h.consecutive_failures + 1 >= ${threshold}::int then now() end)
        else excluded.unhealthy_since end,
      image = excluded.image, last_failure = excluded.last_failure, last_failure_at = excluded.last_failure_at
    returning prover, image, consecutive_failures, unhealthy_since, last_failure, last_failure_at, restored_at,
      coalesce((select unhealthy from before), false) as was_unhealthy`;
  const { wasUnhealthy, ...health } = row!;
  return { health, becameUnhealthy: !wasUnhealthy && health.unhealthySince !== null };
}

/** The image an attempt's pod ran for its profile, as dispatched. */
export async function attemptImage(sql: Queryable, attemptId: string): Promise<string | undefined> {
  const [row] = await sql<{ image: string | null }[]>`select profile->>'image' as image from attempts where id = ${attemptId}`;
  return row?.image ?? undefined;
}

/**
 * A verdict of the profile: its checker ran, so it works. Writes only when there is something to
 * reset (failures counted, or unhealthy): every verdict passes here, and a healthy profile's row
 * must not become a lock all ending transactions queue on. Returns whether it was unhealthy.
 */
export async function recordVerdict(sql: Queryable, prover: string): Promise<{ wasUnhealthy: boolean }> {
  const [row] = await sql<{ wasUnhealthy: boolean }[]>`
    with before as (
      select prover, unhealthy_since is not null as unhealthy from prover_health
      where prover = ${prover} and (consecutive_failures > 0 or unhealthy_since is not null)
      for update)
    update prover_health h set consecutive_failures = 0, unhealthy_since = null, restored_at = now()
    from before where h.prover = before.prover
    returning before.unhealthy as was_unhealthy`;
  return { wasUnhealthy: row?.wasUnhealthy ?? false };
}

/** The health of every profile that has a record; a profile without one is healthy. */
export async function proverHealth(sql: Queryable): Promise<ProverHealth[]> {
  return sql<ProverHealth[]>`
    select prover, image, consecutive_failures, unhealthy_since, last_failure, last_failure_at, restored_at
    from prover_health order by prover`;
}

/** Whether a record makes its profile unhealthy: unhealthy, and of the image the profile has now. */
export const holdsBack = (health: ProverHealth | undefined, image: string): boolean =>
  health !== undefined && health.unhealthySince !== null && health.image === image;

/**
 * Unhealthy profiles (`images`: each profile's configured image) due a canary: none of theirs is
 * waiting or in flight, and none was sent in the last `intervalSeconds`.
 */
export async function proversDueCanary(sql: Queryable, images: Record<string, string>, intervalSeconds: number): Promise<string[]> {
  const rows = await sql<{ prover: string }[]>`
    select h.prover from prover_health h
    where h.unhealthy_since is not null and h.image = (${sql.json(images)}::jsonb ->> h.prover)
      and (h.probed_at is null or h.probed_at < now() - make_interval(secs => ${intervalSeconds}))
      and not exists (select 1 from jobs j where j.canary and j.prover = h.prover and j.finished_at is null)`;
  return rows.map((r) => r.prover);
}

/** A canary was sent for the profile now. */
export async function markProbed(sql: Queryable, prover: string): Promise<void> {
  await sql`update prover_health set probed_at = now() where prover = ${prover}`;
}

/**
 * A canary whose attempt failed of its profile is a canary no more: it waits like the profile's
 * other jobs, so that the next try comes after the interval instead of at once by its lane's retries.
 */
export async function stopBeingCanary(sql: Queryable, attemptId: string): Promise<void> {
  await sql`update jobs set canary = false where canary and id = (select job_id from attempts where id = ${attemptId})`;
}

/**
 * For a profile with no canary configured: its oldest queued job becomes the canary, dispatched
 * despite the profile's health (one probe per interval, not a burst). Returns its id, if any.
 */
export async function probeWithOldestJob(sql: Queryable, prover: string): Promise<string | undefined> {
  const [row] = await sql<{ id: string }[]>`
    update jobs set canary = true, updated_at = now()
    where id = (select id from jobs where prover = ${prover} and state = 'queued' and not canary order by seq limit 1 for update skip locked)
    returning id`;
  return row?.id;
}

/** Whether the attempt is a configured canary's (a job of `canarySubmitter`), not a probe job's. */
export async function isConfiguredCanaryAttempt(sql: Queryable, attemptId: string, canarySubmitter: string): Promise<boolean> {
  const [row] = await sql<{ canary: boolean }[]>`
    select j.canary and j.submitter_id = ${canarySubmitter} as canary from attempts a join jobs j on j.id = a.job_id where a.id = ${attemptId}`;
  return row?.canary ?? false;
}
