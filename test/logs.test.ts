import { chmodSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { main as cli } from '../scheduler/cli/main.js';
import { until } from './support/cluster.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FixtureRepo, scratch } from './support/git-fixtures.js';
import { call, startInstance } from './support/instance.js';

/**
 * Logs (docs/api.md, "Logs") on the real local substrate: a `shell` profile whose check prints a
 * step every 0.4 s. `proofpod logs ID --follow` prints the steps while the attempt runs and ends
 * with the verdict; once the pod has ended, the kept logs are served with their digest.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'reader' });
const other = await createToken(db.sql, { id: 'someone-else' });
const work = scratch('proofpod-logs-');
chmodSync(work.root, 0o755);

let proofpod: Proofpod;
let repo: FixtureRepo;
let commit: string;

beforeAll(async () => {
  repo = new FixtureRepo(work.dir('proofs'));
  commit = repo.commit({ 'steps.sh': 'for i in 1 2 3 4 5 6; do echo "step $i"; sleep 0.4; done\n' });
  proofpod = await startInstance(db.url, {
    substrate: 'local',
    home: work.dir('home'),
    pod: { allowFileSources: true },
    // Uids of this file's own: test files run at once, each with a local substrate of its own.
    local: { sandboxUids: { first: 660_000, count: 1024 } },
    lanes: [{ name: 'verify', trust: 'trusted', concurrency: 1, maxDeadlineSeconds: 120 }],
    provers: [
      {
        name: 'shell',
        image: 'proofpod/prover-shell:latest',
        versionCommand: ['sh', '-c', 'echo sh'],
        check: { input: 'source', command: ['sh', '{target}'] },
      },
    ],
  });
});
afterAll(async () => {
  await proofpod?.stop();
  work.remove();
});

async function runCli(args: string[]): Promise<{ code: number; chunks: { at: number; text: string }[] }> {
  const chunks: { at: number; text: string }[] = [];
  const code = await cli(args, { PROOFPOD_URL: proofpod.url, PROOFPOD_TOKEN: token }, (text) => {
    chunks.push({ at: Date.now(), text });
  });
  return { code, chunks };
}

describe('logs', () => {
  it('proofpod logs --follow streams the running check and ends with the verdict; the kept logs are served after', async () => {
    const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
      token,
      body: { source: { url: repo.url, commit }, prover: 'shell', targets: ['steps.sh'], lane: 'verify' },
    });
    expect(submitted.status).toBe(201);
    const id = submitted.body.id as string;
    await until(
      'the attempt to run',
      async () => (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body.state === 'running',
      30_000,
      50,
    );

    const followed = await runCli(['logs', id, '--follow']);
    expect(followed.code).toBe(0);
    const text = followed.chunks.map((c) => c.text).join('');
    for (let i = 1; i <= 6; i++) expect(text).toContain(`step ${i}`);
    // The verdict after the log, and after it only what the attempt observed.
    expect(text.slice(text.lastIndexOf('step 6'))).toMatch(/\nVERIFIED: [^\n]*\n {2}check exit code 0, image sha256:[0-9a-f]{64}\n$/);
    // Streamed, not read at the end: the first step arrived well before the job finished.
    const job = (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body;
    const firstStep = followed.chunks.find((c) => c.text.includes('step 1'))!.at;
    expect(Date.parse(job.finishedAt) - firstStep).toBeGreaterThan(1_000);

    // After the pod: the kept logs, with their digest.
    const kept = await call<string>(proofpod.url, 'GET', `/v1/jobs/${id}/logs`, { token });
    expect(kept.status).toBe(200);
    expect(kept.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(kept.headers.get('x-proofpod-log-digest')).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(kept.headers.get('x-proofpod-log-truncated')).toBe('false');
    expect(kept.body).toContain('step 6');
    const fetchLog = await call<string>(proofpod.url, 'GET', `/v1/jobs/${id}/logs?attempt=1&container=fetch`, { token });
    expect(fetchLog.body).toMatch(/^fetched [0-9a-f]{40}/);
    const plain = await runCli(['logs', id]);
    expect(plain.chunks.map((c) => c.text).join('')).toBe(kept.body);

    // Refused: another submitter's job, an attempt that does not exist, a container that cannot.
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${id}/logs`, { token: other })).status).toBe(404);
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${id}/logs?attempt=9`, { token })).status).toBe(404);
    const noBuild = await call(proofpod.url, 'GET', `/v1/jobs/${id}/logs?container=build`, { token });
    expect(noBuild.status).toBe(404);
    expect(noBuild.body.message).toBe('no log of container build for attempt 1 (not started, or not kept)');
    const bad = await call(proofpod.url, 'GET', `/v1/jobs/${id}/logs?container=sidecar`, { token });
    expect(bad.status).toBe(400);
    expect(bad.body.fields[0].field).toBe('querystring.container');
  });
});
