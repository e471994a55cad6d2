import type { Logger } from 'pino';
import type { Sql } from '../../database/connect.js';
import type { ProverProfile } from '../../../contract/profile.js';
import { type Fence, lockFence } from '../fence.js';

/**
 * The substrate has the attempt (created now, or found already there): it is running, with the
 * prover profile it was dispatched with, which its evidence must repeat.
 */
export async function markAttemptStarted(
  sql: Sql,
  fence: Fence,
  dispatched: { profile: ProverProfile; allowedAxioms: readonly string[] },
  log?: Logger,
): Promise<void> {
  await sql.begin(async (tx) => {
    await lockFence(tx, fence, log);
    const [attempt] = await tx<{ jobId: string }[]>`
      update attempts set state = 'running', state_reason = 'started', state_actor = ${fence.holder},
                          started_at = coalesce(started_at, now()), profile = ${tx.json(dispatched.profile as never)},
                          allowed_axioms = ${dispatched.allowedAxioms as string[]}
      where id = ${fence.attemptId} and state = 'dispatching'
      returning job_id`;
    if (!attempt) return;
    await tx`
      update jobs set state = 'running', state_reason = 'attempt started', state_actor = ${fence.holder},
                      updated_at = now()
      where id = ${attempt.jobId} and state = 'dispatching'`;
  });
}
