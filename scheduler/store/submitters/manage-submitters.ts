import { hashSecret, mintSecret } from '../../auth/secrets.js';
import type { Queryable, Sql, TransactionSql } from '../../database/connect.js';
import type { Submitter } from './submitters.js';

/** A submitter as an admin sees it. */
export interface SubmitterRecord {
  id: string;
  trust: 'untrusted' | 'trusted';
  lanes: string[];
  roles: string[];
  maxQueued: number | null;
  maxRunning: number | null;
  createdAt: Date;
  /** Tokens not revoked. */
  activeTokens: number;
}

/** A token as listed: never its secret, which exists only in the answer that minted it. */
export interface TokenRecord {
  id: string;
  submitterId: string;
  label: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface AuditEntry {
  id: number;
  at: Date;
  actor: string;
  action: string;
  subject: string;
  detail: Record<string, unknown>;
}

export type SubmitterFields = Omit<Submitter, 'id'> & { maxQueued: number | null; maxRunning: number | null };

async function audit(tx: TransactionSql, actor: string, action: string, subject: string, detail: Record<string, unknown>): Promise<void> {
  await tx`insert into audit_log (actor, action, subject, detail) values (${actor}, ${action}, ${subject}, ${tx.json(detail as never)})`;
}

const submitterColumns = (sql: Queryable) => sql`
  s.id, s.trust, s.lanes, s.roles, s.max_queued, s.max_running, s.created_at,
  (select count(*)::int from api_tokens t where t.submitter_id = s.id and t.revoked_at is null) as active_tokens`;

export async function getSubmitter(sql: Queryable, id: string): Promise<SubmitterRecord | undefined> {
  const [row] = await sql<SubmitterRecord[]>`select ${submitterColumns(sql)} from submitters s where s.id = ${id}`;
  return row;
}

export async function listSubmitters(sql: Queryable): Promise<SubmitterRecord[]> {
  return sql<SubmitterRecord[]>`select ${submitterColumns(sql)} from submitters s order by s.id`;
}

/** Creates a submitter; undefined when one with that id exists (nothing is changed then). */
export async function createSubmitter(sql: Sql, actor: string, id: string, fields: SubmitterFields): Promise<SubmitterRecord | undefined> {
  return sql.begin(async (tx) => {
    const inserted = await tx`
      insert into submitters (id, trust, lanes, roles, max_queued, max_running)
      values (${id}, ${fields.trust}, ${fields.lanes}, ${fields.roles}, ${fields.maxQueued}, ${fields.maxRunning})
      on conflict (id) do nothing`;
    if (inserted.count === 0) return undefined;
    await audit(tx, actor, 'submitter.created', id, { ...fields });
    return getSubmitter(tx, id);
  });
}

/** Changes the given fields of a submitter; undefined when there is none. The audit entry has the fields before and after. */
export async function updateSubmitter(
  sql: Sql,
  actor: string,
  id: string,
  change: Partial<SubmitterFields>,
): Promise<SubmitterRecord | undefined> {
  return sql.begin(async (tx) => {
    const [before] = await tx<SubmitterRecord[]>`select ${submitterColumns(tx)} from submitters s where s.id = ${id} for update`;
    if (!before) return undefined;
    const after = { ...before, ...change };
    await tx`
      update submitters set trust = ${after.trust}, lanes = ${after.lanes}, roles = ${after.roles},
        max_queued = ${after.maxQueued}, max_running = ${after.maxRunning}
      where id = ${id}`;
    const changed = Object.keys(change) as (keyof SubmitterFields)[];
    await audit(tx, actor, 'submitter.updated', id, {
      before: Object.fromEntries(changed.map((k) => [k, before[k]])),
      after: Object.fromEntries(changed.map((k) => [k, after[k]])),
    });
    return getSubmitter(tx, id);
  });
}

async function insertToken(tx: TransactionSql, submitterId: string, label: string): Promise<{ token: string; record: TokenRecord }> {
  const token = mintSecret('pp');
  const [record] = await tx<TokenRecord[]>`
    insert into api_tokens (token_hash, submitter_id, label) values (${hashSecret(token)}, ${submitterId}, ${label})
    returning id, submitter_id, label, created_at, revoked_at`;
  return { token, record: record! };
}

/** Mints a token for a submitter; undefined when there is no such submitter. */
export async function mintToken(
  sql: Sql,
  actor: string,
  submitterId: string,
  label: string,
): Promise<{ token: string; record: TokenRecord } | undefined> {
  return sql.begin(async (tx) => {
    const [submitter] = await tx`select 1 from submitters where id = ${submitterId} for update`;
    if (!submitter) return undefined;
    const minted = await insertToken(tx, submitterId, label);
    await audit(tx, actor, 'token.created', minted.record.id, { submitter: submitterId, label });
    return minted;
  });
}

export async function listTokens(sql: Queryable, submitterId: string): Promise<TokenRecord[]> {
  return sql<TokenRecord[]>`
    select id, submitter_id, label, created_at, revoked_at from api_tokens
    where submitter_id = ${submitterId} order by created_at, id`;
}

export type TokenChange<T> =
  | { outcome: 'done'; value: T }
  | { outcome: 'unknown' }
  | { outcome: 'revoked'; at: Date }
  /** It is the last token an admin has: revoking it would leave nobody able to manage tokens. */
  | { outcome: 'last_admin' };

/** Locks the token and tells whether it may be retired: known, not revoked, not the last admin token (`keepsAdmin`). */
async function retirable(tx: TransactionSql, tokenId: string, keepsAdmin: boolean): Promise<TokenChange<TokenRecord>> {
  const [token] = await tx<(TokenRecord & { admin: boolean })[]>`
    select t.id, t.submitter_id, t.label, t.created_at, t.revoked_at, 'admin' = any(s.roles) as admin
    from api_tokens t join submitters s on s.id = t.submitter_id where t.id = ${tokenId} for update of t`;
  if (!token) return { outcome: 'unknown' };
  if (token.revokedAt) return { outcome: 'revoked', at: token.revokedAt };
  if (token.admin && !keepsAdmin) {
    // Serialised by the row locks of every admin token, so two revokes cannot each leave the other.
    const others = await tx`
      select t.id from api_tokens t join submitters s on s.id = t.submitter_id
      where 'admin' = any(s.roles) and t.revoked_at is null and t.id <> ${tokenId} for update of t`;
    if (others.length === 0) return { outcome: 'last_admin' };
  }
  const { admin: _, ...record } = token;
  return { outcome: 'done', value: record };
}

/** Revokes a token: it answers 401 from then on. */
export async function revokeToken(sql: Sql, actor: string, tokenId: string): Promise<TokenChange<TokenRecord>> {
  return sql.begin(async (tx) => {
    const check = await retirable(tx, tokenId, false);
    if (check.outcome !== 'done') return check;
    const [revoked] = await tx<TokenRecord[]>`
      update api_tokens set revoked_at = now() where id = ${tokenId}
      returning id, submitter_id, label, created_at, revoked_at`;
    await audit(tx, actor, 'token.revoked', tokenId, { submitter: check.value.submitterId, label: check.value.label });
    return { outcome: 'done', value: revoked! };
  });
}

/** Replaces a token by a new one with the same label, in one transaction: the old one answers 401 once this commits. */
export async function rotateToken(sql: Sql, actor: string, tokenId: string): Promise<TokenChange<{ token: string; record: TokenRecord }>> {
  return sql.begin(async (tx) => {
    const check = await retirable(tx, tokenId, true);
    if (check.outcome !== 'done') return check;
    await tx`update api_tokens set revoked_at = now() where id = ${tokenId}`;
    const minted = await insertToken(tx, check.value.submitterId, check.value.label);
    await audit(tx, actor, 'token.rotated', tokenId, {
      submitter: check.value.submitterId,
      label: check.value.label,
      newToken: minted.record.id,
    });
    return { outcome: 'done', value: minted };
  });
}

/** The audit log, newest first, `limit` entries before the entry `beforeId` (exclusive) when given. */
export async function listAudit(sql: Queryable, { limit, beforeId }: { limit: number; beforeId?: number }): Promise<AuditEntry[]> {
  return sql<AuditEntry[]>`
    select id::int as id, at, actor, action, subject, detail from audit_log
    where ${beforeId === undefined ? sql`true` : sql`id < ${beforeId}`}
    order by id desc limit ${limit}`;
}
