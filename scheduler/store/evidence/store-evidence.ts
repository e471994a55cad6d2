import type { Sql } from '../../database/connect.js';
import { notifyEvidenceStored } from '../notify.js';

export interface EvidenceUpload {
  credentialHash: Buffer;
  attemptId: string;
  /** What the evidence says it is about; must match the attempt the credential belongs to. */
  claims: { jobId: string; attemptNo: number };
  body: unknown;
  /** SHA-256 of the uploaded bytes. */
  digest: string;
}

export type StoreEvidenceResult =
  | { outcome: 'stored'; jobId: string }
  | { outcome: 'unknown_credential' }
  | { outcome: 'other_attempt' }
  | { outcome: 'revoked' }
  | { outcome: 'used' }
  | { outcome: 'expired' }
  | { outcome: 'mismatch'; detail: string };

/**
 * Accepts one evidence upload for an attempt. The credential row is locked so that two concurrent
 * uploads with one credential serialise and the second finds it used. Uploads are accepted only for
 * attempts still in flight: ending an attempt revokes its credentials in the same transaction.
 */
export async function storeEvidence(sql: Sql, upload: EvidenceUpload): Promise<StoreEvidenceResult> {
  return sql.begin(async (tx): Promise<StoreEvidenceResult> => {
    const [credential] = await tx<
      {
        attemptId: string;
        usedAt: Date | null;
        revokedAt: Date | null;
        expired: boolean;
        jobId: string;
        attemptNo: number;
      }[]
    >`
      select uc.attempt_id, uc.used_at, uc.revoked_at, uc.expires_at < now() as expired, a.job_id, a.attempt_no
      from upload_credentials uc join attempts a on a.id = uc.attempt_id
      where uc.token_hash = ${upload.credentialHash}
      for update of uc`;
    if (!credential) return { outcome: 'unknown_credential' };
    if (credential.attemptId !== upload.attemptId) return { outcome: 'other_attempt' };
    if (credential.usedAt) return { outcome: 'used' };
    if (credential.revokedAt) return { outcome: 'revoked' };
    if (credential.expired) return { outcome: 'expired' };
    if (credential.jobId !== upload.claims.jobId || credential.attemptNo !== upload.claims.attemptNo) {
      return {
        outcome: 'mismatch',
        detail: `credential belongs to job ${credential.jobId} attempt ${credential.attemptNo}, evidence names job ${upload.claims.jobId} attempt ${upload.claims.attemptNo}`,
      };
    }
    const inserted = await tx`
      insert into evidence (attempt_id, job_id, body, digest)
      values (${upload.attemptId}, ${credential.jobId}, ${tx.json(upload.body as never)}, ${upload.digest})
      on conflict (attempt_id) do nothing`;
    if (inserted.count === 0) return { outcome: 'used' };
    await tx`
      update upload_credentials
      set used_at = case when token_hash = ${upload.credentialHash} then now() else used_at end,
          revoked_at = case when token_hash = ${upload.credentialHash} then revoked_at else now() end
      where attempt_id = ${upload.attemptId} and used_at is null and revoked_at is null`;
    // Delivered once this commits: the watchers never look before the evidence is there.
    await notifyEvidenceStored(tx, upload.attemptId);
    return { outcome: 'stored', jobId: credential.jobId };
  });
}
