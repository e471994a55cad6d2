import type { Logger } from 'pino';
import type { Sql } from '../../database/connect.js';
import type { ProverProfile } from '../../../contract/profile.js';
import { type Fence, checkFenced } from '../fence.js';

/**
 * The substrate has the attempt (created now, or found already there): it is running, with the
 * prover profile it was dispatched with, which its evidence must repeat. One statement, fenced in it
 * (checkFenced), as every launch makes this write: the claim row, then the attempt, then its job,
 * the order every fenced write locks them in.
 */
export async function markAttemptStarted(
  sql: Sql,
  fence: Fence,
  dispatched: { profile: ProverProfile; allowedAxioms: readonly string[] },
  log?: Logger,
): Promise<void> {
  const [row] = await sql<{ fenced: number }[]>`
    with fenced as (
      select attempt_id from claims
      where attempt_id = ${fence.attemptId} and epoch = ${fence.epoch} and holder = ${fence.holder}
      for update
    ),
    started as (
      update attempts set state = 'running', state_reason = 'started', state_actor = ${fence.holder},
                          started_at = coalesce(started_at, now()), profile = ${sql.json(dispatched.profile as never)},
                          allowed_axioms = ${dispatched.allowedAxioms as string[]}
      from fenced
      where attempts.id = fenced.attempt_id and attempts.state = 'dispatching'
      returning attempts.job_id
    ),
    -- Runs whether or not the select reads it, as every data-modifying WITH does.
    job as (
      update jobs set state = 'running', state_reason = 'attempt started', state_actor = ${fence.holder},
                      updated_at = now()
      from started
      where jobs.id = started.job_id and jobs.state = 'dispatching'
      returning jobs.id
    )
    select count(*)::int as fenced from fenced`;
  await checkFenced(sql, fence, row?.fenced ?? 0, log);
}
