import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance, waitFor } from './support/instance.js';

describe('restart with the embedded Postgres', () => {
  let home: string;
  afterAll(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('keeps queued and finished jobs, evidence and tokens; the admin token is minted once', async () => {
    home = await mkdtemp(path.join(tmpdir(), 'proofpod-restart-'));

    // First start: embedded Postgres initialised, admin token minted and saved; one job runs to a verdict.
    const cluster = new FakeCluster({ runMs: 20 });
    const first = await startInstance(undefined, { home, ...fastLoops }, { substrate: cluster });
    const token = first.adminToken!;
    expect(token).toMatch(/^pp_/);
    expect((await readFile(path.join(home, 'admin-token'), 'utf8')).trim()).toBe(token);
    expect((await stat(path.join(home, 'admin-token'))).mode & 0o777).toBe(0o600);
    const done = await call(first.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
    await waitFor('the job to be verified', async () => {
      const r = await call(first.url, 'GET', `/v1/jobs/${done.body.id}`, { token });
      return r.body.state === 'verified';
    });
    await first.stop();
    cluster.shutdown();

    // Second start, API only: two jobs stay queued.
    const second = await startInstance(undefined, { home });
    expect(second.adminToken).toBeUndefined();
    const queued = await Promise.all([1, 2].map(() => call(second.url, 'POST', '/v1/jobs', { token, body: jobRequest() })));
    await second.stop();

    // Third start: everything is still there.
    const third = await startInstance(undefined, { home });
    try {
      expect(third.adminToken).toBeUndefined();
      const finished = await call(third.url, 'GET', `/v1/jobs/${done.body.id}`, { token });
      expect(finished.body).toMatchObject({ state: 'verified', attempts: [expect.objectContaining({ state: 'succeeded' })] });
      const evidence = await call(third.url, 'GET', `/v1/jobs/${done.body.id}/evidence`, { token });
      expect(evidence.body.evidence).toHaveLength(1);
      for (const job of queued) {
        expect((await call(third.url, 'GET', `/v1/jobs/${job.body.id}`, { token })).body.state).toBe('queued');
      }
      const all = await call(third.url, 'GET', '/v1/jobs', { token });
      expect(all.body.jobs).toHaveLength(3);
    } finally {
      await third.stop();
    }
  });
});
