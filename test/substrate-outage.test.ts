import { afterAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { isUnreachable } from '../scheduler/substrate/unreachable.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance, waitFor } from './support/instance.js';

describe('what says the substrate could not be reached', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
  it.each([
    ['a refused connection', refused, true],
    [
      'a refused connection two causes down',
      new Error('creating Job failed', { cause: new Error('request failed', { cause: refused }) }),
      true,
    ],
    ['a reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    ["undici's socket error", Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), true],
    ['an answer refusing the request (403)', Object.assign(new Error('Forbidden'), { code: 403 }), false],
    ['a missing file', Object.assign(new Error('ENOENT'), { code: 'ENOENT' }), false],
    ['a plain error', new Error('quota exceeded'), false],
    ['not an error', 'ECONNREFUSED', false],
  ])('%s: %s', (_name, error, expected) => {
    expect(isUnreachable(error)).toBe(expected);
  });
});

/**
 * An outage of the substrate's API server (docs/reliability.md found it spending every job's
 * retries): while the FAKE cluster refuses every connection, dispatch holds after the starts that
 * were in flight, and once it answers again every job is verified, none with more than one failed
 * attempt. Without the hold, each job is claimed again at once and gives up after its three.
 */
describe('a substrate outage (cluster is a FAKE that refuses connections while down)', () => {
  let proofpod: Proofpod;
  let cluster: FakeCluster;
  afterAll(async () => {
    cluster?.shutdown();
    await proofpod?.stop();
  });

  it('holds dispatch while the substrate does not answer, and spends at most one attempt of a job on the outage', async () => {
    const db = await createTestDatabase();
    const token = await createToken(db.sql, { id: 'outage' });
    let up = false;
    cluster = new FakeCluster({ runMs: 50, reachable: () => up, endpoints: () => [proofpod.url] });
    proofpod = await startInstance(
      db.url,
      {
        ...fastLoops,
        lanes: [{ name: 'verify', trust: 'trusted', concurrency: 4, retryLimit: 2 }],
        dispatch: { ...fastLoops.dispatch, launchConcurrency: 2 },
      },
      { substrate: cluster },
    );
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await call(proofpod.url, 'POST', '/v1/jobs', { token, body: jobRequest({ labels: { n: String(i) } }) });
      expect(r.status).toBe(201);
      ids.push(r.body.id);
    }
    // Two seconds of outage: many dispatch intervals, and several pings.
    await waitFor('a start to be refused', async () => cluster.refusedStarts.length > 0, 10_000, 20);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const refusedDuringOutage = cluster.refusedStarts.length;
    up = true;
    await waitFor(
      'every job to end',
      async () =>
        (await db.sql`select 1 from jobs where state not in ('verified', 'rejected', 'error', 'cancelled', 'timed_out')`).length === 0,
      30_000,
      50,
    );
    const states = await db.sql<{ state: string; n: number }[]>`select state, count(*)::int as n from jobs group by state`;
    expect(states).toEqual([{ state: 'verified', n: 12 }]);
    const [worst] = await db.sql<{ failed: number }[]>`
      select coalesce(max(n), 0)::int as failed from (select count(*) as n from attempts where state = 'failed' group by job_id) f`;
    expect(worst!.failed).toBeLessThanOrEqual(1);
    // Only the creates in flight when the outage began were tried (launchConcurrency: 2); the
    // launches claimed with them waited at their create for the substrate to answer.
    expect(refusedDuringOutage).toBeLessThanOrEqual(2);
  });
});
