import type { Logger } from 'pino';
import { containers } from '../../contract/pod.js';
import { coerceError } from '../errors.js';
import { keepLog } from '../store/attempts/attempt-logs.js';
import type { ReplicaContext } from './context.js';

/** How much of each container's log is kept: the kubelet keeps 10 MiB; the first MiB says what happened. */
export const KEPT_LOG_BYTES = 1024 * 1024;

/**
 * Keeps the logs of the attempt's containers once its pod has ended, before the pod (and with it
 * the kubelet's copy) is deleted. Best effort: a log that cannot be read is missing from the API,
 * and the attempt ends all the same.
 */
export async function keepAttemptLogs(ctx: ReplicaContext, attempt: { attemptId: string; name: string }, log: Logger): Promise<void> {
  const substrate = ctx.substrate;
  if (!substrate.readLog) return;
  for (const container of Object.values(containers)) {
    try {
      const read = await substrate.readLog(attempt.name, container, KEPT_LOG_BYTES);
      if (read) await keepLog(ctx.sql, attempt.attemptId, container, read);
    } catch (error) {
      log.warn({ container, err: coerceError(error) }, 'could not keep the log of a container');
    }
  }
}
