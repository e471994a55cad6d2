import { randomBytes } from 'node:crypto';
import { afterAll, inject } from 'vitest';
import { type Sql, connect } from '../../scheduler/database/connect.js';
import { createSubmitterToken, type Submitter } from '../../scheduler/store/submitters/submitters.js';

const TEMPLATE_DATABASE = 'proofpod_template';

export interface TestDatabase {
  url: string;
  sql: Sql;
}

/**
 * A fresh database cloned from the migrated template, dropped after the file's tests. The pool is
 * ended in afterAll; a test that leaves it busy fails there.
 */
export async function createTestDatabase(options: { template?: string } = {}): Promise<TestDatabase> {
  const adminUrl = inject('postgresAdminUrl');
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = connect(adminUrl, { max: 1 });
  await admin.unsafe(`create database ${name} template ${options.template ?? TEMPLATE_DATABASE}`);
  await admin.end();
  const url = adminUrl.replace(/\/[^/]*$/, `/${name}`);
  const sql = connect(url, { max: 5 });
  afterAll(async () => {
    await sql.end({ timeout: 5 });
    const cleanup = connect(adminUrl, { max: 1 });
    await cleanup.unsafe(`drop database if exists ${name} with (force)`);
    await cleanup.end();
  });
  return { url, sql };
}

export async function createToken(sql: Sql, submitter: Partial<Submitter> & { id: string }): Promise<string> {
  return createSubmitterToken(sql, { trust: 'trusted', lanes: ['*'], roles: [], ...submitter });
}

/**
 * Queues `count` jobs straight in the table, skipping the API (for tests of the queue itself: a
 * deep queue in one statement, or a job for a hand-driven claim). Returns their ids.
 */
export async function queueJobs(
  sql: Sql,
  job: { submitter: string; lane?: string; prover?: string; targets?: string[]; priority?: number; commit?: string },
  count = 1,
): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    insert into jobs (submitter_id, source_url, commit_sha, prover, targets, lane, priority, request_hash, state, state_actor)
    select ${job.submitter}, 'https://example.org/p.git', ${job.commit ?? 'a'.repeat(40)}, ${job.prover ?? 'coq'}, ${job.targets ?? ['A.v']},
           ${job.lane ?? 'verify'}, ${job.priority ?? 0}, '\\x00', 'queued', ${job.submitter}
    from generate_series(1, ${count})
    returning id`;
  return rows.map((r) => r.id);
}
