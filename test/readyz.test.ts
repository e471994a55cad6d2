import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { RestartablePostgres } from './support/restartable-postgres.js';
import { call, startInstance, waitFor } from './support/instance.js';

describe('/readyz follows Postgres', () => {
  let home: string;
  let database: RestartablePostgres | undefined;
  afterAll(async () => {
    await database?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('fails while Postgres is down and recovers without a restart when it returns', async () => {
    // A Postgres of this test's own, on a fixed port so that it comes back where it was.
    home = await mkdtemp(path.join(tmpdir(), 'proofpod-readyz-'));
    database = await RestartablePostgres.start(home, pino({ level: 'silent' }));
    const proofpod = await startInstance(database.url);
    try {
      expect((await call(proofpod.url, 'GET', '/readyz')).status).toBe(200);

      await database.stop();
      const down = await call<{ status: string; checks: { postgres: string } }>(proofpod.url, 'GET', '/readyz');
      expect(down.status).toBe(503);
      expect(down.body.checks.postgres).toMatch(/^unreachable/);
      // Liveness is not readiness: the process itself is fine.
      expect((await call(proofpod.url, 'GET', '/livez')).status).toBe(200);

      await database.start();
      await waitFor('/readyz to recover', async () => (await call(proofpod.url, 'GET', '/readyz')).status === 200, 20_000, 200);
    } finally {
      await proofpod.stop();
    }
  });
});
