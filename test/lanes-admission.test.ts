/**
 * Trust, approval, quotas and concurrency groups through the real API on a real Postgres (docs/api.md, "Submitting").
 * Attempts run on FakeCluster, a FAKE of a cluster that runs nothing and plays the reporter, since
 * what is under test is admission and scheduling, not the provers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { main as cli } from '../scheduler/cli/main.js';
import { until } from './support/cluster.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance } from './support/instance.js';
import { finalJobStates } from '../scheduler/job-states.js';

const db = await createTestDatabase();
const finalStates: string[] = [...finalJobStates];

describe('lanes and trust with FakeCluster (a fake cluster that runs nothing)', () => {
  let cluster: FakeCluster;
  let proofpod: Proofpod;
  let fork: string;
  let maintainer: string;
  let approver: string;
  let pusher: string;
  // How long the fake's attempts take; tests lengthen it to catch jobs in flight.
  const fake = { runMs: 30 };

  beforeAll(async () => {
    cluster = new FakeCluster(fake);
    proofpod = await startInstance(
      db.url,
      {
        ...fastLoops,
        substrate: 'none',
        quotas: { maxQueued: 1000, maxRunning: 100, retryAfterSeconds: 17, submitters: { 'small-quota': { maxQueued: 3, maxRunning: 1 } } },
        promotion: [{ name: 'bots', from: 'intake', to: 'audit', submitters: ['fork'] }],
      },
      { substrate: cluster },
    );
    fork = await createToken(db.sql, { id: 'fork', trust: 'untrusted', lanes: ['*'] });
    maintainer = await createToken(db.sql, { id: 'maintainer', trust: 'trusted', lanes: ['*'] });
    approver = await createToken(db.sql, { id: 'release-manager', trust: 'trusted', lanes: ['*'], roles: ['approver'] });
    pusher = await createToken(db.sql, { id: 'pusher', trust: 'trusted', lanes: ['*'] });
  });
  afterAll(async () => {
    cluster.shutdown();
    await proofpod.stop();
  });

  const job = async (token: string, id: string) => (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body;
  const settled = (token: string, id: string, states: string[]) =>
    until(
      `job ${id} in ${states.join('/')}`,
      async () => {
        const view = await job(token, id);
        return states.includes(view.state) && view;
      },
      20_000,
      50,
    );

  it('refuses an untrusted submitter a trusted lane with a 403 that names the lanes it may use', async () => {
    const r = await call(proofpod.url, 'POST', '/v1/jobs', { token: fork, body: jobRequest({ lane: 'verify' }) });
    expect(r.status).toBe(403);
    expect(r.body.message).toBe('untrusted submitter fork may not use trusted lane verify; allowed lanes: intake');
    expect(r.body.fields).toEqual([{ field: 'lane', message: 'not allowed for this token (allowed: intake)' }]);
    const [written] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where submitter_id = 'fork'`;
    expect(written!.n).toBe(0);
  });

  it('keeps an intake-passed job in awaiting_approval until an approver promotes it, and records who did', async () => {
    const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
      token: fork,
      body: jobRequest({ lane: 'intake', promoteTo: 'verify' }),
    });
    expect(submitted.status).toBe(201);
    const id = submitted.body.id as string;
    const waiting = await settled(fork, id, ['awaiting_approval', ...finalStates]);
    expect(waiting).toMatchObject({ state: 'awaiting_approval', lane: 'intake', promoteTo: 'verify' });
    expect(waiting.stateReason).toMatch(/^passed intake \(.*\); awaiting approval to run in verify$/);
    // It stays there: nothing dispatches it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await job(fork, id)).state).toBe('awaiting_approval');

    const refused = await call(proofpod.url, 'POST', `/v1/jobs/${id}/approve`, { token: maintainer });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toBe('approving needs the approver role; maintainer has no roles');
    const byForkItself = await call(proofpod.url, 'POST', `/v1/jobs/${id}/approve`, { token: fork });
    expect(byForkItself.status).toBe(403);
    expect((await job(fork, id)).state).toBe('awaiting_approval');

    // The approver finds it and reads what intake found, but may not cancel it.
    const awaiting = await call(proofpod.url, 'GET', '/v1/jobs?state=awaiting_approval', { token: approver });
    expect(awaiting.body.jobs.map((j: { id: string }) => j.id)).toContain(id);
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${id}/evidence`, { token: approver })).status).toBe(200);
    expect((await call(proofpod.url, 'POST', `/v1/jobs/${id}/cancel`, { token: approver })).status).toBe(404);
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token: maintainer })).status).toBe(404);
    const approved = await call(proofpod.url, 'POST', `/v1/jobs/${id}/approve`, { token: approver, body: { note: 'reviewed the diff' } });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ state: 'queued', lane: 'verify' });
    const done = await settled(fork, id, finalStates);
    expect(done).toMatchObject({ state: 'verified', lane: 'verify', attemptsMade: 2 });
    const events = (await call(proofpod.url, 'GET', `/v1/jobs/${id}/events`, { token: fork })).body.events as {
      actor: string;
      from: string | null;
      to: string;
      reason: string;
      attemptNo: number | null;
    }[];
    const approval = events.find((e) => e.attemptNo === null && e.from === 'awaiting_approval');
    expect(approval).toMatchObject({
      actor: 'release-manager',
      to: 'queued',
      reason: 'approved by release-manager to run in verify: reviewed the diff',
    });
    // Approving twice is a conflict, not a second run.
    expect((await call(proofpod.url, 'POST', `/v1/jobs/${id}/approve`, { token: approver })).status).toBe(409);
  });

  it('does the same from the command line: submit --promote-to, approve, lanes', async () => {
    const lines: string[] = [];
    const run = (token: string, ...argv: string[]) =>
      cli(argv, { PROOFPOD_URL: proofpod.url, PROOFPOD_TOKEN: token }, (s) => void lines.push(s));
    expect(
      await run(
        fork,
        'submit',
        '--repo',
        'https://example.org/p.git',
        '--commit',
        'c'.repeat(40),
        '--prover',
        'coq',
        '--target',
        'A.v',
        '--lane',
        'intake',
        '--promote-to',
        'verify',
      ),
    ).toBe(0);
    const id = /submitted (\S+)/.exec(lines.join(''))![1]!;
    await settled(fork, id, ['awaiting_approval']);
    await expect(run(maintainer, 'approve', id)).rejects.toThrow(/403 approving needs the approver role/);
    expect(await run(approver, 'approve', id, '--note', 'ok')).toBe(0);
    expect((await settled(fork, id, finalStates)).state).toBe('verified');
    lines.length = 0;
    expect(await run(fork, 'lanes')).toBe(0);
    expect(lines.join('')).toMatch(/^intake +untrusted +\d+\/4 /m);
  });

  it('promotes without an approver where a policy rule says so, naming the rule', async () => {
    const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
      token: fork,
      body: jobRequest({ lane: 'intake', promoteTo: 'audit' }),
    });
    const done = await settled(fork, submitted.body.id, finalStates);
    expect(done).toMatchObject({ state: 'verified', lane: 'audit' });
    const events = (await call(proofpod.url, 'GET', `/v1/jobs/${done.id}/events`, { token: fork })).body.events as {
      actor: string;
      to: string;
      reason: string;
    }[];
    expect(events.some((e) => e.actor === 'policy:bots' && e.to === 'queued' && /promoted to audit by policy bots/.test(e.reason))).toBe(
      true,
    );
  });

  it('refuses promoteTo that does not go from an untrusted lane to a trusted one', async () => {
    const r = await call(proofpod.url, 'POST', '/v1/jobs', { token: maintainer, body: jobRequest({ lane: 'verify', promoteTo: 'audit' }) });
    expect(r.status).toBe(400);
    expect(r.body.fields).toEqual([{ field: 'promoteTo', message: 'must be a trusted lane, for a job submitted to an untrusted lane' }]);
  });

  it('answers the (quota+1)th waiting job with 429 and Retry-After, and writes nothing for it', async () => {
    const small = await createToken(db.sql, { id: 'small-quota', trust: 'trusted', lanes: ['*'] });
    // Its first job stays in flight and maxRunning 1 keeps the others queued while the quota fills.
    fake.runMs = 60_000;
    for (let i = 0; i < 3; i++) {
      const r = await call(proofpod.url, 'POST', '/v1/jobs', {
        token: small,
        body: jobRequest({ lane: 'verify', labels: { n: String(i) } }),
      });
      expect(r.status).toBe(201);
    }
    // The first may have been dispatched (maxRunning 1), which frees one waiting place.
    const [waiting] = await db.sql<
      { n: number }[]
    >`select count(*)::int as n from jobs where submitter_id = 'small-quota' and state in ('queued', 'awaiting_approval')`;
    for (let i = waiting!.n; i < 3; i++) {
      expect(
        (await call(proofpod.url, 'POST', '/v1/jobs', { token: small, body: jobRequest({ lane: 'verify', labels: { fill: String(i) } }) }))
          .status,
      ).toBe(201);
    }
    const before = await db.sql<{ jobs: number; events: number }[]>`
      select (select count(*)::int from jobs) as jobs, (select count(*)::int from events) as events`;
    const over = await call(proofpod.url, 'POST', '/v1/jobs', {
      token: small,
      body: jobRequest({ lane: 'verify', labels: { over: 'yes' } }),
    });
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('17');
    expect(over.body.message).toBe('submitter small-quota has 3 jobs waiting, its quota is 3: try again when some have been dispatched');
    const after = await db.sql<{ jobs: number; events: number }[]>`
      select (select count(*)::int from jobs) as jobs, (select count(*)::int from events) as events`;
    expect(after).toEqual(before);
    // maxRunning 1: however long the queue, one of its jobs is in flight at a time.
    const [running] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from attempts a join jobs j on j.id = a.job_id
      where j.submitter_id = 'small-quota' and a.state in ('dispatching', 'running')`;
    expect(running!.n).toBeLessThanOrEqual(1);
    for (const id of await db.sql<
      { id: string }[]
    >`select id from jobs where submitter_id = 'small-quota' and state not in ('verified', 'rejected', 'error', 'timed_out', 'cancelled')`) {
      await call(proofpod.url, 'POST', `/v1/jobs/${id.id}/cancel`, { token: small });
    }
    fake.runMs = 30;
  });

  it('nobody approves their own job, admins included; another approver may', async () => {
    const ownJobs = await createToken(db.sql, { id: 'approving-admin', trust: 'trusted', lanes: ['*'], roles: ['approver', 'admin'] });
    const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
      token: ownJobs,
      body: jobRequest({ lane: 'intake', promoteTo: 'verify' }),
    });
    expect(submitted.status).toBe(201);
    const id = submitted.body.id as string;
    expect((await settled(ownJobs, id, ['awaiting_approval', ...finalStates])).state).toBe('awaiting_approval');
    const own = await call(proofpod.url, 'POST', `/v1/jobs/${id}/approve`, { token: ownJobs });
    expect(own.status).toBe(403);
    expect(own.body.message).toBe(`approving-admin submitted job ${id}: nobody approves their own job`);
    expect((await job(ownJobs, id)).state).toBe('awaiting_approval');
    const byAnother = await call(proofpod.url, 'POST', `/v1/jobs/${id}/approve`, { token: approver });
    expect(byAnother.status).toBe(200);
    expect(byAnother.body).toMatchObject({ state: 'queued', lane: 'verify' });
  });

  it('a running quota set over the API holds its submitter to it, over the config default', async () => {
    const ops = await createToken(db.sql, { id: 'quota-admin', roles: ['admin'] });
    const capped = await createToken(db.sql, { id: 'api-capped', trust: 'trusted', lanes: ['*'] });
    const patched = await call(proofpod.url, 'PATCH', '/v1/submitters/api-capped', { token: ops, body: { maxRunning: 1 } });
    expect(patched.status).toBe(200);
    fake.runMs = 60_000;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await call(proofpod.url, 'POST', '/v1/jobs', { token: capped, body: jobRequest({ lane: 'verify' }) })).body.id);
    await settled(capped, ids[0]!, ['running']);
    // Several dispatch cycles later, still one in flight (the config's default would allow 100).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const states = await Promise.all(ids.map(async (id) => (await job(capped, id)).state));
    expect(states.filter((s) => s === 'running' || s === 'dispatching')).toHaveLength(1);
    expect(states.filter((s) => s === 'queued')).toHaveLength(2);
    for (const id of ids) await call(proofpod.url, 'POST', `/v1/jobs/${id}/cancel`, { token: capped });
    fake.runMs = 30;
  });

  it('ten pushes to one group with cancelInProgress leave one job that runs to a verdict and nine cancelled, each superseded by the next', async () => {
    fake.runMs = 1_500;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await call(proofpod.url, 'POST', '/v1/jobs', {
        token: pusher,
        body: jobRequest({
          lane: 'verify',
          labels: { push: String(i) },
          concurrency: { group: 'refs/heads/main', cancelInProgress: true },
        }),
      });
      expect(r.status).toBe(201);
      ids.push(r.body.id);
      // Let some of them reach the cluster before the next push supersedes them.
      await new Promise((resolve) => setTimeout(resolve, 120));
    }
    const views = await Promise.all(ids.map((id) => settled(pusher, id, finalStates)));
    expect(views.map((v) => v.state)).toEqual([...Array(9).fill('cancelled'), 'verified']);
    views.slice(0, 9).forEach((view, i) => {
      expect(view.supersededBy).toBe(ids[i + 1]);
      expect(view.stateReason).toBe(`superseded by job ${ids[i + 1]} in concurrency group refs/heads/main`);
    });
    // Some were stopped in flight: the cluster holds none of the cancelled attempts.
    const [stoppedInFlight] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from attempts where job_id = any(${ids.slice(0, 9)}) and state = 'cancelled'`;
    expect(stoppedInFlight!.n).toBeGreaterThan(0);
    const names = await db.sql<{ name: string }[]>`select name from attempts where job_id = any(${ids.slice(0, 9)})`;
    for (const { name } of names) expect(cluster.objects.has(name)).toBe(false);
    fake.runMs = 30;
  });

  it('without cancelInProgress the running job finishes, and only the newest pending one runs after it', async () => {
    fake.runMs = 1_500;
    const push = async (i: number) =>
      (
        await call(proofpod.url, 'POST', '/v1/jobs', {
          token: pusher,
          body: jobRequest({ lane: 'verify', labels: { push: String(i) }, concurrency: { group: 'pr-42', cancelInProgress: false } }),
        })
      ).body.id as string;
    const first = await push(0);
    await settled(pusher, first, ['running']);
    const later: string[] = [];
    for (let i = 1; i < 5; i++) later.push(await push(i));
    // While the first runs, the group's newest waits and the rest are superseded.
    expect((await job(pusher, later.at(-1)!)).state).toBe('queued');
    const views = await Promise.all([first, ...later].map((id) => settled(pusher, id, finalStates)));
    expect(views.map((v) => v.state)).toEqual(['verified', 'cancelled', 'cancelled', 'cancelled', 'verified']);
    expect(views.slice(1, 4).map((v) => v.supersededBy)).toEqual(later.slice(1));
    expect(views.slice(1, 4).every((v) => v.attemptsMade === 0)).toBe(true);
    // The newest started only after the first had ended.
    const [order] = await db.sql<{ firstEnded: Date; newestStarted: Date }[]>`
      select (select finished_at from attempts where job_id = ${first}) as first_ended,
             (select created_at from attempts where job_id = ${later.at(-1)!}) as newest_started`;
    expect(order!.newestStarted.getTime()).toBeGreaterThanOrEqual(order!.firstEnded.getTime());
    fake.runMs = 30;
  });

  it('shows each lane with its trust, depth, running, oldest wait and dispatch latency', async () => {
    const r = await call(proofpod.url, 'GET', '/v1/lanes', { token: fork });
    expect(r.status).toBe(200);
    const lanes = r.body.lanes as {
      name: string;
      trust: string;
      usable: boolean;
      queued: number;
      running: number;
      dispatchLatency: unknown;
    }[];
    expect(lanes.map((l) => [l.name, l.trust, l.usable])).toEqual([
      ['intake', 'untrusted', true],
      ['verify', 'trusted', false],
      ['audit', 'trusted', false],
      ['replay', 'trusted', false],
    ]);
    expect(lanes.find((l) => l.name === 'verify')!.dispatchLatency).toMatchObject({
      attempts: expect.any(Number),
      p50Seconds: expect.any(Number),
    });
    expect((await call(proofpod.url, 'GET', '/v1/lanes')).status).toBe(401);
    const metrics = await (await fetch(`${proofpod.url}/metrics`)).text();
    expect(metrics).toMatch(/^proofpod_lane_queued\{lane="verify"\} \d+$/m);
    expect(metrics).toMatch(/^proofpod_lane_running\{lane="intake"\} \d+$/m);
  });
});
