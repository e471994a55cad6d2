import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import { connect } from '../../scheduler/database/connect.js';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../scheduler/database/embedded.js';
import { migrate } from '../../scheduler/store/migrate.js';

export const TEMPLATE_DATABASE = 'proofpod_template';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A superuser URL of the test Postgres server (its `postgres` database). */
    postgresAdminUrl: string;
  }
}

/**
 * One real Postgres for the whole run: `TEST_DATABASE_URL` when given (CI may start its own),
 * else an embedded one in a temporary directory. A migrated template database is made once; each
 * test file clones it, which takes milliseconds.
 */
export default async function setup(project: TestProject) {
  let embedded: EmbeddedDatabase | undefined;
  let home: string | undefined;
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    home = await mkdtemp(path.join(tmpdir(), 'proofpod-test-pg-'));
    embedded = await startEmbeddedPostgres(home, pino({ level: 'warn' }));
    adminUrl = embedded.url.replace(/\/proofpod$/, '/postgres');
  }
  const admin = connect(adminUrl, { max: 1 });
  await admin.unsafe(`drop database if exists ${TEMPLATE_DATABASE}`);
  await admin.unsafe(`create database ${TEMPLATE_DATABASE}`);
  const template = connect(adminUrl.replace(/\/[^/]*$/, `/${TEMPLATE_DATABASE}`), { max: 1 });
  await migrate(template, pino({ level: 'silent' }));
  await template.end();
  await admin.end();
  project.provide('postgresAdminUrl', adminUrl);
  return async () => {
    await embedded?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  };
}
