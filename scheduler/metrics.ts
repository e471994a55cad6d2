import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Sql } from './database/connect.js';
import { type LaneStats, laneStats, openJobCounts } from './store/lanes/lane-stats.js';
import { type ProverHealth, holdsBack, proverHealth } from './store/provers/prover-health.js';

/** One registry per scheduler instance, so that two instances in one process do not collide. */
export function createMetrics(sql: Sql, lanes: readonly string[] = [], provers: readonly { name: string; image: string }[] = []) {
  const registry = new Registry();
  // Under their standard names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, …), the ones
  // Node.js dashboards and alerts look for; a replica is told apart by its scrape target's labels.
  collectDefaultMetrics({ register: registry });
  const submitted = new Counter({
    name: 'proofpod_jobs_submitted_total',
    help: 'Jobs accepted by the API',
    labelNames: ['lane', 'prover'] as const,
    registers: [registry],
  });
  const dispatchLatency = new Histogram({
    name: 'proofpod_dispatch_latency_seconds',
    help: 'From submission to the first attempt started in the substrate',
    labelNames: ['lane'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const attemptsStarted = new Counter({
    name: 'proofpod_attempts_started_total',
    help: 'Attempts created in the substrate',
    labelNames: ['lane', 'prover'] as const,
    registers: [registry],
  });
  const attemptsEnded = new Counter({
    name: 'proofpod_attempts_ended_total',
    help: 'Attempts ended, by the job state they left behind',
    labelNames: ['lane', 'prover', 'state'] as const,
    registers: [registry],
  });
  // A job's end, counted once by the replica that ended it (finishAttempt, or the API for a cancel).
  const verdicts = new Counter({
    name: 'proofpod_verdicts_total',
    help: 'Jobs ended, by the final state they ended in (verified, rejected, error, timed_out, cancelled)',
    labelNames: ['lane', 'prover', 'outcome'] as const,
    registers: [registry],
  });
  const attemptPhaseSeconds = new Histogram({
    name: 'proofpod_attempt_phase_seconds',
    help: "Duration of each phase of a finished attempt (fetch, build, check, upload), from its pod's container timestamps",
    labelNames: ['lane', 'prover', 'phase'] as const,
    // From a small proof's check (tens of milliseconds) to the verify lane's default deadline, an hour; longer ones count in +Inf.
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600],
    registers: [registry],
  });
  const staleWrites = new Counter({
    name: 'proofpod_stale_writes_total',
    help: 'Writes refused because the attempt was no longer held at the writer epoch',
    registers: [registry],
  });
  const takeovers = new Counter({
    name: 'proofpod_claim_takeovers_total',
    help: 'Expired leases taken over by the reaper',
    labelNames: ['action'] as const,
    registers: [registry],
  });
  // Read from Postgres at scrape time: the database, not this replica, knows the whole queue.
  new Gauge({
    name: 'proofpod_jobs',
    help: 'Jobs by lane and state (non-final states only)',
    labelNames: ['lane', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await openJobCounts(sql)) this.set({ lane: row.lane, state: row.state }, row.n);
    },
  });
  // Per lane, from Postgres at scrape time as well. A scrape collects the gauges together, so they
  // share one read of the lanes' figures.
  let current: Promise<LaneStats[]> | undefined;
  const scrapedLaneStats = () => (current ??= laneStats(sql, lanes).finally(() => (current = undefined)));
  const laneGauge = (name: string, help: string, pick: (s: LaneStats) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['lane'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const stats of await scrapedLaneStats()) {
          const value = pick(stats);
          if (value !== null) this.set({ lane: stats.lane }, value);
        }
      },
    });
  laneGauge('proofpod_lane_queued', 'Jobs queued in the lane', (s) => s.queued);
  laneGauge('proofpod_lane_running', 'Attempts in flight in the lane', (s) => s.running);
  laneGauge(
    'proofpod_lane_oldest_waiting_seconds',
    'Age of the longest-waiting queued job of the lane (absent when none waits)',
    (s) => s.oldestWaitingSeconds,
  );
  // From Postgres at scrape time, as every replica sees the same health (docs/operations.md, "Prover
  // health"); the two gauges of a scrape share one read, as the lane gauges do.
  let healthRead: Promise<ProverHealth[]> | undefined;
  const scrapedProverHealth = () => (healthRead ??= proverHealth(sql).finally(() => (healthRead = undefined)));
  new Gauge({
    name: 'proofpod_prover_healthy',
    help: 'Whether the prover profile is healthy (1) or unhealthy, its jobs waiting (0)',
    labelNames: ['prover'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const health = new Map((await scrapedProverHealth()).map((h) => [h.prover, h]));
      for (const { name, image } of provers) this.set({ prover: name }, holdsBack(health.get(name), image) ? 0 : 1);
    },
  });
  new Gauge({
    name: 'proofpod_prover_consecutive_failures',
    help: "Failures in a row of the prover profile's own image or containers (a verdict resets it)",
    labelNames: ['prover'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const failures = new Map((await scrapedProverHealth()).map((h) => [h.prover, h.consecutiveFailures]));
      for (const { name } of provers) this.set({ prover: name }, failures.get(name) ?? 0);
    },
  });
  return {
    registry,
    submitted,
    dispatchLatency,
    attemptsStarted,
    attemptsEnded,
    verdicts,
    attemptPhaseSeconds,
    staleWrites,
    takeovers,
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
