import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Sql } from './database/connect.js';
import { type LaneStats, laneStats, openJobCounts } from './store/lanes/lane-stats.js';

/** One registry per scheduler instance, so that two instances in one process do not collide. */
export function createMetrics(sql: Sql, lanes: readonly string[] = []) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'proofpod_process_' });
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
  return { registry, submitted, dispatchLatency, attemptsStarted, attemptsEnded, staleWrites, takeovers };
}
export type Metrics = ReturnType<typeof createMetrics>;
