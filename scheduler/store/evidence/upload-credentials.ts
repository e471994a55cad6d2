import type { Logger } from 'pino';
import type { Sql } from '../../database/connect.js';
import { hashSecret, mintSecret } from '../../auth/secrets.js';
import { type Fence, lockFence } from '../fence.js';

/**
 * Mints an upload credential for a held attempt; only its hash is stored. An attempt may hold more
 * than one (a takeover that has to start the attempt anew mints its own); the first accepted
 * upload uses one and revokes the rest.
 */
export async function mintUploadCredential(sql: Sql, fence: Fence, expiresAt: Date, log?: Logger): Promise<string> {
  const credential = mintSecret('ppu');
  await sql.begin(async (tx) => {
    await lockFence(tx, fence, log);
    await tx`
      insert into upload_credentials (token_hash, attempt_id, expires_at)
      values (${hashSecret(credential)}, ${fence.attemptId}, ${expiresAt})`;
  });
  return credential;
}
