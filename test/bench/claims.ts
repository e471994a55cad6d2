/**
 * Claim-throughput benchmark (`npm run bench`): raw claims per second with two concurrent claimers,
 * and submit → dispatched latency through the real API and dispatch loop. The substrate here is a
 * no-op stand-in that accepts every start at once, so the figures are the scheduler's own cost.
 * Results replace the marked section of docs/benchmarks.md.
 */
import pino from 'pino';
import { startProofpod } from '../../scheduler/app.js';
import { parseConfig } from '../../scheduler/config.js';
import { type Sql, connect } from '../../scheduler/database/connect.js';
import { DuplicateError } from '../../scheduler/errors.js';
import { claimAttempts } from '../../scheduler/store/claims/claim-attempts.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import type { AttemptLaunch, AttemptStatus, Substrate } from '../../scheduler/substrate/substrate.js';
import { openBenchDatabase } from './database.js';
import { machine, percentile, writeSection, runAsMain } from './report.js';

const CLAIM_JOBS = Number(process.env.BENCH_CLAIM_JOBS ?? 20_000);
const LATENCY_JOBS = Number(process.env.BENCH_LATENCY_JOBS ?? 2_000);
const SUBMIT_RATE = Number(process.env.BENCH_SUBMIT_RATE ?? 200); // jobs per second

class InstantSubstrate implements Substrate {
  readonly kind = 'bench-instant';
  private readonly names = new Set<string>();
  async start(launch: AttemptLaunch) {
    if (this.names.has(launch.name)) throw new DuplicateError(launch.name);
    this.names.add(launch.name);
  }
  async observe(name: string): Promise<AttemptStatus | undefined> {
    return this.names.has(name) ? { phase: 'running' } : undefined;
  }
  async list() {
    return [];
  }
  async stop(name: string) {
    this.names.delete(name);
  }
  async ping() {}
}

export interface ClaimFigures {
  claimed: number;
  claimsPerSecond: number;
  /** Submit → dispatched, sorted, in ms. */
  latencies: number[];
  dispatchIntervalSeconds: number;
}

/**
 * Both measures on the database at `url` (its tables are emptied first): `claimJobs` queued jobs
 * claimed by two claimers, and `latencyJobs` submitted at `submitRate` per second through the API.
 * Also the tiny run of test/bench-claims.test.ts.
 */
export async function measureClaims(options: {
  url: string;
  sql: Sql;
  home: string;
  claimJobs: number;
  latencyJobs: number;
  submitRate: number;
}): Promise<ClaimFigures> {
  const { url, sql, home, claimJobs, latencyJobs, submitRate } = options;
  const log = pino({ level: 'warn' });
  await sql`truncate claims, upload_credentials, evidence, attempt_logs, attempts, jobs, api_tokens, submitters cascade`.catch(() => {});
  const token = await createSubmitterToken(sql, { id: 'bench', trust: 'trusted', lanes: ['*'], roles: [] });

  // 1. Raw claims: claimJobs queued, two claimers taking batches of 50 until the queue is empty.
  process.stderr.write(`queueing ${claimJobs} jobs…\n`);
  await sql`
    insert into jobs (submitter_id, source_url, commit_sha, prover, targets, lane, request_hash, state, state_actor)
    select 'bench', 'https://example.org/p.git', repeat('a', 40), 'coq', '{A.v}', 'verify', '\\x00', 'queued', 'bench'
    from generate_series(1, ${claimJobs})`;
  const claimers = [connect(url, { max: 1 }), connect(url, { max: 1 })];
  const started = performance.now();
  const counts = await Promise.all(
    claimers.map(async (claimer, i) => {
      let total = 0;
      for (;;) {
        const batch = await claimAttempts(claimer, {
          lane: 'verify',
          concurrency: 1_000_000,
          limit: 50,
          holder: `bench-${i}`,
          ttlSeconds: 60,
          deadlineSeconds: 3600,
        });
        if (batch.length === 0) return total;
        total += batch.length;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(claimers.map((c) => c.end()));
  const claimed = counts.reduce((a, b) => a + b, 0);
  process.stderr.write(`claimed ${claimed} in ${seconds.toFixed(2)} s\n`);

  // 2. Submit → dispatched through the API and the dispatch loop, at a steady submission rate.
  await sql`truncate claims, upload_credentials, evidence, attempt_logs, attestations, attempts, jobs`;
  const config = parseConfig({
    databaseUrl: url,
    port: 0,
    home,
    logLevel: 'warn',
    lanes: [{ name: 'verify', trust: 'trusted', concurrency: 10_000 }],
    // The stand-in substrate never ends an attempt: no quota may hold the load back.
    quotas: { maxQueued: 1_000_000, maxRunning: 1_000_000 },
  });
  const proofpod = await startProofpod(config, { substrate: new InstantSubstrate(), log, print: () => {} });
  try {
    const body = JSON.stringify({
      source: { url: 'https://example.org/p.git', commit: 'b'.repeat(40) },
      prover: 'coq',
      targets: ['A.v'],
      lane: 'verify',
      labels: { bench: 'latency' },
    });
    const submitStart = performance.now();
    for (let i = 0; i < latencyJobs; i++) {
      const due = submitStart + (i * 1000) / submitRate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await fetch(`${proofpod.url}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      }).then((response) => response.json());
    }
    const deadline = Date.now() + 60_000;
    let latencies: number[] = [];
    while (Date.now() < deadline) {
      const rows = await sql<{ ms: number }[]>`
        select extract(epoch from (a.started_at - j.created_at)) * 1000 as ms
        from jobs j join attempts a on a.job_id = j.id
        where j.labels @> '{"bench":"latency"}' and a.started_at is not null`;
      latencies = rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
      if (latencies.length === latencyJobs) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (latencies.length !== latencyJobs) throw new Error(`only ${latencies.length} of ${latencyJobs} jobs were dispatched`);
    return { claimed, claimsPerSecond: claimed / seconds, latencies, dispatchIntervalSeconds: config.dispatch.intervalSeconds };
  } finally {
    await proofpod.stop();
  }
}

async function main() {
  const db = await openBenchDatabase('claims', pino({ level: 'warn' }));
  try {
    const f = await measureClaims({
      url: db.url,
      sql: db.sql,
      home: db.home,
      claimJobs: CLAIM_JOBS,
      latencyJobs: LATENCY_JOBS,
      submitRate: SUBMIT_RATE,
    });
    const result = [
      `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench\` on ${machine()}, Postgres ${db.postgres}.`,
      '',
      '| measure | value |',
      '|---|---|',
      `| claims/s (2 claimers, batches of 50, ${f.claimed} queued jobs; each claim creates attempt + lease) | ${Math.round(f.claimsPerSecond)} |`,
      `| submit → dispatched p50 (${LATENCY_JOBS} jobs at ${SUBMIT_RATE}/s through the API, dispatch interval ${f.dispatchIntervalSeconds} s, LISTEN/NOTIFY on) | ${percentile(f.latencies, 50).toFixed(1)} ms |`,
      `| submit → dispatched p99 | ${percentile(f.latencies, 99).toFixed(1)} ms |`,
      `| submit → dispatched max | ${f.latencies.at(-1)!.toFixed(1)} ms |`,
    ].join('\n');
    process.stdout.write(`${result}\n`);
    await writeSection('claims', result);
  } finally {
    await db.close();
  }
}

runAsMain(import.meta.url, main);
