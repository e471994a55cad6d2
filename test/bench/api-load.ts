/**
 * API load benchmark (`npm run bench:api`): proofpod, API only on Postgres, under a bounded load
 * from a second process (autocannon on loopback, test/bench/api-load-client.mjs): submissions
 * (POST /v1/jobs) and reads of a job (GET /v1/jobs/{id}), each for a fixed time with a fixed number
 * of connections. Reports requests per second, p50/p99 latency and the answers by status class; a
 * 5xx fails the benchmark. The result replaces the marked section of docs/benchmarks.md;
 * test/bench-api-load.test.ts runs it for a second so that it cannot rot.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import pino from 'pino';
import { startProofpod } from '../../scheduler/app.js';
import { parseConfig } from '../../scheduler/config.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import { openBenchDatabase } from './database.js';
import { machine, runAsMain, writeSection } from './report.js';

export interface LoadFigures {
  requests: number;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  status2xx: number;
  status4xx: number;
  status5xx: number;
  errors: number;
  timeouts: number;
}

export interface ApiLoadFigures {
  connections: number;
  durationSeconds: number;
  submit: LoadFigures;
  get: LoadFigures;
}

const CLIENT = path.resolve('test/bench/api-load-client.mjs');

function load(settings: Record<string, unknown>): Promise<LoadFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLIENT, JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as LoadFigures) : reject(new Error(`the load client exited ${code}: ${out.slice(0, 500)}`)),
    );
  });
}

/** Loads the API of a proofpod on `databaseUrl` for `durationSeconds` per route with `connections`. */
export async function measureApiLoad(options: {
  databaseUrl: string;
  durationSeconds: number;
  connections: number;
}): Promise<ApiLoadFigures> {
  const config = parseConfig({
    port: 0,
    logLevel: 'silent',
    databaseUrl: options.databaseUrl,
    substrate: 'none',
    // Every submission stays queued (no substrate): the queue quota must not be what answers.
    quotas: { maxQueued: 100_000_000 },
  });
  const proofpod = await startProofpod(config, { log: pino({ level: 'silent' }), print: () => {} });
  try {
    const token = await createSubmitterToken(proofpod.sql, { id: 'bench-api', trust: 'trusted', lanes: ['*'], roles: [] });
    const body = {
      source: { url: 'https://example.org/proofs.git', commit: 'a'.repeat(40) },
      prover: 'coq',
      targets: ['Arith.v'],
      lane: 'verify',
      labels: { bench: 'api-load' },
    };
    const submit = await load({ kind: 'submit', url: proofpod.url, token, body, ...options });
    const ids = (await proofpod.sql<{ id: string }[]>`select id from jobs order by seq desc limit 1000`).map((r) => r.id);
    const get = await load({ kind: 'get', url: proofpod.url, token, ids, ...options });
    for (const [route, figures] of [
      ['POST /v1/jobs', submit],
      ['GET /v1/jobs/{id}', get],
    ] as const) {
      if (figures.status5xx > 0) throw new Error(`${route} answered ${figures.status5xx} server errors under load`);
      if (figures.requests === 0) throw new Error(`${route} answered nothing`);
    }
    return { connections: options.connections, durationSeconds: options.durationSeconds, submit, get };
  } finally {
    await proofpod.stop();
  }
}

function report(f: ApiLoadFigures, context: { date: string; machine: string; postgres: string }): string {
  const row = (route: string, l: LoadFigures) =>
    `| ${route} | ${Math.round(l.requestsPerSecond)} | ${l.latencyP50Ms} ms | ${l.latencyP99Ms} ms | ${l.latencyMaxMs} ms | ${l.status2xx} / ${l.status4xx} / ${l.status5xx} | ${l.errors + l.timeouts} |`;
  return [
    `Measured ${context.date} with \`npm run bench:api\` on ${context.machine}, Postgres ${context.postgres}; autocannon in a second process on loopback, ${f.connections} connections, ${f.durationSeconds} s per route, the scheduler API only (no substrate: every submission stays queued).`,
    '',
    '| route | requests/s | p50 | p99 | max | 2xx / 4xx / 5xx | errors |',
    '|---|---|---|---|---|---|---|',
    row('`POST /v1/jobs` (a new job each)', f.submit),
    row('`GET /v1/jobs/{id}` (the jobs just submitted, in turn)', f.get),
  ].join('\n');
}

runAsMain(import.meta.url, async () => {
  const log = pino({ level: 'warn' });
  const db = await openBenchDatabase('api-load', log);
  try {
    const durationSeconds = Number(process.env.BENCH_SECONDS ?? 10);
    const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
    const figures = await measureApiLoad({ databaseUrl: db.url, durationSeconds, connections });
    const text = report(figures, { date: new Date().toISOString().slice(0, 10), machine: machine(), postgres: db.postgres });
    await writeSection('api-load', text);
    process.stdout.write(`${text}\n`);
  } finally {
    await db.close();
  }
});
