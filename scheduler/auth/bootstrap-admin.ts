import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Sql } from '../database/connect.js';
import { countTokens, createSubmitterToken } from '../store/queries/submitters.js';

/**
 * On a first start with no token at all, mints an admin token and writes it to
 * `<home>/admin-token` (mode 0600). Every later start finds a token and does nothing, so the
 * token is printed once. Returns the token when one was minted.
 */
export async function bootstrapAdminToken(sql: Sql, home: string): Promise<string | undefined> {
  return sql.begin(async (tx) => {
    // Serialise replicas starting together so that only one of them mints.
    await tx`select pg_advisory_xact_lock(${0x61646d6e})`; // "admn"
    if ((await countTokens(tx)) > 0) return undefined;
    const token = await createSubmitterToken(tx, { id: 'admin', trust: 'trusted', lanes: ['*'], roles: ['admin'] }, 'bootstrap');
    await writeFile(path.join(home, 'admin-token'), `${token}\n`, { mode: 0o600 });
    return token;
  });
}

export function adminTokenBanner(token: string, baseUrl: string, home: string): string {
  return [
    '',
    'proofpod: minted an admin token (saved to ' + path.join(home, 'admin-token') + '):',
    '',
    `  ${token}`,
    '',
    'Submit a job:',
    '',
    `  curl -sS -X POST ${baseUrl}/v1/jobs \\`,
    `    -H "Authorization: Bearer $(cat ${path.join(home, 'admin-token')})" \\`,
    `    -H 'Content-Type: application/json' \\`,
    `    -d '{"source":{"url":"https://example.org/proofs.git","commit":"0123456789abcdef0123456789abcdef01234567"},"prover":"coq","targets":["Main.v"],"lane":"verify"}'`,
    '',
    `API docs: ${baseUrl}/docs`,
    '',
  ].join('\n');
}
