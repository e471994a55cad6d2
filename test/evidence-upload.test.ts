import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { claimAttempts } from '../scheduler/store/claims/claim-attempts.js';
import { markAttemptStarted } from '../scheduler/store/attempts/start-attempt.js';
import { mintUploadCredential } from '../scheduler/store/evidence/upload-credentials.js';
import { createTestDatabase, createToken } from './support/database.js';
import { defaultProfile, evidenceFor } from './support/evidence.js';
import { call, jobRequest, startInstance } from './support/instance.js';

const db = await createTestDatabase();
let proofpod: Proofpod;
let token: string;

beforeAll(async () => {
  // API only: no replica loops, so the test alone decides what happens to the attempts.
  proofpod = await startInstance(db.url);
  token = await createToken(db.sql, { id: 'alice' });
});
afterAll(() => proofpod.stop());

/** A running attempt with a fresh upload credential, as the launch stage leaves it. */
async function runningAttempt(deadline = new Date(Date.now() + 60_000)) {
  const job = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest({ lane: 'replay' }) });
  const [claimed] = await claimAttempts(db.sql, {
    lane: 'replay',
    concurrency: 100,
    limit: 1,
    holder: 'test',
    ttlSeconds: 60,
    deadlineSeconds: 600,
  });
  expect(claimed?.jobId).toBe(job.body.id);
  const fence = { attemptId: claimed!.attemptId, epoch: claimed!.epoch, holder: 'test' };
  const credential = await mintUploadCredential(db.sql, fence, deadline);
  await markAttemptStarted(db.sql, fence, { profile: defaultProfile('coq'), allowedAxioms: [] });
  const evidence = evidenceFor({
    jobId: claimed!.jobId,
    attemptNo: claimed!.attemptNo,
    source: { url: claimed!.sourceUrl, commit: claimed!.commitSha, subdirectory: null },
    prover: 'coq',
    targets: claimed!.targets,
  });
  return { claimed: claimed!, credential, evidence, url: `/v1/attempts/${claimed!.attemptId}/evidence` };
}

async function state(attemptId: string) {
  const [row] = await db.sql`
    select a.state as attempt, j.state as job, (select count(*)::int from evidence e where e.attempt_id = a.id) as evidence
    from attempts a join jobs j on j.id = a.job_id where a.id = ${attemptId}`;
  return row;
}

describe('evidence upload', () => {
  it('accepts one upload with the right credential', async () => {
    const a = await runningAttempt();
    const response = await call(proofpod.url, 'POST', a.url, { token: a.credential, body: a.evidence });
    expect(response.status).toBe(202);
    expect(response.body.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await state(a.claimed.attemptId)).toEqual({ attempt: 'running', job: 'running', evidence: 1 });
  });

  it.each([
    ['no credential', 401, (a: Awaited<ReturnType<typeof runningAttempt>>) => ({ token: undefined, body: a.evidence })],
    ['a wrong credential', 401, (a: Awaited<ReturnType<typeof runningAttempt>>) => ({ token: 'ppu_not-a-real-one', body: a.evidence })],
    ["a submitter's API token", 401, (a: Awaited<ReturnType<typeof runningAttempt>>) => ({ token, body: a.evidence })],
    [
      'a malformed body',
      400,
      (a: Awaited<ReturnType<typeof runningAttempt>>) => ({ token: a.credential, rawBody: '{"schemaVersion": 1,' }),
    ],
    [
      'evidence missing a field',
      400,
      (a: Awaited<ReturnType<typeof runningAttempt>>) => ({ token: a.credential, body: { ...a.evidence, source: undefined } }),
    ],
    [
      'an oversize body',
      413,
      (a: Awaited<ReturnType<typeof runningAttempt>>) => ({
        token: a.credential,
        rawBody: JSON.stringify({ ...a.evidence, padding: 'x'.repeat(300 * 1024) }),
      }),
    ],
    [
      'evidence naming another job',
      422,
      (a: Awaited<ReturnType<typeof runningAttempt>>) => ({
        token: a.credential,
        body: { ...a.evidence, jobId: '22222222-2222-4222-8222-222222222222' },
      }),
    ],
  ])('refuses %s with %i and changes nothing', async (_name, status, request) => {
    const a = await runningAttempt();
    const response = await call(proofpod.url, 'POST', a.url, request(a));
    expect(response.status).toBe(status);
    expect(await state(a.claimed.attemptId)).toEqual({ attempt: 'running', job: 'running', evidence: 0 });
    // The right upload still goes through afterwards: the refusal used nothing up.
    expect((await call(proofpod.url, 'POST', a.url, { token: a.credential, body: a.evidence })).status).toBe(202);
  });

  it('refuses a reused credential (409)', async () => {
    const a = await runningAttempt();
    expect((await call(proofpod.url, 'POST', a.url, { token: a.credential, body: a.evidence })).status).toBe(202);
    const again = await call(proofpod.url, 'POST', a.url, { token: a.credential, body: { ...a.evidence, outcome: 'fail' } });
    expect(again.status).toBe(409);
    const [stored] = await db.sql`select body->>'outcome' as outcome from evidence where attempt_id = ${a.claimed.attemptId}`;
    expect(stored?.outcome).toBe('pass');
  });

  it("refuses another attempt's credential (403)", async () => {
    const a = await runningAttempt();
    const b = await runningAttempt();
    const response = await call(proofpod.url, 'POST', a.url, { token: b.credential, body: a.evidence });
    expect(response.status).toBe(403);
    expect(await state(a.claimed.attemptId)).toMatchObject({ evidence: 0 });
    expect(await state(b.claimed.attemptId)).toMatchObject({ evidence: 0 });
  });

  it('refuses an upload after the deadline (403)', async () => {
    const a = await runningAttempt(new Date(Date.now() - 1000));
    const response = await call(proofpod.url, 'POST', a.url, { token: a.credential, body: a.evidence });
    expect(response.status).toBe(403);
    expect(response.body.message).toMatch(/expired/);
    expect(await state(a.claimed.attemptId)).toMatchObject({ evidence: 0 });
  });

  it('refuses an upload for an attempt that has ended (409, credential revoked)', async () => {
    const a = await runningAttempt();
    await call(proofpod.url, 'POST', `/v1/jobs/${a.claimed.jobId}/cancel`, { token });
    const response = await call(proofpod.url, 'POST', a.url, { token: a.credential, body: a.evidence });
    expect(response.status).toBe(409);
    expect(await state(a.claimed.attemptId)).toEqual({ attempt: 'cancelled', job: 'cancelled', evidence: 0 });
  });

  it('credentials are stored only as hashes', async () => {
    const a = await runningAttempt();
    const rows = await db.sql<{ hex: string }[]>`select encode(token_hash, 'hex') as hex from upload_credentials`;
    expect(rows.some((r) => r.hex.includes(Buffer.from(a.credential).toString('hex')))).toBe(false);
    expect(rows.every((r) => r.hex.length === 64)).toBe(true);
  });
});
