import type { Sql, TransactionSql } from '../database/connect.js';

/**
 * The NOTIFY channels, named once: dispatchers listen on `jobs` (a job became queued: submitted,
 * approved, retried or promoted; or an attempt ended, freeing capacity in its lane), watchers on
 * `evidence` (an attempt's evidence was stored), API requests waiting on a job on `jobChanged`
 * (sent by a trigger on `events` for every state change, with the job's id: migration 004).
 * Sent inside a transaction, a notification is delivered when it commits, and not at all if it
 * rolls back.
 */
const channels = { jobs: 'proofpod_jobs', evidence: 'proofpod_evidence', jobChanged: 'proofpod_job_changed' } as const;

/** Wakes every dispatcher: a job is queued, or capacity was freed (in `lane`, when known). */
export async function wakeDispatchers(sql: Sql | TransactionSql, lane = ''): Promise<void> {
  await sql`select pg_notify(${channels.jobs}, ${lane})`;
}

/** Wakes every watcher: evidence of `attemptId` was stored. */
export async function notifyEvidenceStored(sql: Sql | TransactionSql, attemptId: string): Promise<void> {
  await sql`select pg_notify(${channels.evidence}, ${attemptId})`;
}

/** Calls `onJobs` and `onEvidence` on their notifications until the returned function is called. */
export async function listenForWork(sql: Sql, onJobs: () => void, onEvidence: () => void): Promise<() => Promise<void>> {
  const jobs = await sql.listen(channels.jobs, onJobs);
  const evidence = await sql.listen(channels.evidence, onEvidence);
  return async () => {
    await jobs.unlisten();
    await evidence.unlisten();
  };
}

/** Calls `onChanged` with the job's id whenever a job or one of its attempts changes state, until the returned function is called. */
export async function listenForJobChanges(sql: Sql, onChanged: (jobId: string) => void): Promise<() => Promise<void>> {
  const listening = await sql.listen(channels.jobChanged, onChanged);
  return () => listening.unlisten();
}
