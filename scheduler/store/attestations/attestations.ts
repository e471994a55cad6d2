import type { Sql, TransactionSql } from '../../database/connect.js';
import type { Envelope } from '../../attestation/dsse.js';

/** Stores a job's signed verdict; the caller's transaction is the one that ends the job. */
export async function insertAttestation(
  tx: TransactionSql,
  row: { jobId: string; attemptId: string; keyid: string; envelope: Envelope; issuedAt: Date },
): Promise<void> {
  await tx`
    insert into attestations (job_id, attempt_id, keyid, envelope, issued_at)
    values (${row.jobId}, ${row.attemptId}, ${row.keyid}, ${tx.json(row.envelope)}, ${row.issuedAt})`;
}

/** A job's signed verdict, or undefined when it has none. */
export async function getAttestation(sql: Sql, jobId: string): Promise<{ envelope: Envelope; keyid: string; issuedAt: Date } | undefined> {
  const [row] = await sql<{ envelope: Envelope; keyid: string; issuedAt: Date }[]>`
    select envelope, keyid, issued_at from attestations where job_id = ${jobId}`;
  return row;
}
