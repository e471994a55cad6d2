/**
 * Dispatch decisions on a real Postgres (docs/architecture.md, "Claims and fencing"): a flood of untrusted work never starves a trusted
 * lane, and inside a lane a burst of one submitter does not push the others back.
 */
import { describe, expect, it } from 'vitest';
import type { Sql } from '../scheduler/database/connect.js';
import { dispatchCycle } from '../scheduler/replica/dispatcher.js';
import { claimAttempts } from '../scheduler/store/claims/claim-attempts.js';
import { createTestDatabase, createToken, queueJobs } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { replicaContext } from './support/instance.js';

const db = await createTestDatabase();
for (const [id, trust] of [
  ['flood', 'untrusted'],
  ['merge', 'trusted'],
  ['a', 'trusted'],
  ['b', 'trusted'],
  ['c', 'trusted'],
  ['d', 'trusted'],
] as const) {
  await createToken(db.sql, { id, trust });
}

/** Queues `n` jobs of one submitter in one statement; returns nothing (ids are not needed). */
async function queue(sql: Sql, submitter: string, lane: string, n: number, priority = 0): Promise<void> {
  await queueJobs(sql, { submitter, lane, priority }, n);
}

/** One claim batch in `lane`: the submitters of the claimed jobs, sorted, as one string. */
async function claimBatch(lane: string, limit = 10): Promise<string> {
  const batch = await claimAttempts(db.sql, { lane, concurrency: 100_000, limit, holder: 'test', ttlSeconds: 600, deadlineSeconds: 600 });
  const ids = batch.map((a) => a.jobId);
  const rows = await db.sql<{ submitterId: string }[]>`select submitter_id from jobs where id = any(${ids})`;
  return rows
    .map((r) => r.submitterId.toUpperCase())
    .sort()
    .join('');
}

describe('dispatch decisions', () => {
  it('dispatches a trusted verify job within one cycle while 5,000 untrusted jobs wait in a full intake lane', async () => {
    await queue(db.sql, 'flood', 'intake', 5_000);
    const cluster = new FakeCluster({ runMs: 600_000, upload: false });
    const ctx = replicaContext(db.url, db.sql, cluster, 'dispatcher');
    try {
      // Fill intake to its cap (4).
      expect((await dispatchCycle(ctx)).claimed).toBe(4);
      const [mergeId] = await queueJobs(db.sql, { submitter: 'merge', commit: 'b'.repeat(40) });
      const merge = { id: mergeId! };
      const cycle = await dispatchCycle(ctx);
      expect(cycle.claimed).toBe(1);
      const [state] = await db.sql<{ state: string }[]>`select state from jobs where id = ${merge!.id}`;
      expect(['dispatching', 'running']).toContain(state!.state);
      const lanes = await db.sql<{ lane: string; n: number }[]>`
        select lane, count(*)::int as n from attempts where state in ('dispatching', 'running') group by lane order by lane`;
      expect(lanes).toEqual([
        { lane: 'intake', n: 4 },
        { lane: 'verify', n: 1 },
      ]);
    } finally {
      cluster.shutdown();
      await db.sql`update jobs set state = 'cancelled', state_reason = 'test over', state_actor = 'test', finished_at = now() where state not in ('verified', 'rejected', 'error', 'timed_out', 'cancelled')`;
      await db.sql`update attempts set state = 'cancelled', state_reason = 'test over', state_actor = 'test', finished_at = now() where state in ('dispatching', 'running')`;
      await db.sql`delete from claims`;
    }
  });

  it("dispatches all of B's 20 jobs before A's 200th further dispatch, though A queued 2,000 first", async () => {
    // A has been dispatching for a while: 100 of its 2,000 are out.
    await queue(db.sql, 'a', 'replay', 2_000);
    for (let i = 0; i < 10; i++) expect(await claimBatch('replay')).toBe('AAAAAAAAAA');
    await queue(db.sql, 'b', 'replay', 20);
    const order: string[] = [];
    let bLeft = 20;
    let aFurther = 0;
    while (bLeft > 0) {
      const batch = await claimBatch('replay');
      order.push(batch);
      bLeft -= batch.split('').filter((s) => s === 'B').length;
      if (bLeft > 0 || batch.includes('A')) aFurther += batch.split('').filter((s) => s === 'A').length;
    }
    // B's jobs go first: A's recent usage counts against it, B has none.
    expect(order).toEqual(['BBBBBBBBBB', 'BBBBBBBBBB']);
    expect(aFurther).toBeLessThan(200);
    expect(await claimBatch('replay')).toBe('AAAAAAAAAA');
  });

  it('interleaves two submitters with no history, whatever their queue depths, and lets priority go first', async () => {
    await queue(db.sql, 'c', 'audit', 2_000);
    await queue(db.sql, 'd', 'audit', 20);
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push(await claimBatch('audit'));
    expect(order).toEqual(['CCCCCDDDDD', 'CCCCCDDDDD', 'CCCCCDDDDD', 'CCCCCDDDDD']);
    // Priority inside the lane comes before fairness: C's urgent job goes ahead of everything.
    await queue(db.sql, 'c', 'audit', 1, 10);
    const [top] = await claimAttempts(db.sql, {
      lane: 'audit',
      concurrency: 100_000,
      limit: 1,
      holder: 'test',
      ttlSeconds: 600,
      deadlineSeconds: 600,
    });
    const [job] = await db.sql<{ priority: number }[]>`select priority from jobs where id = ${top!.jobId}`;
    expect(job!.priority).toBe(10);
  });
});
