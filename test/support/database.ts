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
