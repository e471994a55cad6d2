import type { TransactionSql } from '../database/connect.js';
import type { JobState } from '../job-states.js';
import { insertAttestation } from '../store/attestations/attestations.js';
import { signEnvelope } from './dsse.js';
import type { SigningKey } from './signing-key.js';
import { PAYLOAD_TYPE, type VerdictFacts, verdictStatement } from './verdict-statement.js';

/** What the judge had when it decided: the facts of a verdict but the verdict itself and when it was issued, and the attempt. */
export type JudgedAttempt = Omit<VerdictFacts, 'verdict' | 'reason' | 'issuedAt'> & { attemptId: string };

/**
 * Signs and stores the attestation of a job that `state` leaves verified or rejected, in the
 * transaction that ends it: a final verdict commits with its signed statement or not at all. Any
 * other state (a promotion, a retry, an error) is signed by nothing. Returns whether it signed.
 */
export async function issueAttestation(
  tx: TransactionSql,
  key: SigningKey,
  judged: JudgedAttempt,
  state: JobState,
  reason: string,
): Promise<boolean> {
  if (state !== 'verified' && state !== 'rejected') return false;
  const { attemptId, ...facts } = judged;
  const issuedAt = new Date();
  const statement = verdictStatement({ ...facts, verdict: state, reason, issuedAt });
  const envelope = signEnvelope(PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), key.privateKey, key.keyid);
  await insertAttestation(tx, { jobId: facts.jobId, attemptId, keyid: key.keyid, envelope, issuedAt });
  return true;
}
