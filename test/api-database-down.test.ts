/**
 * The API while Postgres is down (a restart, a failover): a request that needs the database is a
 * 503 with Retry-After — the client may try again, and a submission sent again with its
 * idempotency key is still one job — never a 500, which says the scheduler has a bug. Found by the
 * chaos run's Postgres scenario (docs/reliability.md), which saw 500s during every outage.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { RestartablePostgres } from './support/restartable-postgres.js';
import { createToken } from './support/database.js';
import { call, jobRequest, startInstance, waitFor } from './support/instance.js';
import { connect } from '../scheduler/database/connect.js';

describe('the API while Postgres is down', () => {
  let home: string;
  let database: RestartablePostgres | undefined;
  afterAll(async () => {
    await database?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('answers 503 with Retry-After, and a submission sent again with its key once Postgres is back is one job', async () => {
    // A Postgres of this test's own, on a fixed port so that it comes back where it was.
    home = await mkdtemp(path.join(tmpdir(), 'proofpod-db-down-'));
    database = await RestartablePostgres.start(home, pino({ level: 'silent' }));
    const proofpod = await startInstance(database.url);
    try {
      const sql = connect(database.url, { max: 1 });
      const token = await createToken(sql, { id: 'db-down' }).finally(() => sql.end());
      const request = jobRequest({ idempotencyKey: 'once' });

      await database.stop();
      for (const [method, route, body] of [
        ['POST', '/v1/jobs', request],
        ['GET', '/v1/jobs', undefined],
      ] as const) {
        const down = await call(proofpod.url, method, route, { token, body });
        expect(down.status, `${method} ${route}: ${JSON.stringify(down.body)}`).toBe(503);
        expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(down.body.message).toMatch(/^the database is unavailable/);
      }

      await database.start();
      let created: { status: number; body: { id: string } } | undefined;
      await waitFor(
        'a submission to go through',
        async () => {
          created = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: request });
          return created.status !== 503;
        },
        20_000,
        200,
      );
      expect(created!.status).toBe(201);
      const again = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: request });
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(created!.body.id);
    } finally {
      await proofpod.stop();
    }
  });
});
