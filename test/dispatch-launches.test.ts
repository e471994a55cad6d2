/**
 * Dispatch cycles and the launch pool on a real Postgres (scheduler/replica/dispatcher.ts,
 * launch-pool.ts): a cycle hands its claims over and returns, so one slow create holds up one slot
 * and not the next cycle; the creates in flight stay within `dispatch.launchConcurrency`; a failed
 * start still ends its attempt through finishAttempt. The substrate is a FAKE that runs nothing.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../scheduler/config.js';
import { DuplicateError } from '../scheduler/errors.js';
import { createMetrics } from '../scheduler/metrics.js';
import { type ReplicaContext, createReplicaContext } from '../scheduler/replica/context.js';
import { dispatchCycle } from '../scheduler/replica/dispatcher.js';
import { Replica } from '../scheduler/replica/replica.js';
import type { AttemptLaunch, AttemptStatus, ObservedAttempt, Substrate } from '../scheduler/substrate/substrate.js';
import { createTestDatabase, createToken, queueJobs } from './support/database.js';
import { fastLoops, testSigningKey } from './support/instance.js';

const db = await createTestDatabase();
await createToken(db.sql, { id: 'alice' });

/** A FAKE substrate that runs nothing: it records creates, and holds those `hold` names until released. */
class HoldingSubstrate implements Substrate {
  readonly kind = 'holding-fake';
  readonly created: string[] = [];
  creating = 0;
  mostCreating = 0;
  private readonly held = new Map<string, () => void>();
  constructor(private readonly options: { hold?: (launch: AttemptLaunch) => boolean; fail?: (launch: AttemptLaunch) => boolean } = {}) {}

  async start(launch: AttemptLaunch): Promise<void> {
    if (this.created.includes(launch.name)) throw new DuplicateError(`${launch.name} exists`);
    this.creating++;
    this.mostCreating = Math.max(this.mostCreating, this.creating);
    try {
      if (this.options.hold?.(launch)) await new Promise<void>((resolve) => this.held.set(launch.name, resolve));
      else await new Promise((resolve) => setTimeout(resolve, 5));
      if (this.options.fail?.(launch)) throw new Error('the API server refused the Job');
      this.created.push(launch.name);
    } finally {
      this.creating--;
    }
  }

  get holding(): number {
    return this.held.size;
  }

  release(): void {
    for (const resolve of this.held.values()) resolve();
    this.held.clear();
  }

  async observe(name: string): Promise<AttemptStatus | undefined> {
    return this.created.includes(name) ? { phase: 'running' } : undefined;
  }
  async list(): Promise<ObservedAttempt[]> {
    return this.created.map((name) => ({ name, status: { phase: 'running' } }));
  }
  async stop(): Promise<void> {}
  async ping(): Promise<void> {}
}

function contextFor(substrate: Substrate, launchConcurrency = 16): ReplicaContext {
  const config = parseConfig({
    ...fastLoops,
    databaseUrl: db.url,
    dispatch: { ...fastLoops.dispatch, launchConcurrency },
    lanes: [{ name: 'verify', trust: 'trusted', concurrency: 1000 }],
  });
  return createReplicaContext({
    sql: db.sql,
    holder: 'dispatcher',
    log: pino({ level: 'silent' }),
    substrate,
    config,
    metrics: createMetrics(db.sql),
    serverUrl: 'http://127.0.0.1:9',
    signingKey: testSigningKey,
  });
}

/** Attempts by state, but for those an earlier test cancelled. */
async function attemptStates(): Promise<Record<string, number>> {
  const rows = await db.sql<
    { state: string; n: number }[]
  >`select state, count(*)::int as n from attempts where state <> 'cancelled' group by state`;
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

afterEach(async () => {
  await db.sql`update jobs set state = 'cancelled', state_reason = 'test over', state_actor = 'test', finished_at = now() where state not in ('verified', 'rejected', 'error', 'timed_out', 'cancelled')`;
  await db.sql`update attempts set state = 'cancelled', state_reason = 'test over', state_actor = 'test', finished_at = now() where state in ('dispatching', 'running')`;
  await db.sql`delete from claims`;
});

describe('dispatch cycles and the launch pool', () => {
  it('returns while a create is still in flight, and the next cycle claims meanwhile', async () => {
    let first: string | undefined;
    // Only the first launch is held in its create.
    const substrate = new HoldingSubstrate({
      hold: (launch) => {
        first ??= launch.name;
        return first === launch.name;
      },
    });
    const ctx = contextFor(substrate);
    await queueJobs(db.sql, { submitter: 'alice' }, 3);
    expect((await dispatchCycle(ctx)).claimed).toBe(3);
    await expect.poll(() => substrate.created.length).toBe(2);
    expect(substrate.holding).toBe(1);

    // The slow create is still in flight: a second cycle claims and launches the new jobs anyway.
    await queueJobs(db.sql, { submitter: 'alice' }, 2);
    expect((await dispatchCycle(ctx)).claimed).toBe(2);
    await expect.poll(() => substrate.created.length).toBe(4);
    expect(await attemptStates()).toEqual({ dispatching: 1, running: 4 });

    substrate.release();
    await ctx.launches.drain();
    expect(await attemptStates()).toEqual({ running: 5 });
    expect(new Set(substrate.created).size).toBe(5);
  });

  it('keeps the creates in flight within dispatch.launchConcurrency, and launches every claim exactly once', async () => {
    const substrate = new HoldingSubstrate();
    const ctx = contextFor(substrate, 2);
    await queueJobs(db.sql, { submitter: 'alice' }, 20);
    let claimed = 0;
    while (claimed < 20) {
      const cycle = await dispatchCycle(ctx);
      claimed += cycle.claimed;
      // A cycle never claims past the pool's room: three launches per create slot.
      expect(ctx.launches.size).toBeLessThanOrEqual(6);
    }
    await ctx.launches.drain();
    expect(substrate.mostCreating).toBe(2);
    expect(substrate.created).toHaveLength(20);
    expect(new Set(substrate.created).size).toBe(20);
    expect(await attemptStates()).toEqual({ running: 20 });
  });

  it('a graceful stop waits for the launches earlier cycles handed over before it gives the leases back', async () => {
    const substrate = new HoldingSubstrate({ hold: () => true });
    const ctx = contextFor(substrate);
    const replica = new Replica(ctx);
    const [jobId] = await queueJobs(db.sql, { submitter: 'alice' }, 1);
    await replica.start();
    await expect.poll(() => substrate.holding).toBe(1);
    let stopped = false;
    const stopping = replica.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stopped, 'stop waits while the create is in flight').toBe(false);
    substrate.release();
    await stopping;
    // Launched and marked running before the lease went back: the next holder adopts a running attempt.
    const [attempt] = await db.sql<{ state: string }[]>`select state from attempts where job_id = ${jobId!}`;
    expect(attempt!.state).toBe('running');
    expect(substrate.created).toHaveLength(1);
  });

  it('ends an attempt whose start failed through finishAttempt: the job is queued again for a retry', async () => {
    const substrate = new HoldingSubstrate({ fail: () => true });
    const ctx = contextFor(substrate);
    const [jobId] = await queueJobs(db.sql, { submitter: 'alice' }, 1);
    expect((await dispatchCycle(ctx)).claimed).toBe(1);
    await ctx.launches.drain();
    const [attempt] = await db.sql<
      { state: string; stateReason: string }[]
    >`select state, state_reason from attempts where job_id = ${jobId!}`;
    expect(attempt).toEqual({
      state: 'failed',
      stateReason: expect.stringContaining('could not start attempt: the API server refused the Job'),
    });
    const [job] = await db.sql<{ state: string }[]>`select state from jobs where id = ${jobId!}`;
    expect(job!.state).toBe('queued');
    const [claims] = await db.sql<{ n: number }[]>`select count(*)::int as n from claims`;
    expect(claims!.n).toBe(0);
  });
});
