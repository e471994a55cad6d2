/**
 * Approval expiry (docs/api.md, "Submitting"): a job that passed its lane and waits in
 * `awaiting_approval` longer than the lane's `awaitingApprovalSeconds` ends `cancelled`, saying
 * why; one approved in time, or waiting in a lane without the setting, does not. Attempts run on
 * FakeCluster, a FAKE of a cluster that runs nothing and plays the reporter: what is under test is
 * the reaper and the API, not the provers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { finalJobStates } from '../scheduler/job-states.js';
import { until } from './support/cluster.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance } from './support/instance.js';

const db = await createTestDatabase();
const finalStates: string[] = [...finalJobStates];
let cluster: FakeCluster;
let proofpod: Proofpod;
let fork: string;
let approver: string;

beforeAll(async () => {
  cluster = new FakeCluster({ runMs: 30 });
  proofpod = await startInstance(
    db.url,
    {
      ...fastLoops,
      substrate: 'none',
      lanes: [
        { name: 'intake', trust: 'untrusted', concurrency: 4, awaitingApprovalSeconds: 2 },
        { name: 'patient', trust: 'untrusted', concurrency: 4 },
        { name: 'verify', trust: 'trusted', concurrency: 4 },
      ],
    },
    { substrate: cluster },
  );
  fork = await createToken(db.sql, { id: 'fork', trust: 'untrusted', lanes: ['*'] });
  approver = await createToken(db.sql, { id: 'release-manager', trust: 'trusted', lanes: ['*'], roles: ['approver'] });
});
afterAll(async () => {
  cluster.shutdown();
  await proofpod.stop();
});

const job = async (id: string) => (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token: fork })).body;
const submitAwaiting = async (lane: string) => {
  const submitted = await call(proofpod.url, 'POST', '/v1/jobs', { token: fork, body: jobRequest({ lane, promoteTo: 'verify' }) });
  expect(submitted.status).toBe(201);
  const id = submitted.body.id as string;
  const waiting = await until(`job ${id} to pass ${lane}`, async () => {
    const view = await job(id);
    return [...finalStates, 'awaiting_approval'].includes(view.state) && view;
  });
  expect(waiting.state).toBe('awaiting_approval');
  return id;
};

describe('approval expiry', () => {
  it('ends a job waiting longer than its lane allows cancelled, with the reason, and leaves the others', async () => {
    const expiring = await submitAwaiting('intake');
    const approvedInTime = await submitAwaiting('intake');
    const patient = await submitAwaiting('patient');
    expect((await call(proofpod.url, 'POST', `/v1/jobs/${approvedInTime}/approve`, { token: approver })).status).toBe(200);

    const ended = await until(
      'the expiry',
      async () => {
        const view = await job(expiring);
        return view.state !== 'awaiting_approval' && view;
      },
      15_000,
    );
    expect(ended.state).toBe('cancelled');
    expect(ended.stateReason).toMatch(
      /^approval expired: waited \d+ s in awaiting_approval for promotion to verify \(lane intake allows 2 s\)$/,
    );
    const events = (await call(proofpod.url, 'GET', `/v1/jobs/${expiring}/events`, { token: fork })).body.events as {
      actor: string;
      to: string;
    }[];
    expect(events.at(-1)).toMatchObject({ actor: 'reaper', to: 'cancelled' });

    // Well past 2 s: the approved job went on to its trusted lane, and a lane without the setting waits on.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await job(approvedInTime)).state).not.toBe('cancelled');
    expect((await job(approvedInTime)).lane).toBe('verify');
    expect((await job(patient)).state).toBe('awaiting_approval');
    // And an expired job cannot be approved any more.
    expect((await call(proofpod.url, 'POST', `/v1/jobs/${expiring}/approve`, { token: approver })).status).toBe(409);
  });
});
