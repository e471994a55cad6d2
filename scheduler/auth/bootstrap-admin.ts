import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Sql } from '../database/connect.js';
import { ConfigError, coerceError } from '../errors.js';
import { type Submitter, mintFirstToken, registerSubmitterToken } from '../store/submitters/submitters.js';

const admin: Submitter = { id: 'admin', trust: 'trusted', lanes: ['*'], roles: ['admin'] };

/** Registers the operator's admin token from `adminTokenFile` (the chart's Secret). */
export async function registerAdminTokenFile(sql: Sql, file: string): Promise<void> {
  let token: string;
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new ConfigError(`cannot read the admin token file ${file} (adminTokenFile): ${coerceError(error).message}`, { cause: error });
  }
  if (token.length < 32 || /\s/.test(token)) {
    throw new ConfigError(`the admin token in ${file} (adminTokenFile) must be at least 32 characters without whitespace`);
  }
  await registerSubmitterToken(sql, admin, token, 'adminTokenFile');
}

/**
 * On a first start with no token at all, mints an admin token and writes it to
 * `<home>/admin-token` (mode 0600). Every later start finds a token and does nothing, so the
 * token is printed once. Returns the token when one was minted.
 */
export async function bootstrapAdminToken(sql: Sql, home: string): Promise<string | undefined> {
  return mintFirstToken(sql, admin, 'bootstrap', (token) => writeFile(path.join(home, 'admin-token'), `${token}\n`, { mode: 0o600 }));
}

export function adminTokenBanner(token: string, baseUrl: string, home: string): string {
  return [
    '',
    `proofpod: minted an admin token (saved to ${path.join(home, 'admin-token')}):`,
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
