import type { Sql } from '../../database/connect.js';

export interface EvidenceRecord {
  attemptNo: number;
  digest: string;
  receivedAt: Date;
  body: unknown;
}

/** Every evidence upload of a job, by attempt. */
export async function getEvidence(sql: Sql, jobId: string): Promise<EvidenceRecord[]> {
  return sql<EvidenceRecord[]>`
    select a.attempt_no, e.digest, e.received_at, e.body
    from evidence e join attempts a on a.id = e.attempt_id
    where e.job_id = ${jobId}
    order by a.attempt_no`;
}

/** The body of an attempt's accepted upload, for the judge; undefined without one. */
export async function getEvidenceBody(sql: Sql, attemptId: string): Promise<unknown> {
  const [row] = await sql<{ body: unknown }[]>`select body from evidence where attempt_id = ${attemptId}`;
  return row?.body;
}
