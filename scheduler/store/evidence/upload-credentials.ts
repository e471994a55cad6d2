import type { Logger } from 'pino';
import type { Sql } from '../../database/connect.js';
import { hashSecret, mintSecret } from '../../auth/secrets.js';
import { type Fence, checkFenced } from '../fence.js';

/**
 * Mints an upload credential for a held attempt; only its hash is stored. An attempt may hold more
 * than one (a takeover that has to start the attempt anew mints its own); the first accepted
 * upload uses one and revokes the rest. One statement, fenced in it (checkFenced), as every launch
 * makes this write.
 */
export async function mintUploadCredential(sql: Sql, fence: Fence, expiresAt: Date, log?: Logger): Promise<string> {
  const credential = mintSecret('ppu');
  const [row] = await sql<{ fenced: number }[]>`
    with fenced as (
      select attempt_id from claims
      where attempt_id = ${fence.attemptId} and epoch = ${fence.epoch} and holder = ${fence.holder}
      for update
    ),
    minted as (
      insert into upload_credentials (token_hash, attempt_id, expires_at)
      select ${hashSecret(credential)}, attempt_id, ${expiresAt} from fenced
      returning attempt_id
    )
    select count(*)::int as fenced from minted`;
  await checkFenced(sql, fence, row?.fenced ?? 0, log);
  return credential;
}

/** Whether an upload credential with this hash was ever minted: the cheap check that lets an upload answer 401 before its body is read. */
export async function isKnownUploadCredential(sql: Sql, credentialHash: Buffer): Promise<boolean> {
  const [row] = await sql`select 1 from upload_credentials where token_hash = ${credentialHash}`;
  return row !== undefined;
}
