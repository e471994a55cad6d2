import type { Logger } from 'pino';
import type { Sql } from '../../database/connect.js';
import type { Observation } from '../../evidence/judge.js';
import { type Fence, lockFence } from '../fence.js';

/**
 * Records, once, what the scheduler itself saw when the substrate reported the attempt finished:
 * the exit code and image digest of the check container and, when there was one, of the build
 * container. The verdict is later cross-checked against these, never taken from the upload alone.
 */
export async function recordFinishObservation(sql: Sql, fence: Fence, observed: Observation, log?: Logger): Promise<void> {
  await sql.begin(async (tx) => {
    await lockFence(tx, fence, log);
    await tx`
      update attempts set observed_at = now(), observed_exit_code = ${observed.check.exitCode},
                          observed_image_digest = ${observed.check.imageDigest},
                          observed_build_exit_code = ${observed.build?.exitCode ?? null},
                          observed_build_image_digest = ${observed.build?.imageDigest ?? null}
      where id = ${fence.attemptId} and observed_at is null`;
  });
}
