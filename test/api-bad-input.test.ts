import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { createTestDatabase, createToken } from './support/database.js';
import { call, jobRequest, startInstance } from './support/instance.js';

const db = await createTestDatabase();
let proofpod: Proofpod;
let token: string;
let intakeOnlyToken: string;

beforeAll(async () => {
  proofpod = await startInstance(db.url, { bodyLimitBytes: 64 * 1024 });
  token = await createToken(db.sql, { id: 'alice' });
  intakeOnlyToken = await createToken(db.sql, { id: 'fork-bot', trust: 'untrusted', lanes: ['intake'] });
});
afterAll(() => proofpod.stop());

const withSource = (source: Record<string, unknown>) => jobRequest({ source: { ...jobRequest().source, ...source } });

interface Case {
  name: string;
  status: number;
  field?: string;
  token?: 'none' | 'intake-only';
  body?: unknown;
  rawBody?: string;
}

const cases: Case[] = [
  { name: 'malformed JSON', status: 400, field: 'body', rawBody: '{"source": {"url": ' },
  { name: 'unknown field', status: 400, field: 'colour', body: { ...jobRequest(), colour: 'blue' } },
  { name: 'unknown nested field', status: 400, field: 'source.branch', body: withSource({ branch: 'main' }) },
  { name: 'commit not 40 hex', status: 400, field: 'source.commit', body: withSource({ commit: 'main' }) },
  { name: 'commit of 40 non-hex characters', status: 400, field: 'source.commit', body: withSource({ commit: 'z'.repeat(40) }) },
  { name: 'unknown prover', status: 400, field: 'prover', body: jobRequest({ prover: 'isabelle' }) },
  { name: 'unknown lane', status: 400, field: 'lane', body: jobRequest({ lane: 'express' }) },
  { name: 'oversize string', status: 400, field: 'source.url', body: withSource({ url: `https://example.org/${'x'.repeat(3000)}` }) },
  { name: 'target escaping the source', status: 400, field: 'targets.0', body: jobRequest({ targets: ['../../etc/passwd'] }) },
  {
    name: 'target that reads as an option',
    status: 400,
    field: 'targets.0',
    body: jobRequest({ targets: ['-load-vernac-source=/etc/passwd'] }),
  },
  {
    name: 'target with a later component that reads as an option',
    status: 400,
    field: 'targets.1',
    body: jobRequest({ targets: ['Main.v', 'theories/--help'] }),
  },
  {
    name: 'subdirectory that reads as an option',
    status: 400,
    field: 'source.subdirectory',
    body: withSource({ subdirectory: 'proofs/-Q' }),
  },
  {
    name: 'missing targets for a prover without project builds',
    status: 400,
    field: 'targets',
    body: { ...jobRequest({ prover: 'smt-z3' }), targets: undefined },
  },
  {
    name: 'no targets for a prover without project builds',
    status: 400,
    field: 'targets',
    body: jobRequest({ prover: 'metamath', targets: [] }),
  },
  { name: 'NUL in the source url', status: 400, field: 'source.url', body: withSource({ url: 'https://example.org/a\u0000b.git' }) },
  { name: 'NUL in a target', status: 400, field: 'targets.0', body: jobRequest({ targets: ['A\u0000.v'] }) },
  { name: 'lone surrogate in a label value', status: 400, field: 'labels.pr', body: jobRequest({ labels: { pr: 'x\ud800y' } }) },
  { name: 'lone low surrogate in a label value', status: 400, field: 'labels.pr', body: jobRequest({ labels: { pr: '\udc00' } }) },
  { name: 'NUL in a label key', status: 400, field: 'labels.p\ufffdr', body: jobRequest({ labels: { 'p\u0000r': 'x' } }) },
  { name: 'NUL in the idempotency key', status: 400, field: 'idempotencyKey', body: jobRequest({ idempotencyKey: 'k\u0000' }) },
  {
    name: 'lone surrogate in the concurrency group',
    status: 400,
    field: 'concurrency.group',
    body: jobRequest({ concurrency: { group: '\ud83d', cancelInProgress: false } }),
  },
  {
    name: 'targets over 32 KiB together (E2BIG in the sandbox)',
    status: 400,
    field: 'targets',
    body: jobRequest({ targets: Array.from({ length: 40 }, (_, i) => `${'d'.repeat(990)}/T${i}.v`) }),
  },
  { name: 'body over the limit', status: 413, rawBody: JSON.stringify({ ...jobRequest(), padding: 'x'.repeat(100 * 1024) }) },
  { name: 'missing token', status: 401, field: 'header.authorization', token: 'none', body: jobRequest() },
  { name: 'token for another lane', status: 403, field: 'lane', token: 'intake-only', body: jobRequest({ lane: 'verify' }) },
];

describe('bad input to POST /v1/jobs', () => {
  it.each(cases)('$name → $status naming the field, nothing written', async (c) => {
    const bearer = c.token === 'none' ? undefined : c.token === 'intake-only' ? intakeOnlyToken : token;
    const response = await call<{ message: string; fields?: { field: string }[] }>(proofpod.url, 'POST', '/v1/jobs', {
      token: bearer,
      body: c.body,
      rawBody: c.rawBody,
    });
    expect(response.status).toBe(c.status);
    expect(response.body.message).toEqual(expect.any(String));
    if (c.field) {
      expect(response.body.fields?.map((f) => f.field)).toContain(c.field);
      expect(response.body.message).toContain(c.field === 'header.authorization' ? 'token' : c.field);
    }
    const [counts] = await db.sql<{ jobs: number; events: number }[]>`
      select (select count(*)::int from jobs) as jobs, (select count(*)::int from events) as events`;
    expect(counts).toEqual({ jobs: 0, events: 0 });
  });

  it('the 403 says which lanes the token may use', async () => {
    const response = await call<{ message: string }>(proofpod.url, 'POST', '/v1/jobs', {
      token: intakeOnlyToken,
      body: jobRequest({ lane: 'verify' }),
    });
    expect(response.body.message).toContain('allowed lanes: intake');
  });

  it('a revoked token is refused', async () => {
    const revoked = await createToken(db.sql, { id: 'former-member' });
    await db.sql`update api_tokens set revoked_at = now() where submitter_id = 'former-member'`;
    const response = await call(proofpod.url, 'POST', '/v1/jobs', { token: revoked, body: jobRequest() });
    expect(response.status).toBe(401);
  });

  it('authentication comes before validation: without a valid token, any body is a 401 that names nothing of the API', async () => {
    const names = ['coq', 'metamath', 'verify', 'audit', 'intake', 'prover', 'lane'];
    const requests: { method: string; path: string; token?: string; body?: unknown; rawBody?: string }[] = [
      { method: 'POST', path: '/v1/jobs', body: jobRequest({ prover: 'isabelle', lane: 'express' }) },
      { method: 'POST', path: '/v1/jobs', rawBody: '{"source": {"url": ' },
      { method: 'POST', path: '/v1/jobs', token: 'pp_not-a-token', body: { colour: 'blue' } },
      { method: 'GET', path: '/v1/jobs?state=done&colour=red' },
      { method: 'GET', path: '/v1/jobs/not-a-uuid?waitSeconds=99' },
      { method: 'POST', path: '/v1/jobs/not-a-uuid/cancel', rawBody: 'not json' },
      { method: 'GET', path: '/v1/lanes' },
      { method: 'POST', path: '/v1/attempts/not-a-uuid/evidence', rawBody: '{"outcome": ' },
      { method: 'POST', path: '/v1/attempts/not-a-uuid/evidence', token: 'ppu_not-a-credential', body: { outcome: 'pass' } },
    ];
    for (const r of requests) {
      const response = await call<{ message: string; fields?: { field: string }[] }>(proofpod.url, r.method, r.path, {
        token: r.token,
        body: r.body,
        rawBody: r.rawBody,
      });
      const what = `${r.method} ${r.path} ${r.token ?? 'without a token'}`;
      expect(response.status, what).toBe(401);
      expect(
        response.body.fields?.map((f) => f.field),
        what,
      ).toEqual(['header.authorization']);
      const text = JSON.stringify(response.body);
      for (const name of names) expect(text, what).not.toContain(name);
    }
  });

  it('NUL and lone surrogates in queries, paths and other bodies are 400s naming where, never 500s', async () => {
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
    for (const [method, path, body, field] of [
      ['GET', '/v1/jobs?lane=%00', undefined, 'querystring.lane'],
      ['GET', '/v1/jobs?label=a%3D%00', undefined, 'querystring.label'],
      // Not UTF-8: the query parser makes it U+FFFD, text again (an empty list, not a 500).
      ['GET', '/v1/jobs?prover=%ED%A0%80', undefined, undefined],
      ['GET', '/v1/jobs/%00', undefined, undefined],
      ['POST', `/v1/jobs/${job.body.id}/cancel`, { reason: 'because\u0000' }, 'reason'],
      ['POST', `/v1/jobs/${job.body.id}/approve`, { note: '\ud800' }, undefined],
    ] as const) {
      const answer = await call<{ fields?: { field: string }[] }>(proofpod.url, method, path, { token, body });
      expect(answer.status, `${method} ${path}`).toBeLessThan(500);
      if (field) {
        expect(answer.status, `${method} ${path}`).toBe(400);
        expect(answer.body.fields?.[0]?.field, `${method} ${path}`).toBe(field);
      }
    }
    // The job was not cancelled by the refused request.
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${job.body.id}`, { token })).body.state).toBe('queued');
  });

  it('a well-formed request with the same token is accepted (the table above is not refusing everything)', async () => {
    const response = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest() });
    expect(response.status).toBe(201);
  });
});
