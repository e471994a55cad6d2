import { afterAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance, waitFor } from './support/instance.js';

const JOBS = 1000;
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'ci' });

describe('two scheduler replicas on one Postgres (cluster is a FAKE that runs nothing)', () => {
  const instances: Proofpod[] = [];
  let cluster: FakeCluster;
  afterAll(async () => {
    cluster?.shutdown();
    await Promise.all(instances.map((i) => i.stop()));
  });

  it(`dispatches ${JOBS} jobs exactly once each, and the survivor finishes all after the other is killed`, async () => {
    const alive = new Set<Proofpod>();
    cluster = new FakeCluster({ runMs: 200, endpoints: () => [...alive].map((i) => i.url) });
    const config = { ...fastLoops, lanes: [{ name: 'verify', trust: 'trusted' as const, concurrency: 100 }] };
    const a = await startInstance(db.url, config, { substrate: cluster });
    const b = await startInstance(db.url, config, { substrate: cluster });
    instances.push(a, b);
    alive.add(a).add(b);

    // Submit through both replicas' APIs, as a load balancer would spread clients.
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          call((k % 2 ? a : b).url, 'POST', '/v1/jobs', { token, body: jobRequest({ labels: { n: String(i + k) } }) }),
        ),
      );
      for (const r of batch) {
        expect(r.status).toBe(201);
        ids.push(r.body.id);
      }
    }

    await waitFor('300 attempts to be created', async () => cluster.created.length >= 300);
    const [heldByA] = await db.sql<{ n: number }[]>`select count(*)::int as n from claims where holder = ${a.holder}`;
    alive.delete(a);
    await a.crash();
    const crashedAt = new Date();

    await waitFor(
      `all ${JOBS} jobs to reach a final state`,
      async () => {
        const [row] = await db.sql<{ n: number }[]>`
          select count(*)::int as n from jobs where state in ('verified', 'rejected', 'error', 'timed_out', 'cancelled')`;
        return row?.n === JOBS;
      },
      90_000,
      250,
    );

    // Every job verified, through exactly one attempt each.
    const states = await db.sql<{ state: string; n: number }[]>`select state, count(*)::int as n from jobs group by state`;
    expect(states).toEqual([{ state: 'verified', n: JOBS }]);
    const [attempts] = await db.sql<{ n: number; maxNo: number }[]>`select count(*)::int as n, max(attempt_no) as max_no from attempts`;
    expect(attempts).toEqual({ n: JOBS, maxNo: 1 });

    // The cluster saw each attempt created exactly once: none lost, none run twice.
    expect(cluster.created).toHaveLength(JOBS);
    expect(new Set(cluster.created).size).toBe(JOBS);
    expect(cluster.duplicateCreates).toEqual([]);
    const [evidence] = await db.sql<{ n: number }[]>`select count(*)::int as n from evidence`;
    expect(evidence?.n).toBe(JOBS);

    // The kill did hit attempts in flight, and B took them over.
    expect(heldByA?.n).toBeGreaterThan(0);
    const takeovers = await b.metrics.takeovers.get();
    expect(takeovers.values.reduce((sum, v) => sum + v.value, 0)).toBeGreaterThan(0);

    // Fencing: each job reached exactly one final state, and the dead replica wrote nothing after its kill.
    const finals = await db.sql<{ jobId: string; n: number }[]>`
      select job_id, count(*)::int as n from events
      where attempt_no is null and to_state in ('verified', 'rejected', 'error', 'timed_out', 'cancelled')
      group by job_id having count(*) <> 1`;
    expect(finals).toEqual([]);
    const [lateWrites] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from events where actor = ${a.holder} and at > ${crashedAt}`;
    expect(lateWrites?.n).toBe(0);
    const [leftover] = await db.sql<{ n: number }[]>`select count(*)::int as n from claims`;
    expect(leftover?.n).toBe(0);
  });
});
