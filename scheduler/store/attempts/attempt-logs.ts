import { createHash } from 'node:crypto';
import type { Queryable } from '../../database/connect.js';

export interface KeptLog {
  content: Buffer;
  truncated: boolean;
  /** `sha256:` of `content`. */
  digest: string;
  keptAt: Date;
}

/** Keeps a container's log of an attempt; the first one kept stays (a second observation of the ended pod changes nothing). */
export async function keepLog(
  sql: Queryable,
  attemptId: string,
  container: string,
  log: { content: Buffer; truncated: boolean },
): Promise<void> {
  const digest = `sha256:${createHash('sha256').update(log.content).digest('hex')}`;
  await sql`
    insert into attempt_logs (attempt_id, container, content, truncated, digest)
    values (${attemptId}, ${container}, ${log.content}, ${log.truncated}, ${digest})
    on conflict (attempt_id, container) do nothing`;
}

export async function keptLog(sql: Queryable, attemptId: string, container: string): Promise<KeptLog | undefined> {
  const [row] = await sql<KeptLog[]>`
    select content, truncated, digest, kept_at from attempt_logs where attempt_id = ${attemptId} and container = ${container}`;
  return row;
}
