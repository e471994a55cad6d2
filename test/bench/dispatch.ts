/**
 * Dispatch-decision benchmark (`npm run bench:dispatch`): how many dispatch decisions per second the
 * fair claim query makes with 1,000, 10,000 and 100,000 queued jobs across 4 lanes and 50
 * submitters, in a steady state: each claimed attempt ends right after its batch (outside the timed
 * part), so attempts in flight stay at one batch, as in a cluster whose lanes keep up. A decision is
 * one job claimed: chosen by priority, decayed usage and rank, moved to dispatching, an attempt and
 * its lease created, usage charged. Results replace the marked section of docs/benchmarks.md.
 */
import pino from 'pino';
import type { Sql } from '../../scheduler/database/connect.js';
import { claimAttempts } from '../../scheduler/store/claims/claim-attempts.js';
import { openBenchDatabase } from './database.js';
import { machine, percentile, writeSection, runAsMain } from './report.js';

const SIZES = (process.env.BENCH_QUEUE_SIZES ?? '1000,10000,100000').split(',').map(Number);
const LANES = ['intake', 'verify', 'audit', 'replay'];
const SUBMITTERS = 50;
const BATCH = 50;
/** Decisions timed per run: the same at every size (half of the smallest queue), so sizes compare. */
const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 500);
/** Runs per size, each on a freshly queued and analysed table; the median run is reported. */
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

async function main() {
  const db = await openBenchDatabase('dispatch', pino({ level: 'warn' }));
  const { sql } = db;
  const rows: string[] = [];
  try {
    for (const size of SIZES) {
      const runs: { perSecond: number; batchMs: number[] }[] = [];
      for (let run = 0; run < RUNS; run++) runs.push(await measure(sql, size));
      runs.sort((a, b) => a.perSecond - b.perSecond);
      const median = runs[Math.floor(runs.length / 2)]!;
      const sorted = [...median.batchMs].sort((a, b) => a - b);
      process.stderr.write(`${size} queued: ${runs.map((r) => r.perSecond.toFixed(0)).join(', ')} decisions/s\n`);
      rows.push(
        `| ${size.toLocaleString('en-US')} | ${Math.round(median.perSecond).toLocaleString('en-US')} | ${Math.round(runs[0]!.perSecond).toLocaleString('en-US')}–${Math.round(runs.at(-1)!.perSecond).toLocaleString('en-US')} | ${percentile(sorted, 50).toFixed(1)} ms | ${percentile(sorted, 99).toFixed(1)} ms |`,
      );
    }
    const result = [
      `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench:dispatch\` on ${machine()}, Postgres ${db.postgres}; 4 lanes, ${SUBMITTERS} submitters, 3 priorities, batches of ${BATCH}, one claimer.`,
      '',
      `${RUNS} runs of ${DECISIONS} decisions per size; the median run is shown, with the range of all runs.`,
      '',
      '| queued jobs | decisions/s (median run) | range | batch of 50 p50 | batch p99 |',
      '|---|---|---|---|---|',
      ...rows,
    ].join('\n');
    process.stdout.write(`${result}\n`);
    await writeSection('dispatch', result);
  } finally {
    await db.close();
  }
}

/** One run: a fresh queue of `size` jobs, then `decisions` claimed in batches, round the lanes. Also the tiny run of test/bench-dispatch.test.ts. */
export async function measure(sql: Sql, size: number, decisions = DECISIONS): Promise<{ perSecond: number; batchMs: number[] }> {
  await sql`truncate claims, upload_credentials, evidence, attempt_logs, attempts, jobs, lane_usage, api_tokens, submitters cascade`;
  await sql`
    insert into submitters (id, trust, lanes, roles)
    select 'submitter-' || i, 'trusted', '{*}', '{}' from generate_series(1, ${SUBMITTERS}) as i`;
  // Spread over lanes and submitters at random, with a few priorities, in submission order.
  await sql`
    insert into jobs (submitter_id, source_url, commit_sha, prover, targets, lane, priority, request_hash, state, state_actor)
    select 'submitter-' || (1 + floor(random() * ${SUBMITTERS}))::int, 'https://example.org/p.git', repeat('a', 40), 'coq', '{A.v}',
           (${LANES}::text[])[1 + floor(random() * ${LANES.length})::int], (floor(random() * 3))::int, '\\x00', 'queued', 'bench'
    from generate_series(1, ${size})`;
  await sql`vacuum analyze jobs`;
  const batchMs: number[] = [];
  let made = 0;
  let lane = 0;
  while (made < decisions) {
    const started = performance.now();
    const batch = await claimAttempts(sql, {
      lane: LANES[lane++ % LANES.length]!,
      concurrency: 1_000_000,
      limit: BATCH,
      holder: 'bench',
      ttlSeconds: 600,
      deadlineSeconds: 3600,
      maxRunning: 1_000,
      maxRunningBySubmitter: {},
      usageHalfLifeSeconds: 600,
    });
    batchMs.push(performance.now() - started);
    made += batch.length;
    // The attempts end at once (untimed): in flight stays at one batch.
    const ids = batch.map((a) => a.attemptId);
    await sql`delete from claims where attempt_id = any(${ids})`;
    await sql`update attempts set state = 'succeeded', state_reason = 'bench', state_actor = 'bench', finished_at = now() where id = any(${ids})`;
  }
  return { perSecond: made / (batchMs.reduce((a, b) => a + b, 0) / 1000), batchMs };
}

runAsMain(import.meta.url, main);
