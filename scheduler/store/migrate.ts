import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Sql } from '../database/connect.js';
import { lockMigrations } from './locks.js';

export const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function readMigrations(dir = migrationsDir): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 3)),
      name: file,
      sql: await readFile(new URL(file, `file://${dir}`), 'utf8'),
    })),
  );
}

/**
 * Applies pending migrations, each in its own transaction. Every transaction first takes the same
 * transaction-scoped advisory lock and re-reads what is applied, so replicas that start together
 * queue up behind one another and each migration runs exactly once.
 */
export async function migrate(sql: Sql, log: Logger, migrations?: Migration[]): Promise<number> {
  const all = migrations ?? (await readMigrations());
  await sql`
    create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`.catch(async (error: unknown) => {
    // Two replicas racing on `create table if not exists` can collide on the catalog; the loser
    // simply finds the table there.
    const [exists] = await sql`select to_regclass('schema_migrations') is not null as ok`;
    if (!exists?.ok) throw error;
  });
  let applied = 0;
  for (const migration of all) {
    const ran = await sql.begin(async (tx) => {
      await lockMigrations(tx);
      const [done] = await tx`select 1 from schema_migrations where version = ${migration.version}`;
      if (done) return false;
      await tx.unsafe(migration.sql);
      await tx`insert into schema_migrations (version, name) values (${migration.version}, ${migration.name})`;
      return true;
    });
    if (ran) {
      applied += 1;
      log.info({ migration: migration.name }, 'applied migration');
    }
  }
  return applied;
}

/** True when every migration shipped with this build is applied (used by /readyz). */
export async function migrationsCurrent(sql: Sql, latestVersion: number): Promise<boolean> {
  const [row] = await sql`select coalesce(max(version), 0) as version from schema_migrations`;
  return Number(row?.version ?? 0) >= latestVersion;
}
