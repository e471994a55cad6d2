import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Sql } from '../scheduler/database/connect.js';
import { connect } from '../scheduler/database/connect.js';
import { migrate, readMigrations } from '../scheduler/store/migrate.js';
import { createTestDatabase } from './support/database.js';

/** A stable text dump of the schema: tables and columns, constraints, indexes, triggers. */
async function dumpSchema(sql: Sql): Promise<string> {
  const columns = await sql<{ line: string }[]>`
    select format('%s.%s %s%s%s', table_name, column_name, data_type,
                  case when is_nullable = 'NO' then ' not null' else '' end,
                  coalesce(' default ' || column_default, '') ||
                  coalesce(' generated ' || generation_expression, '')) as line
    from information_schema.columns where table_schema = 'public'
    order by table_name, ordinal_position`;
  const constraints = await sql<{ line: string }[]>`
    select format('%s %s: %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) as line
    from pg_constraint where connamespace = 'public'::regnamespace order by conrelid::regclass::text, conname`;
  const indexes = await sql<{ line: string }[]>`
    select indexdef as line from pg_indexes where schemaname = 'public' order by tablename, indexname`;
  const triggers = await sql<{ line: string }[]>`
    select pg_get_triggerdef(t.oid) as line from pg_trigger t
    join pg_class c on c.oid = t.tgrelid
    where c.relnamespace = 'public'::regnamespace and not t.tgisinternal order by c.relname, t.tgname`;
  return `${[columns, constraints, indexes, triggers].map((rows) => rows.map((r) => r.line).join('\n')).join('\n\n')}\n`;
}

describe('migrations', () => {
  it('produce the committed schema snapshot (a schema change shows up as a diff)', async () => {
    const { sql } = await createTestDatabase();
    await expect(await dumpSchema(sql)).toMatchFileSnapshot('./schema.snapshot.sql');
  });

  it('replicas starting together apply each migration exactly once', async () => {
    const { url } = await createTestDatabase({ template: 'template0' });
    const replicas = Array.from({ length: 4 }, () => connect(url, { max: 2 }));
    try {
      const applied = await Promise.all(replicas.map((sql) => migrate(sql, pino({ level: 'silent' }))));
      const migrations = await readMigrations();
      expect(applied.reduce((a, b) => a + b, 0)).toBe(migrations.length);
      const rows = await replicas[0]!`select version from schema_migrations order by version`;
      expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
      // And starting again applies nothing.
      expect(await migrate(replicas[0]!, pino({ level: 'silent' }))).toBe(0);
    } finally {
      await Promise.all(replicas.map((sql) => sql.end()));
    }
  });
});
