import type { Sql } from '../database/connect.js';

/**
 * Creates database `name` unless it exists: the embedded Postgres's first start, on a connection
 * to its `postgres` database. CREATE DATABASE takes no parameters and runs outside a transaction;
 * the name goes in as a quoted identifier. Two starts racing on one data directory cannot happen:
 * Postgres holds its data directory for one server.
 */
export async function createDatabaseIfMissing(sql: Sql, name: string): Promise<void> {
  const found = await sql`
    select 1 from pg_database
    where datname = ${name}`;
  if (found.length === 0) await sql`create database ${sql(name)}`;
}
