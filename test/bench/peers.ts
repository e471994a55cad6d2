/**
 * Peers benchmark (`npm run bench:peers`): graphile-worker and pg-boss drain N no-op jobs on the
 * same Postgres as proofpod runs N attempts through its whole lifecycle on a no-op substrate
 * (submit over HTTP, claim, start, evidence upload over HTTP, judge, verdict). Each system is
 * measured alone, one after the other: wall time, the transactions it committed (pg_stat_database)
 * and the CPU it used, in Node and in Postgres. A profiled, untimed proofpod run says where its
 * Node CPU goes. Results replace the marked section of docs/benchmarks.md.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import type { Profiler, Runtime } from 'node:inspector';
import { Session } from 'node:inspector/promises';
import { Logger as GraphileLogger, makeWorkerUtils, run as runGraphileWorker } from 'graphile-worker';
import PgBoss from 'pg-boss';
import pino from 'pino';
import { canonicalJson } from '../../contract/canonical-json.js';
import { startProofpod } from '../../scheduler/app.js';
import { parseConfig } from '../../scheduler/config.js';
import { type Sql, connect } from '../../scheduler/database/connect.js';
import { DuplicateError } from '../../scheduler/errors.js';
import { type JobState, isFinalJobState } from '../../scheduler/job-states.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import type { AttemptLaunch, AttemptStatus, ObservedAttempt, Substrate } from '../../scheduler/substrate/substrate.js';
import { FAKE_IMAGE_DIGEST, evidenceFor } from '../support/evidence.js';
import { openBenchDatabase } from './database.js';
import { machine, writeSection, runAsMain } from './report.js';

const JOBS = Number(process.env.BENCH_JOBS ?? 2_000);
/** graphile-worker's concurrency, pg-boss's `work` loops and proofpod's HTTP clients: the same for all three. */
const CONCURRENCY = 10;
/** pg-boss fetches in batches and polls (it has no NOTIFY wake-up): 0.5 s is the shortest interval it allows. */
const PGBOSS_BATCH = 50;
const PGBOSS_POLL_SECONDS = 0.5;
/** A system that completes nothing for this long has stalled: the benchmark fails instead of hanging. */
const STALL_MS = 30_000;
const PROBE_MS = 10;

export type PeerSystem = 'graphile-worker' | 'pg-boss' | 'proofpod';

export interface PeerFigures {
  system: PeerSystem;
  /** Jobs that ran to completion (proofpod: ended `verified`). */
  completed: number;
  seconds: number;
  jobsPerSecond: number;
  /** Transactions committed in the database during the run, the benchmark's own probes and reads taken out. */
  transactions: number;
  /** CPU of this Node process (the system and its load: enqueuers, HTTP clients, the stand-in reporter). */
  nodeCpuMs: number;
  /** CPU of every Postgres process; null when the server's processes cannot be read (another host, no /proc). */
  postgresCpuMs: number | null;
  /** Cores that other processes on the machine kept busy meanwhile; null without /proc/stat. A run on a busy machine is no floor. */
  otherCores: number | null;
  /** What the system does for each job, in one line. */
  perJob: string;
}

/** Self time of the profiled proofpod run, by package or proofpod directory, largest first. */
export interface ProfileShare {
  category: string;
  ms: number;
}

export interface PeersFigures {
  jobs: number;
  peers: PeerFigures[];
  /** proofpod jobs/s over graphile-worker jobs/s. */
  ratio: number;
  /** The untimed, profiled proofpod run (when asked for). */
  profile?: { totalMs: number; shares: ProfileShare[] };
}

/** A system set up and idle, its queue empty: `drain` runs the jobs through, `stop` takes it down. */
interface Started {
  drain(): Promise<Drained>;
  stop(): Promise<void>;
}

/** What one drain reports. */
interface Drained {
  completed: number;
  seconds: number;
  /** Transactions the run committed for the benchmark itself (completion probes), to take out. */
  probes: number;
}

/**
 * The three systems on the database at `databaseUrl` (migrated for proofpod; proofpod's tables are
 * emptied; graphile-worker and pg-boss install schemas of their own), `jobs` jobs each. With
 * `profile`, one more proofpod run under the CPU profiler, outside the timed ones. Also the tiny run
 * of test/bench-peers.test.ts.
 */
export async function measurePeers(options: { databaseUrl: string; jobs: number; profile?: boolean }): Promise<PeersFigures> {
  const { databaseUrl, jobs } = options;
  const meter = await TransactionMeter.open(databaseUrl);
  const peers = [
    await meter.measure('graphile-worker', () => startGraphileWorker(databaseUrl, jobs)),
    await meter.measure('pg-boss', () => startPgBoss(databaseUrl, jobs)),
    await meter.measure('proofpod', () => startProofpodRun(databaseUrl, jobs)),
  ];
  for (const peer of peers) {
    if (peer.completed !== jobs) throw new Error(`${peer.system} completed ${peer.completed} of ${jobs} jobs`);
  }
  const rate = (system: PeerSystem) => peers.find((p) => p.system === system)!.jobsPerSecond;
  const figures: PeersFigures = { jobs, peers, ratio: rate('proofpod') / rate('graphile-worker') };
  if (options.profile) figures.profile = await profileProofpod(databaseUrl, jobs);
  return figures;
}

const PER_JOB: Record<PeerSystem, string> = {
  'graphile-worker':
    'its share of one `add_jobs` INSERT for the whole batch; one fetch that locks the job (`FOR UPDATE SKIP LOCKED`), the no-op task, one DELETE; workers woken by LISTEN/NOTIFY',
  'pg-boss': `its share of one INSERT for the whole batch; its share of a fetch of up to ${PGBOSS_BATCH} (UPDATE … \`FOR UPDATE SKIP LOCKED\` RETURNING) and of one completion UPDATE of the batch; workers poll every ${PGBOSS_POLL_SECONDS} s`,
  proofpod:
    'HTTP submit (token check, request validation, job row and its event); its share of a claim (job and attempt rows, lease, events, in batches); upload credential minted; substrate start; attempt and job marked running; evidence upload over HTTP (credential check, schema validation, evidence row); the substrate observed finished and recorded; evidence read and judged; attempt closed (lease released, credentials revoked), job `verified` and its events',
};

/** graphile-worker: the runner waits, idle; the jobs are added in one `addJobs`; done when its jobs view is empty. */
async function startGraphileWorker(databaseUrl: string, jobs: number): Promise<Started> {
  const schema = 'peer_graphile_worker';
  const connectionString = withApplicationName(databaseUrl, 'bench-graphile-worker');
  const logger = new GraphileLogger(() => (level, message) => {
    if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
  });
  const utils = await makeWorkerUtils({ connectionString, schema, logger });
  await utils.migrate();
  const runner = await runGraphileWorker({
    connectionString,
    schema,
    logger,
    concurrency: CONCURRENCY,
    noHandleSignals: true,
    taskList: { noop: async () => {} },
  });
  let succeeded = 0;
  runner.events.on('job:success', () => {
    succeeded++;
  });
  return {
    drain: async () => {
      const probe = new Probe(databaseUrl);
      try {
        const started = performance.now();
        await utils.addJobs(Array.from({ length: jobs }, () => ({ identifier: 'noop', payload: {} })));
        // job:success comes before the DELETE commits: the run is over once the jobs view is empty.
        await probe.until(async (sql) => {
          const [row] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(schema)}.jobs`;
          return { done: succeeded >= jobs && row!.n === 0, progress: succeeded };
        });
        return { completed: succeeded, seconds: (performance.now() - started) / 1000, probes: probe.queries };
      } finally {
        await probe.close();
      }
    },
    stop: async () => {
      await runner.stop();
      await utils.release();
    },
  };
}

/** pg-boss: CONCURRENCY `work` loops wait, idle; the jobs are inserted in one `insert`; done when none is left before `completed`. */
async function startPgBoss(databaseUrl: string, jobs: number): Promise<Started> {
  const queue = 'noop';
  const boss = new PgBoss({ connectionString: databaseUrl, schema: 'peer_pg_boss', application_name: 'bench-pg-boss' });
  const errors: unknown[] = [];
  boss.on('error', (error) => errors.push(error));
  await boss.start();
  await boss.createQueue(queue);
  const seen = new Set<string>();
  for (let i = 0; i < CONCURRENCY; i++) {
    await boss.work(queue, { batchSize: PGBOSS_BATCH, pollingIntervalSeconds: PGBOSS_POLL_SECONDS }, async (batch) => {
      for (const job of batch) seen.add(job.id);
    });
  }
  return {
    drain: async () => {
      let sizeQueries = 0;
      const started = performance.now();
      await boss.insert(Array.from({ length: jobs }, () => ({ name: queue, data: {} })));
      // The handler's return is not the completion: pg-boss completes the batch afterwards, unawaited.
      await pollUntil(async () => {
        sizeQueries++;
        const left = await boss.getQueueSize(queue, { before: 'completed' });
        return { done: seen.size >= jobs && left === 0, progress: seen.size };
      });
      if (errors.length > 0) throw new Error(`pg-boss reported ${errors.length} error(s), the first: ${String(errors[0])}`);
      return { completed: seen.size, seconds: (performance.now() - started) / 1000, probes: sizeQueries };
    },
    stop: () => boss.stop({ graceful: true, wait: true }),
  };
}

/**
 * proofpod: a real API and replica on the no-op substrate, proofpod's tables emptied first;
 * `jobs` submissions from CONCURRENCY HTTP clients; done when every job is `verified`. Anything
 * else final fails the run.
 */
async function startProofpodRun(databaseUrl: string, jobs: number): Promise<Started> {
  const home = await mkdtemp(path.join(tmpdir(), 'proofpod-bench-peers-'));
  const setup = connect(databaseUrl, { max: 1, applicationName: 'bench-setup' });
  let token: string;
  try {
    await setup`truncate claims, upload_credentials, evidence, attempt_logs, attempts, jobs, api_tokens, submitters cascade`;
    token = await createSubmitterToken(setup, { id: 'bench', trust: 'trusted', lanes: ['*'], roles: [] });
  } finally {
    await setup.end();
  }
  const config = parseConfig({
    databaseUrl,
    port: 0,
    home,
    logLevel: 'warn',
    lanes: [{ name: 'verify', trust: 'trusted', concurrency: 10_000 }],
    // One submitter sends the whole burst: no quota may hold it back.
    quotas: { maxQueued: 1_000_000, maxRunning: 1_000_000 },
  });
  const substrate = new NoopSubstrate();
  const proofpod = await startProofpod(config, { substrate, log: pino({ level: 'warn' }), print: () => {} });
  const body = JSON.stringify({
    source: { url: 'https://example.org/p.git', commit: 'b'.repeat(40) },
    prover: 'coq',
    targets: ['A.v'],
    lane: 'verify',
  });
  const submit = async () => {
    const response = await fetch(`${proofpod.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    if (response.status !== 201) throw new Error(`submit answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };
  return {
    drain: async () => {
      const probe = new Probe(databaseUrl);
      try {
        const started = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next++ < jobs) await submit();
          }),
        );
        let verified = 0;
        await probe.until(async (sql) => {
          const rows = await sql<{ state: JobState; n: number }[]>`select state, count(*)::int as n from jobs group by state`;
          const failed = rows.filter((r) => r.state !== 'verified' && isFinalJobState(r.state));
          if (failed.length > 0) {
            const [row] = await sql<{ stateReason: string }[]>`
              select state_reason from jobs where state in ${sql(failed.map((r) => r.state))} limit 1`;
            throw new Error(`proofpod jobs ended ${failed.map((r) => `${r.state} (${r.n})`).join(', ')}: ${row?.stateReason}`);
          }
          verified = rows.find((r) => r.state === 'verified')?.n ?? 0;
          return { done: verified === jobs, progress: verified };
        });
        const seconds = (performance.now() - started) / 1000;
        if (substrate.failures.length > 0) throw new Error(`evidence uploads failed: ${substrate.failures[0]}`);
        return { completed: verified, seconds, probes: probe.queries };
      } finally {
        await probe.close();
      }
    },
    stop: async () => {
      await proofpod.stop();
      await rm(home, { recursive: true, force: true });
    },
  };
}

/**
 * A substrate whose pods run nothing: `start` records the launch, then a stand-in reporter posts
 * evidence the judge accepts, as task-pod/reporter.ts does (canonical JSON, the upload credential as
 * bearer token), and the pod ends `finished` with the exit codes and image digests that evidence
 * implies. Listeners hear of each pod once it has finished, so the watcher judges without waiting
 * for its interval.
 */
class NoopSubstrate implements Substrate {
  readonly kind = 'bench-noop';
  readonly failures: string[] = [];
  private readonly pods = new Map<string, AttemptStatus>();
  private readonly listeners = new Set<(name: string) => void>();

  async start(launch: AttemptLaunch): Promise<void> {
    if (this.pods.has(launch.name)) throw new DuplicateError(launch.name);
    this.pods.set(launch.name, { phase: 'running' });
    void this.report(launch);
  }

  private async report(launch: AttemptLaunch): Promise<void> {
    const profile = launch.profile;
    const evidence = evidenceFor(launch, {}, profile);
    let status: AttemptStatus;
    try {
      const response = await fetch(launch.uploadUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${launch.uploadCredential}`, 'content-type': 'application/json' },
        body: canonicalJson(evidence),
      });
      if (response.status !== 202) throw new Error(`${response.status} ${await response.text()}`);
      await response.arrayBuffer();
      const container = { exitCode: 0, imageDigest: profile.pins.imageDigest ?? FAKE_IMAGE_DIGEST };
      status = { phase: 'finished', check: container, build: profile.build ? container : null };
    } catch (error) {
      const reason = `evidence upload of ${launch.name} failed: ${String(error)}`;
      this.failures.push(reason);
      status = { phase: 'build_failed', reason };
    }
    if (!this.pods.has(launch.name)) return;
    this.pods.set(launch.name, status);
    for (const listener of this.listeners) listener(launch.name);
  }

  async observe(name: string): Promise<AttemptStatus | undefined> {
    return this.pods.get(name);
  }

  async list(): Promise<ObservedAttempt[]> {
    return [...this.pods].map(([name, status]) => ({ name, status }));
  }

  async stop(name: string): Promise<void> {
    this.pods.delete(name);
  }

  async ping(): Promise<void> {}

  onChange(listener: (name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Polls `check` every PROBE_MS until it says done; fails when its progress stands still for STALL_MS. */
async function pollUntil(check: () => Promise<{ done: boolean; progress: number }>): Promise<void> {
  let progress = -1;
  let movedAt = Date.now();
  for (;;) {
    const state = await check();
    if (state.done) return;
    if (state.progress !== progress) {
      progress = state.progress;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > STALL_MS) {
      throw new Error(`no progress for ${STALL_MS / 1000} s (at ${progress})`);
    }
    await new Promise((resolve) => setTimeout(resolve, PROBE_MS));
  }
}

/** A connection of the benchmark's own for completion checks; it counts its queries, which the meter takes out. */
class Probe {
  queries = 0;
  private readonly sql: Sql;

  constructor(databaseUrl: string) {
    this.sql = connect(databaseUrl, { max: 1, applicationName: 'bench-probe' });
  }

  until(check: (sql: Sql) => Promise<{ done: boolean; progress: number }>): Promise<void> {
    return pollUntil(() => {
      this.queries++;
      return check(this.sql);
    });
  }

  close(): Promise<void> {
    return this.sql.end();
  }
}

/** `url` with `application_name` set, so the system's connections are told apart in pg_stat_activity. */
function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', name);
  return parsed.toString();
}

/** The benchmark's own connections, which a read waits to see gone so that their counts are in. */
const HARNESS_APPS = new Set(['bench-meter', 'bench-setup', 'bench-probe']);

/** One read of the meter: the counters, and the other client backends of the database at that moment. */
interface Reading {
  committed: number;
  postgresCpuMs: number | null;
  machineBusyMs: number | null;
  /** performance.now() when the counters were read. */
  at: number;
  present: Set<number>;
  /** Transactions this read committed itself (its polls of pg_stat_activity and the read), counted once it has gone. */
  own: number;
}

/**
 * Transactions committed in the database (`pg_stat_database.xact_commit`) and CPU used around one
 * system's run, its teardown included. A backend reports its counts to the statistics now and then,
 * and always when it exits: every read is made on a connection of its own, the last one once every
 * backend the system opened has gone. What the reads commit themselves, and the run's completion
 * probes, are taken out. A system's set-up (migrations, start) is done before the first read; what
 * of it a live backend had not reported yet lands in the run: a few dozen transactions at most.
 */
class TransactionMeter {
  private constructor(
    private readonly databaseUrl: string,
    /** Transactions a read commits besides its own queries: the driver's type lookup on connecting. */
    private readonly perConnection: number,
  ) {}

  static async open(databaseUrl: string): Promise<TransactionMeter> {
    const uncalibrated = new TransactionMeter(databaseUrl, 0);
    const first = await uncalibrated.read();
    const second = await uncalibrated.read();
    return new TransactionMeter(databaseUrl, Math.max(0, second.committed - first.committed - first.own));
  }

  async measure(system: PeerSystem, start: () => Promise<Started>): Promise<PeerFigures> {
    const baseline = await this.read();
    const started = await start();
    let before: Reading;
    let drained: Drained;
    let used: NodeJS.CpuUsage;
    try {
      before = await this.read();
      const cpu = process.cpuUsage();
      drained = await started.drain();
      await started.stop();
      used = process.cpuUsage(cpu);
    } catch (error) {
      await started.stop().catch(() => {});
      throw error;
    }
    const after = await this.read(baseline.present);
    const pg = after.postgresCpuMs !== null && before.postgresCpuMs !== null ? after.postgresCpuMs - before.postgresCpuMs : null;
    const nodeCpuMs = (used.user + used.system) / 1000;
    const machine = after.machineBusyMs !== null && before.machineBusyMs !== null ? after.machineBusyMs - before.machineBusyMs : null;
    const otherCores = machine === null ? null : Math.max(0, machine - nodeCpuMs - (pg ?? 0)) / (after.at - before.at);
    return {
      system,
      completed: drained.completed,
      seconds: drained.seconds,
      jobsPerSecond: drained.completed / drained.seconds,
      transactions: after.committed - before.committed - before.own - drained.probes,
      nodeCpuMs,
      postgresCpuMs: pg,
      otherCores,
      perJob: PER_JOB[system],
    };
  }

  /**
   * Reads once no other connection of the benchmark is left and, with `within`, no client backend
   * but those in it: their counts have been reported then.
   */
  private async read(within?: Set<number>): Promise<Reading> {
    const sql = connect(this.databaseUrl, { max: 1, applicationName: 'bench-meter' });
    try {
      let polls = 0;
      let others: { pid: number; applicationName: string }[];
      for (;;) {
        polls++;
        others = await sql<{ pid: number; applicationName: string }[]>`
          select pid, application_name from pg_stat_activity
          where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()`;
        if (others.every((b) => !HARNESS_APPS.has(b.applicationName) && (!within || within.has(b.pid)))) break;
        if (polls > 500) throw new Error(`backends ${others.map((b) => `${b.pid} (${b.applicationName})`).join(', ')} did not go`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const [row] = await sql<{ committed: number; pid: number }[]>`
        select xact_commit as committed, pg_backend_pid() as pid from pg_stat_database where datname = current_database()`;
      return {
        committed: Number(row!.committed),
        postgresCpuMs: await postgresCpuMs(row!.pid),
        machineBusyMs: await machineBusyMs(),
        at: performance.now(),
        present: new Set(others.map((b) => b.pid)),
        own: polls + 1 + this.perConnection,
      };
    } finally {
      await sql.end();
    }
  }
}

/**
 * CPU used so far by the Postgres server whose backend `backendPid` is: the postmaster, what it
 * reaped (children that exited) and its live children. Null where /proc does not show them.
 */
async function postgresCpuMs(backendPid: number): Promise<number | null> {
  const stat = async (pid: string) => {
    // Fields after the command name: state, ppid, … utime (14), stime, cutime, cstime, in clock ticks.
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return { ppid: fields[1]!, ticks };
  };
  try {
    const postmaster = (await stat(String(backendPid))).ppid;
    let ticks = (await stat(postmaster)).ticks;
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const child = await stat(entry).catch(() => undefined);
      if (child?.ppid === postmaster) ticks += child.ticks;
    }
    // USER_HZ, the unit of /proc/<pid>/stat, is 100 on Linux.
    return ticks * 10;
  } catch {
    return null;
  }
}

/** CPU time all cores of the machine have been busy so far (/proc/stat: all but idle and iowait); null without it. */
async function machineBusyMs(): Promise<number | null> {
  try {
    const [line] = (await readFile('/proc/stat', 'utf8')).split('\n');
    const [user, nice, system, , , irq, softirq, steal] = line!.trim().split(/\s+/).slice(1).map(Number);
    return [user, nice, system, irq, softirq, steal].reduce<number>((sum, t) => sum + (t ?? 0), 0) * 10;
  } catch {
    return null;
  }
}

/** One more proofpod run of `jobs` under the V8 CPU profiler; self time summed by where the code lives. */
async function profileProofpod(databaseUrl: string, jobs: number): Promise<{ totalMs: number; shares: ProfileShare[] }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const started = await startProofpodRun(databaseUrl, jobs);
    try {
      await started.drain();
    } finally {
      await started.stop();
    }
    const { profile } = await session.post('Profiler.stop');
    return selfTimeByCategory(profile);
  } finally {
    session.disconnect();
  }
}

/**
 * Self time per category (category()). A V8 builtin or native binding (a socket write, a hash) and
 * Node's own library code count for the package or proofpod code that called them; what the event
 * loop runs with no such caller counts as Node core.
 */
function selfTimeByCategory(profile: Profiler.Profile): { totalMs: number; shares: ProfileShare[] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const memo = new Map<number, { name: string | undefined; definite: boolean }>();
  const resolve = (id: number): { name: string | undefined; definite: boolean } => {
    const known = memo.get(id);
    if (known) return known;
    const own = category(byId.get(id)!.callFrame);
    const parent = parentOf.get(id);
    let resolved: { name: string | undefined; definite: boolean };
    if (own !== NATIVE && own !== NODE_CORE) resolved = { name: own, definite: true };
    else {
      const up = parent === undefined ? undefined : resolve(parent);
      if (up?.definite && up.name) resolved = up;
      else if (own === NODE_CORE) resolved = { name: 'Node core (HTTP server, sockets, timers) run by the event loop', definite: false };
      else resolved = { name: up?.name ?? 'V8 builtins, not called from JavaScript', definite: false };
    }
    memo.set(id, resolved);
    return resolved;
  };
  const ms = new Map<string, number>();
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, i) => {
    const { name } = resolve(id);
    // A sample's time is the delta that follows it.
    if (name) ms.set(name, (ms.get(name) ?? 0) + (deltas[i + 1] ?? 0) / 1000);
  });
  const shares = [...ms].map(([name, value]) => ({ category: name, ms: value })).sort((a, b) => b.ms - a.ms);
  return { totalMs: shares.reduce((sum, s) => sum + s.ms, 0), shares };
}

const NATIVE = Symbol('native');
const NODE_CORE = Symbol('node core');

/**
 * Where a frame's code lives: an npm package, a proofpod directory, V8; NATIVE or NODE_CORE for
 * code counted with its caller; undefined for idle.
 */
function category(frame: Runtime.CallFrame): string | typeof NATIVE | typeof NODE_CORE | undefined {
  if (frame.functionName === '(idle)') return undefined;
  if (frame.functionName === '(garbage collector)') return 'V8 garbage collector';
  if (frame.functionName === '(program)') return 'V8 and native code outside JavaScript';
  const url = frame.url;
  if (url === '') return NATIVE;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return `package ${pkg[1]}`;
  if (url.startsWith('node:internal/deps/undici')) return 'fetch (undici): the benchmark clients and the stand-in reporter';
  if (url.startsWith('node:')) return NODE_CORE;
  const own = /\/(scheduler|contract|task-pod|test)\/(?:([^/]+)\/)?/.exec(url);
  if (own)
    return own[1] === 'test' ? 'the benchmark itself (clients, stand-in substrate and reporter)' : `proofpod ${own[1]}/${own[2] ?? ''}`;
  return 'other';
}

function report(f: PeersFigures, postgres: string): string {
  const perJob = (value: number | null, p: PeerFigures) => (value === null ? '–' : (value / p.completed).toFixed(2));
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench:peers\` on ${machine()}, Postgres ${postgres}; ${f.jobs} jobs per system, each system alone, in this order.`,
    '',
    '| system | jobs/s | wall time | transactions / job | Node CPU ms / job | Postgres CPU ms / job | other processes meanwhile (cores) |',
    '|---|---|---|---|---|---|---|',
    ...f.peers.map(
      (p) =>
        `| ${p.system} | ${p.jobsPerSecond.toFixed(0)} | ${p.seconds.toFixed(2)} s | ${perJob(p.transactions, p)} | ${perJob(p.nodeCpuMs, p)} | ${perJob(p.postgresCpuMs, p)} | ${p.otherCores?.toFixed(2) ?? '–'} |`,
    ),
    '',
    'What each does per job:',
    '',
    ...f.peers.map((p) => `- **${p.system}**: ${p.perJob}.`),
    '',
    `Ratio proofpod / graphile-worker: **${f.ratio.toFixed(2)}×** (goal ≥ 1.0×: ${f.ratio >= 1 ? 'met' : 'not met'}).`,
  ];
  if (f.ratio < 1) lines.push('', reading(f));
  if (f.profile) {
    const total = f.profile.totalMs;
    lines.push(
      '',
      `Where proofpod's Node CPU goes: a separate, untimed run of ${f.jobs} jobs under the V8 profiler, ${(total / f.jobs).toFixed(2)} ms of sampled CPU per job, by where the code lives (native code and Node's library counted with the code that called them; shares below 2 % left out).`,
      '',
      '| code | share | ms / job |',
      '|---|---|---|',
      ...f.profile.shares
        .filter((s) => s.ms / total >= 0.02)
        .map((s) => `| ${s.category} | ${((100 * s.ms) / total).toFixed(1)} % | ${(s.ms / f.jobs).toFixed(2)} |`),
    );
  }
  return lines.join('\n');
}

/** Why proofpod is slower than graphile-worker here, in the measured figures. */
function reading(f: PeersFigures): string {
  const [gw, pp] = [f.peers.find((p) => p.system === 'graphile-worker')!, f.peers.find((p) => p.system === 'proofpod')!];
  const cpu = (p: PeerFigures) => (p.nodeCpuMs + (p.postgresCpuMs ?? 0)) / p.completed;
  const transactions = (p: PeerFigures) => p.transactions / p.completed;
  const cores = cpus().length;
  const node = pp.nodeCpuMs / 1000 / pp.seconds;
  const postgres = (pp.postgresCpuMs ?? 0) / 1000 / pp.seconds;
  const others = pp.otherCores ?? 0;
  const bound =
    node >= 0.8
      ? `its one Node process is the bottleneck: it kept ${node.toFixed(2)} cores busy (one event loop, with the benchmark's clients and stand-in reporter in it), Postgres ${postgres.toFixed(2)}`
      : node + postgres + others >= 0.8 * cores
        ? `it is CPU-bound: ${(node + postgres + others).toFixed(2)} of ${cores} cores were busy (Node ${node.toFixed(2)}, Postgres ${postgres.toFixed(2)}, other processes ${others.toFixed(2)})`
        : `it is not CPU-bound (Node ${node.toFixed(2)}, Postgres ${postgres.toFixed(2)}, other processes ${others.toFixed(2)} of ${cores} cores): the rest of its time it waits on round trips`;
  const top = f.profile?.shares.slice(0, 3).map((s) => `${s.category} ${(s.ms / f.jobs).toFixed(2)} ms`);
  return [
    `The cost that prevents it: per job, proofpod commits ${transactions(pp).toFixed(1)} transactions to graphile-worker's ${transactions(gw).toFixed(1)}`,
    `(${(transactions(pp) / transactions(gw)).toFixed(1)}×) and uses ${cpu(pp).toFixed(2)} ms of CPU to its ${cpu(gw).toFixed(2)} ms`,
    `(${(cpu(pp) / cpu(gw)).toFixed(1)}×: ${(pp.nodeCpuMs / pp.completed).toFixed(2)} ms in this Node process, ${pp.postgresCpuMs === null ? '–' : (pp.postgresCpuMs / pp.completed).toFixed(2)} ms in Postgres), and ${bound}.`,
    `At graphile-worker's ${gw.jobsPerSecond.toFixed(0)} jobs/s, proofpod's CPU per job would keep ${((cpu(pp) * gw.jobsPerSecond) / 1000).toFixed(1)} cores busy (this machine has ${cores}),`,
    `and its Node process would have to spend at most ${(1000 / gw.jobsPerSecond).toFixed(2)} ms per job instead of ${(pp.nodeCpuMs / pp.completed).toFixed(2)} (${(pp.nodeCpuMs / pp.completed / (1000 / gw.jobsPerSecond)).toFixed(0)}× less).`,
    ...(top ? [`The largest parts of its Node CPU per job, from the profile below: ${top.join(', ')}.`] : []),
    ...(others > 0.25
      ? [`Other processes kept ${others.toFixed(2)} cores busy meanwhile: on an idle machine proofpod's figure is higher.`]
      : []),
  ].join(' ');
}

async function main() {
  const db = await openBenchDatabase('peers', pino({ level: 'warn' }));
  try {
    const figures = await measurePeers({ databaseUrl: db.url, jobs: JOBS, profile: true });
    const result = report(figures, db.postgres);
    process.stdout.write(`${result}\n`);
    await writeSection('peers', result);
  } finally {
    await db.close();
  }
}

runAsMain(import.meta.url, main);
