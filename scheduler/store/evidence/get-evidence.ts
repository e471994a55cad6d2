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

/** An attempt's accepted upload and the digest of its bytes, for the judge and the signed verdict; undefined without one. */
export async function getAttemptEvidence(sql: Sql, attemptId: string): Promise<{ body: unknown; digest: string } | undefined> {
  const [row] = await sql<{ body: unknown; digest: string }[]>`select body, digest from evidence where attempt_id = ${attemptId}`;
  return row;
}
