import type { Logger } from 'pino';
import type { Sql } from '../../database/connect.js';
import { type Fence, lockFence } from '../fence.js';

/**
 * Records, once, what the scheduler itself saw when the substrate reported the attempt finished:
 * the prover's exit code and the image digest. The verdict is later cross-checked against these,
 * never taken from the upload alone.
 */
export async function recordFinishObservation(
  sql: Sql,
  fence: Fence,
  observed: { exitCode: number | null; imageDigest: string | null },
  log?: Logger,
): Promise<void> {
  await sql.begin(async (tx) => {
    await lockFence(tx, fence, log);
    await tx`
      update attempts set observed_at = now(), observed_exit_code = ${observed.exitCode},
                          observed_image_digest = ${observed.imageDigest}
      where id = ${fence.attemptId} and observed_at is null`;
  });
}
