import type { Queryable, Sql } from '../../database/connect.js';
import { lockAdminBootstrap } from '../locks.js';
import { hashSecret, mintSecret } from '../../auth/secrets.js';

export interface Submitter {
  id: string;
  trust: 'untrusted' | 'trusted';
  /** Lane names, or '*' for every lane. */
  lanes: string[];
  roles: string[];
  /** Quotas set over the API (null or absent: the config's). */
  maxQueued?: number | null;
  maxRunning?: number | null;
}

/** Creates or updates a submitter and mints it a new API token; only the token's hash is stored. */
export async function createSubmitterToken(sql: Queryable, submitter: Submitter, label = ''): Promise<string> {
  const token = mintSecret('pp');
  await upsertSubmitter(sql, submitter);
  await sql`
    insert into api_tokens (token_hash, submitter_id, label)
    values (${hashSecret(token)}, ${submitter.id}, ${label})`;
  return token;
}

/**
 * Registers a token the operator supplies (from a Secret) for a submitter; idempotent, so every
 * replica can do it at every start. A token revoked before stays revoked.
 */
export async function registerSubmitterToken(sql: Queryable, submitter: Submitter, token: string, label: string): Promise<void> {
  await upsertSubmitter(sql, submitter);
  await sql`
    insert into api_tokens (token_hash, submitter_id, label)
    values (${hashSecret(token)}, ${submitter.id}, ${label})
    on conflict (token_hash) do nothing`;
}

/** A submitter the scheduler itself needs (the canary's), with no token; kept as given. */
export async function ensureSubmitter(sql: Queryable, submitter: Submitter): Promise<void> {
  await upsertSubmitter(sql, submitter);
}

async function upsertSubmitter(sql: Queryable, submitter: Submitter): Promise<void> {
  await sql`
    insert into submitters (id, trust, lanes, roles)
    values (${submitter.id}, ${submitter.trust}, ${submitter.lanes}, ${submitter.roles})
    on conflict (id) do update set trust = excluded.trust, lanes = excluded.lanes, roles = excluded.roles`;
}

/** The submitter a bearer token belongs to, if the token exists and is not revoked. */
export async function authenticateToken(sql: Queryable, token: string): Promise<Submitter | undefined> {
  const [row] = await sql<Submitter[]>`
    select s.id, s.trust, s.lanes, s.roles, s.max_queued, s.max_running
    from api_tokens t join submitters s on s.id = t.submitter_id
    where t.token_hash = ${hashSecret(token)} and t.revoked_at is null`;
  return row;
}

export async function countTokens(sql: Queryable): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from api_tokens`;
  return row?.n ?? 0;
}

/**
 * The first token of all, for `submitter`, when there is none yet: replicas starting together are
 * serialised so that only one mints; `keep` (saving it for the operator) runs before the mint
 * commits, so a token that could not be kept is not left behind. Undefined when a token exists.
 */
export async function mintFirstToken(
  sql: Sql,
  submitter: Submitter,
  label: string,
  keep: (token: string) => Promise<void>,
): Promise<string | undefined> {
  return sql.begin(async (tx) => {
    await lockAdminBootstrap(tx);
    if ((await countTokens(tx)) > 0) return undefined;
    const token = await createSubmitterToken(tx, submitter, label);
    await keep(token);
    return token;
  });
}
