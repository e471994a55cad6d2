import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { createTestDatabase, createToken } from './support/database.js';
import { call, jobRequest, startInstance } from './support/instance.js';

const db = await createTestDatabase();
let proofpod: Proofpod;
let alice: string;
let bob: string;
let admin: string;

beforeAll(async () => {
  proofpod = await startInstance(db.url);
  alice = await createToken(db.sql, { id: 'alice' });
  bob = await createToken(db.sql, { id: 'bob' });
  admin = await createToken(db.sql, { id: 'root', roles: ['admin'] });
});
afterAll(() => proofpod.stop());

describe('submitting and reading jobs', () => {
  it('a submitted job is queued, readable, and its creation is in the event log', async () => {
    const created = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body: jobRequest({ labels: { pr: '42' } }) });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ state: 'queued', submitter: 'alice', lane: 'verify', prover: 'coq', labels: { pr: '42' } });
    expect(created.headers.get('location')).toBe(`/v1/jobs/${created.body.id}`);

    const read = await call(proofpod.url, 'GET', `/v1/jobs/${created.body.id}`, { token: alice });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: created.body.id, state: 'queued', attempts: [] });

    const events = await call(proofpod.url, 'GET', `/v1/jobs/${created.body.id}/events`, { token: alice });
    expect(events.body.events).toEqual([expect.objectContaining({ actor: 'alice', from: null, to: 'queued', reason: 'submitted' })]);
  });

  it('idempotency: same key and body → the same job; same key, other body → 409; nothing extra written', async () => {
    const body = jobRequest({ idempotencyKey: 'pr-7-run-1' });
    const first = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body });
    const again = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);

    const other = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body: { ...body, targets: ['Other.v'] } });
    expect(other.status).toBe(409);
    expect(other.body.fields).toEqual([expect.objectContaining({ field: 'idempotencyKey' })]);
    const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where idempotency_key = 'pr-7-run-1'`;
    expect(row?.n).toBe(1);

    // Keys are per submitter: bob's use of the same key is his own job.
    const bobs = await call(proofpod.url, 'POST', '/v1/jobs', { token: bob, body });
    expect(bobs.status).toBe(201);
    expect(bobs.body.id).not.toBe(first.body.id);
  });

  it('concurrent retries under one key create exactly one job', async () => {
    const body = jobRequest({ idempotencyKey: 'burst' });
    const responses = await Promise.all(Array.from({ length: 20 }, () => call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body })));
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200)).toHaveLength(19);
  });

  it('a submitter sees only its own jobs; an admin sees all', async () => {
    const bobsJob = await call(proofpod.url, 'POST', '/v1/jobs', { token: bob, body: jobRequest() });
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${bobsJob.body.id}`, { token: alice })).status).toBe(404);
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${bobsJob.body.id}`, { token: admin })).status).toBe(200);
    const alicesList = await call(proofpod.url, 'GET', '/v1/jobs?limit=500', { token: alice });
    expect(alicesList.body.jobs.every((j: { submitter: string }) => j.submitter === 'alice')).toBe(true);
  });
});

describe('listing', () => {
  it('filters by state, lane, prover and label, and pages with a cursor without gaps or repeats', async () => {
    const carol = await createToken(db.sql, { id: 'carol' });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await call(proofpod.url, 'POST', '/v1/jobs', {
        token: carol,
        body: jobRequest({ lane: i % 2 ? 'audit' : 'verify', prover: i < 5 ? 'coq' : 'metamath', labels: { batch: 'b1', n: String(i) } }),
      });
      ids.push(r.body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { jobs: { id: string }[]; nextCursor: string | null } } = await call(
        proofpod.url,
        'GET',
        `/v1/jobs?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        { token: carol },
      );
      seen.push(...page.body.jobs.map((j) => j.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    const audit = await call(proofpod.url, 'GET', '/v1/jobs?lane=audit', { token: carol });
    expect(audit.body.jobs.map((j: { id: string }) => j.id)).toEqual([ids[5], ids[3], ids[1]]);
    const metamath = await call(proofpod.url, 'GET', '/v1/jobs?prover=metamath&label=batch=b1', { token: carol });
    expect(metamath.body.jobs).toHaveLength(2);
    const labelled = await call(proofpod.url, 'GET', '/v1/jobs?label=batch=b1&label=n=4', { token: carol });
    expect(labelled.body.jobs.map((j: { id: string }) => j.id)).toEqual([ids[4]]);
    const queued = await call(proofpod.url, 'GET', '/v1/jobs?state=queued,running', { token: carol });
    expect(queued.body.jobs).toHaveLength(7);
    const none = await call(proofpod.url, 'GET', '/v1/jobs?state=verified', { token: carol });
    expect(none.body.jobs).toHaveLength(0);
  });

  it('rejects an unknown state, a forged cursor and an unknown parameter, naming them', async () => {
    const badState = await call(proofpod.url, 'GET', '/v1/jobs?state=done', { token: alice });
    expect(badState.status).toBe(400);
    expect(badState.body.fields[0].field).toMatch(/^querystring\.state/);
    const forged = await call(proofpod.url, 'GET', `/v1/jobs?cursor=${Buffer.from('drop table').toString('base64url')}`, { token: alice });
    expect(forged.status).toBe(400);
    expect(forged.body.fields[0].field).toBe('querystring.cursor');
    const unknown = await call(proofpod.url, 'GET', '/v1/jobs?colour=red', { token: alice });
    expect(unknown.status).toBe(400);
    expect(unknown.body.fields[0].field).toBe('querystring.colour');
  });
});

describe('cancelling', () => {
  it('cancels a queued job, records who did it, and refuses to cancel it twice', async () => {
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body: jobRequest() });
    const cancelled = await call(proofpod.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, {
      token: alice,
      body: { reason: 'superseded by a newer push' },
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ state: 'cancelled', stateReason: 'cancelled by alice: superseded by a newer push' });
    expect(cancelled.body.finishedAt).not.toBeNull();
    const again = await call(proofpod.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { token: alice });
    expect(again.status).toBe(409);
    const events = await call(proofpod.url, 'GET', `/v1/jobs/${job.body.id}/events`, { token: alice });
    expect(events.body.events.map((e: { to: string }) => e.to)).toEqual(['queued', 'cancelled']);
    expect(events.body.events[1].actor).toBe('alice');
  });

  it("another submitter cannot cancel alice's job", async () => {
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body: jobRequest() });
    expect((await call(proofpod.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { token: bob })).status).toBe(404);
  });
});

describe('waiting for a job', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('a waiting GET answers as soon as the job changes on another replica, not at its timeout', async () => {
    const other = await startInstance(db.url);
    try {
      const job = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body: jobRequest() });
      const started = Date.now();
      let answeredAt = 0;
      const waiting = call(proofpod.url, 'GET', `/v1/jobs/${job.body.id}?waitSeconds=25`, { token: alice }).then((r) => {
        answeredAt = Date.now();
        return r;
      });
      await sleep(400);
      expect(answeredAt).toBe(0); // still waiting: queued is not a change
      const cancelledAt = Date.now();
      await call(other.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { token: alice });
      const answer = await waiting;
      expect(answer.status).toBe(200);
      expect(answer.body.state).toBe('cancelled');
      expect(answeredAt - started).toBeGreaterThanOrEqual(400);
      expect(answeredAt - cancelledAt).toBeLessThan(2000);
    } finally {
      await other.stop();
    }
  });

  it('answers at its timeout when nothing changes, and at once for a final job or a state already left', async () => {
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body: jobRequest() });
    const timed = async (query: string) => {
      const started = Date.now();
      const answer = await call(proofpod.url, 'GET', `/v1/jobs/${job.body.id}${query}`, { token: alice });
      return { state: answer.body.state, ms: Date.now() - started };
    };
    const unchanged = await timed('?waitSeconds=1');
    expect(unchanged.state).toBe('queued');
    expect(unchanged.ms).toBeGreaterThanOrEqual(900);
    // The client saw it running; it is queued (a retry, say): that is news, answered at once.
    const left = await timed('?waitSeconds=20&whileState=running');
    expect(left).toMatchObject({ state: 'queued' });
    expect(left.ms).toBeLessThan(5000);

    await call(proofpod.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { token: alice });
    const final = await timed('?waitSeconds=20');
    expect(final.state).toBe('cancelled');
    expect(final.ms).toBeLessThan(5000);
  });

  it("refuses a wait out of range or an unknown state, naming them, and hides others' jobs", async () => {
    const job = await call(proofpod.url, 'POST', '/v1/jobs', { token: alice, body: jobRequest() });
    for (const [query, field] of [
      ['waitSeconds=31', 'querystring.waitSeconds'],
      ['waitSeconds=-1', 'querystring.waitSeconds'],
      ['waitSeconds=soon', 'querystring.waitSeconds'],
      ['waitSeconds=5&whileState=done', 'querystring.whileState'],
    ] as const) {
      const answer = await call(proofpod.url, 'GET', `/v1/jobs/${job.body.id}?${query}`, { token: alice });
      expect(answer.status, query).toBe(400);
      expect(answer.body.fields[0].field, query).toBe(field);
    }
    const started = Date.now();
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${job.body.id}?waitSeconds=20`, { token: bob })).status).toBe(404);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a stopping server answers the requests waiting on it instead of holding its stop', async () => {
    const stopping = await startInstance(db.url);
    const job = await call(stopping.url, 'POST', '/v1/jobs', { token: alice, body: jobRequest() });
    const waiting = call(stopping.url, 'GET', `/v1/jobs/${job.body.id}?waitSeconds=25`, { token: alice });
    await sleep(300);
    const started = Date.now();
    await stopping.stop();
    expect(Date.now() - started).toBeLessThan(5000);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.body.state).toBe('queued');
  });
});

describe('service endpoints', () => {
  it('serves an OpenAPI document describing the job routes, and the docs UI', async () => {
    const doc = await call(proofpod.url, 'GET', '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/jobs',
        '/v1/jobs/{id}',
        '/v1/jobs/{id}/cancel',
        '/v1/jobs/{id}/evidence',
        '/v1/attempts/{attemptId}/evidence',
      ]),
    );
    expect(doc.body.paths['/v1/jobs'].post.requestBody.content['application/json'].schema.properties.source.properties.commit.pattern).toBe(
      '^[0-9a-f]{40}$',
    );
    expect((await call(proofpod.url, 'GET', '/docs/')).status).toBe(200);
  });

  it('exports Prometheus metrics including queue depth per lane', async () => {
    const metrics = await call<string>(proofpod.url, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/proofpod_jobs\{lane="verify",state="queued"\} \d+/);
    expect(metrics.body).toMatch(/proofpod_jobs_submitted_total\{lane="verify",prover="coq"\} \d+/);
  });

  it('/livez and /readyz answer without a token', async () => {
    expect((await call(proofpod.url, 'GET', '/livez')).status).toBe(200);
    const ready = await call(proofpod.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({ postgres: 'ok', migrations: 'ok' });
  });
});
