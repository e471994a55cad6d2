/**
 * The operator's admin token from a file (the chart mounts it from a Secret): registered at every
 * start of every replica, usable at once, and a bad file stops start-up naming the key.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from './support/database.js';
import { call, jobRequest, startInstance } from './support/instance.js';

const db = await createTestDatabase();
const dir = await mkdtemp(path.join(tmpdir(), 'proofpod-admin-token-'));
const token = `pp_${'a1B2'.repeat(12)}`;
const file = path.join(dir, 'token');
await writeFile(file, `${token}\n`);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('adminTokenFile', () => {
  it('lets the token submit jobs, from two replicas started on the same database', async () => {
    const first = await startInstance(db.url, { adminTokenFile: file });
    const second = await startInstance(db.url, { adminTokenFile: file });
    try {
      expect((await call(first.url, 'POST', '/v1/jobs', { token, body: jobRequest() })).status).toBe(201);
      expect((await call(second.url, 'GET', '/v1/jobs', { token })).status).toBe(200);
      expect((await call(first.url, 'GET', '/v1/jobs', { token: `${token}x` })).status).toBe(401);
      const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from api_tokens where label = 'adminTokenFile'`;
      expect(row!.n).toBe(1);
    } finally {
      await second.stop();
      await first.stop();
    }
  });

  it('refuses a missing file or a short token, naming adminTokenFile', async () => {
    await expect(startInstance(db.url, { adminTokenFile: path.join(dir, 'absent') })).rejects.toThrow(
      /admin token file .*absent \(adminTokenFile\)/,
    );
    const short = path.join(dir, 'short');
    await writeFile(short, 'pp_short\n');
    await expect(startInstance(db.url, { adminTokenFile: short })).rejects.toThrow(/\(adminTokenFile\) must be at least 32 characters/);
  });
});
