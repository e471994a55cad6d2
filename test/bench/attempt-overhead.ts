/**
 * Per-attempt overhead benchmark (`npm run bench:overhead`): one small Coq file
 * (test/fixtures/proofs/Arith.v) through proofpod on the local substrate — submit → verdict over
 * the API, one job at a time — next to a bare `coqc` + `coqchk` of the same file, and a burst of
 * such jobs submitted at once next to the same checks as a bare 2-way parallel loop, all in the
 * same run. Where each attempt's time goes comes from the local substrate's container statuses,
 * read the moment its pod ends. The result replaces the marked section of docs/benchmarks.md.
 * `measureAttemptOverhead` is also run, at a tiny size, by test/bench-attempt-overhead.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { type Proofpod, startProofpod } from '../../scheduler/app.js';
import { type Config, parseConfig } from '../../scheduler/config.js';
import { type JobState, isFinalJobState } from '../../scheduler/job-states.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import { projectRoot } from '../../scheduler/substrate/create.js';
import { LocalSubstrate, type LocalPodStatus } from '../../scheduler/substrate/local/local-substrate.js';
import { git } from '../support/git-fixtures.js';
import { openBenchDatabase } from './database.js';
import { localSubstrateWithEndedPods } from './ended-pods.js';
import { jobVerdict } from './job-verdict.js';
import { machine, percentile, writeSection, runAsMain } from './report.js';

const FIXTURE = path.join(projectRoot(), 'test', 'fixtures', 'proofs', 'Arith.v');
const BARE_CHECK = 'coqc -Q . Top Arith.v && coqchk -silent -o -Q . Top Top.Arith >/dev/null';

/** Where one attempt's time went, in ms; the rows add up to `totalMs`. */
export interface AttemptPhases {
  /** Submit → the fetch container running: admission, claim, credential, pod set-up, sandbox start. */
  toFetchMs: number;
  fetchMs: number;
  /** Fetch ended → build ended: the next sandbox's start and the untrusted build. */
  buildMs: number;
  /** Build ended → check ended: the next sandbox's start and the check wrapper. */
  checkMs: number;
  /** Check ended → pod ended: the reporter reads the results and uploads the evidence. */
  reportMs: number;
  /** Pod ended → verdict seen: the watcher woken, the judge, the attempt's end. */
  verdictMs: number;
  totalMs: number;
}

/**
 * The CPU time (user + system, ms) each pod program spends itself in an attempt — not its children
 * (git, the checkers) — p50 of `runs` attempts, next to Node's own start-up (`node -e 0`) measured
 * the same way in the same run. Read from copies of the programs that print their
 * `process.resourceUsage()` as they exit (`instrumentedPrograms`).
 */
export interface ProgramCpu {
  runs: number;
  nodeStartMs: number;
  fetchMs: number;
  checkMs: number;
  reporterMs: number;
}

export interface OverheadFigures {
  singles: number;
  bare: { coqcMs: number; coqchkMs: number; totalMs: number };
  /** p50 of each phase, and of the totals (not the sum of the p50s). */
  proofpod: AttemptPhases;
  /** proofpod p50 − bare p50. */
  overheadMs: number;
  /** Absent when no program runs were asked for. */
  programs?: ProgramCpu;
  bursts: BurstFigures[];
}

export interface BurstFigures {
  jobs: number;
  /** The lane's concurrency. */
  concurrency: number;
  /** Every job's final state, counted. */
  states: Record<string, number>;
  /** First submission → last verdict, from the jobs' own timestamps. */
  proofpodMs: number;
  /** The same checks as a bare 2-way parallel loop. */
  bareMs: number;
  /** bare / proofpod: proofpod's throughput as a share of the bare loop's. */
  ratio: number;
  /**
   * CPU seconds per job: of this process (scheduler, API, Postgres client), and of the whole machine
   * (everything: sandboxes, task-pod programs, git, provers, Postgres, the kernel), for proofpod's
   * burst and for the bare loop. The machine's is read from /proc/stat: sandboxed processes are
   * not all reaped by this process, so its own children's times would miss some of them.
   */
  cpuPerJob: { scheduler: number; machine: number; bareMachine: number };
}

function run(command: string, cwd: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(performance.now() - started) : reject(new Error(`${command}: exit ${code}: ${stderr}`)),
    );
  });
}

/** A fresh directory holding the fixture alone: every bare run compiles from nothing, as an attempt does. */
function freshCopy(work: string, name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  cpSync(FIXTURE, path.join(dir, 'Arith.v'));
  return dir;
}

async function bareOnce(work: string, name: string): Promise<{ coqcMs: number; coqchkMs: number }> {
  const dir = freshCopy(work, name);
  const coqcMs = await run('coqc -Q . Top Arith.v', dir);
  const coqchkMs = await run('coqchk -silent -o -Q . Top Top.Arith >/dev/null', dir);
  return { coqcMs, coqchkMs };
}

async function bareLoop(work: string, name: string, jobs: number, parallel: number): Promise<number> {
  const dirs = Array.from({ length: jobs }, (_, i) => freshCopy(work, `${name}-${i}`));
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < dirs.length) await run(BARE_CHECK, dirs[next++]!);
    }),
  );
  return performance.now() - started;
}

/** CPU seconds used so far by this process, and by the whole machine (busy time in /proc/stat, Linux). */
function cpuSeconds(): { self: number; machine: number } {
  const usage = process.cpuUsage();
  // cpu  user nice system idle iowait irq softirq steal …, in USER_HZ (100 per second)
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { self: (usage.user + usage.system) / 1e6, machine: (user! + nice! + system! + irq! + softirq! + steal!) / 100 };
}

const p50 = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

export async function measureAttemptOverhead(options: {
  databaseUrl: string;
  singles?: number;
  burst?: number;
  concurrencies?: number[];
  /** Attempts run with instrumented copies of the pod programs; 0 skips them. */
  programRuns?: number;
}): Promise<OverheadFigures> {
  const singles = options.singles ?? 10;
  const programRuns = options.programRuns ?? 0;
  const burst = options.burst ?? 40;
  const concurrencies = options.concurrencies ?? [2];
  const work = mkdtempSync(path.join(tmpdir(), 'proofpod-bench-overhead-'));
  // The sandboxes run as other uids: they read the repository and the state under here.
  chmodSync(work, 0o755);
  try {
    const repo = freshCopy(work, 'repo');
    git(repo, ['init', '--quiet']);
    git(repo, ['add', '--all']);
    git(repo, ['commit', '--quiet', '-m', 'one small Coq file']);
    const commit = git(repo, ['rev-parse', 'HEAD']);

    const bareRuns: { coqcMs: number; coqchkMs: number }[] = [];
    for (let i = 0; i < singles; i++) bareRuns.push(await bareOnce(work, `bare-${i}`));

    const runs: AttemptPhases[] = [];
    const bursts: BurstFigures[] = [];
    for (const [index, concurrency] of concurrencies.entries()) {
      const home = path.join(work, `home-${index}`);
      // A bench uid range of its own, so that it can run beside the other tests' local substrates.
      const config = overheadConfig(home, options.databaseUrl, 1_500_000 + index * 100_000, concurrency);
      const log = pino({ level: 'silent' });
      const { substrate, pods } = localSubstrateWithEndedPods(config, home, log);
      const proofpod = await startProofpod(config, { substrate, log, print: () => {} });
      try {
        const { headers, submit } = await arithSubmitter(proofpod, `bench-overhead-${index}`, repo, commit);
        const verdict = async (id: string) => {
          const job = await jobVerdict(proofpod.url, headers, id);
          return { ...job, attempt: job.attempts?.at(-1)?.name ?? '' };
        };

        if (index === 0) {
          await verdict(await submit()); // warm-up: page cache, JIT, first connections
          for (let i = 0; i < singles; i++) {
            const submittedAt = Date.now();
            const job = await verdict(await submit());
            const verdictAt = job.seenAt;
            if (job.state !== 'verified') throw new Error(`Arith.v ended ${job.state}: ${job.stateReason}`);
            const pod = pods.get(job.attempt);
            if (!pod) throw new Error(`no container times for ${job.attempt}`);
            runs.push(phasesOf(submittedAt, verdictAt, pod));
          }
        }

        const before = cpuSeconds();
        const ids = await Promise.all(Array.from({ length: burst }, submit));
        // One query for the whole burst: a client per job polling the API would load the scheduler it measures.
        let results: { state: string; count: number }[];
        for (;;) {
          results = await proofpod.sql<{ state: string; count: number }[]>`
            select state, count(*)::int as count from jobs where id = any(${ids}::uuid[]) group by state`;
          if (results.every((r) => isFinalJobState(r.state as JobState))) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const after = cpuSeconds();
        const [span] = await proofpod.sql<{ ms: number }[]>`
          select extract(epoch from max(finished_at) - min(created_at)) * 1000 as ms from jobs where id = any(${ids}::uuid[])`;
        const proofpodMs = Number(span!.ms);
        const bareBefore = cpuSeconds();
        const bareMs = await bareLoop(work, `burst-${index}`, burst, 2);
        const bareAfter = cpuSeconds();
        const states = Object.fromEntries(results.map((r) => [r.state, r.count]));
        bursts.push({
          jobs: burst,
          concurrency,
          states,
          proofpodMs,
          bareMs,
          ratio: bareMs / proofpodMs,
          cpuPerJob: {
            scheduler: (after.self - before.self) / burst,
            machine: (after.machine - before.machine) / burst,
            bareMachine: (bareAfter.machine - bareBefore.machine) / burst,
          },
        });
      } finally {
        await proofpod.stop();
      }
    }
    const bare = {
      coqcMs: p50(bareRuns.map((r) => r.coqcMs)),
      coqchkMs: p50(bareRuns.map((r) => r.coqchkMs)),
      totalMs: p50(bareRuns.map((r) => r.coqcMs + r.coqchkMs)),
    };
    const phase = (key: keyof AttemptPhases) => p50(runs.map((r) => r[key]));
    const proofpod: AttemptPhases = {
      toFetchMs: phase('toFetchMs'),
      fetchMs: phase('fetchMs'),
      buildMs: phase('buildMs'),
      checkMs: phase('checkMs'),
      reportMs: phase('reportMs'),
      verdictMs: phase('verdictMs'),
      totalMs: phase('totalMs'),
    };
    const programs = programRuns > 0 ? await measureProgramCpu(work, repo, commit, options.databaseUrl, programRuns) : undefined;
    return { singles, bare, proofpod, overheadMs: proofpod.totalMs - bare.totalMs, ...(programs ? { programs } : {}), bursts };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const podPrograms = ['fetch', 'check', 'reporter'] as const;
const CPU_LINE = 'proofpod-bench-cpu';

/** Registered first, so that it runs however the program exits (fetch exits from a top-level await). */
const cpuAtExit = (name: string) =>
  `process.on('exit', () => { const u = process.resourceUsage(); process.stderr.write('${CPU_LINE} ${name} ' + (u.userCPUTime + u.systemCPUTime) + '\\n'); });\n`;

/**
 * A programs root as the local substrate binds it (dist/pod-programs, dist/bin, package.json, an
 * empty node_modules), holding the built programs with `cpuAtExit` put in front of each.
 */
function instrumentedPrograms(work: string): string {
  const from = projectRoot();
  const root = path.join(work, 'programs');
  mkdirSync(path.join(root, 'dist', 'pod-programs'), { recursive: true });
  mkdirSync(path.join(root, 'node_modules'));
  cpSync(path.join(from, 'package.json'), path.join(root, 'package.json'));
  if (existsSync(path.join(from, 'dist', 'bin')))
    cpSync(path.join(from, 'dist', 'bin'), path.join(root, 'dist', 'bin'), { recursive: true });
  for (const name of podPrograms) {
    const bundle = readFileSync(path.join(from, 'dist', 'pod-programs', `${name}.mjs`), 'utf8');
    writeFileSync(path.join(root, 'dist', 'pod-programs', `${name}.mjs`), cpuAtExit(name) + bundle);
  }
  return root;
}

/** Node's start-up alone, measured as the programs measure themselves. */
function nodeStartCpuMs(): number {
  const { stderr } = spawnSync(process.execPath, ['-e', cpuAtExit('node')], { encoding: 'utf8' });
  return cpuOf(stderr, 'node');
}

function cpuOf(log: string, name: string): number {
  const match = new RegExp(`^${CPU_LINE} ${name} (\\d+)$`, 'm').exec(log);
  if (!match) throw new Error(`no CPU line of ${name} in its log`);
  return Number(match[1]) / 1000;
}

async function measureProgramCpu(work: string, repo: string, commit: string, databaseUrl: string, runs: number): Promise<ProgramCpu> {
  const home = path.join(work, 'home-programs');
  const config = overheadConfig(home, databaseUrl, 1_800_000, 1);
  const log = pino({ level: 'silent' });
  const substrate = new LocalSubstrate({ config, stateDir: path.join(home, 'attempts'), programsRoot: instrumentedPrograms(work), log });
  const proofpod = await startProofpod(config, { substrate, log, print: () => {} });
  try {
    const { headers, submit } = await arithSubmitter(proofpod, 'bench-overhead-programs', repo, commit);
    const seen: Record<(typeof podPrograms)[number], number[]> = { fetch: [], check: [], reporter: [] };
    const nodeStart: number[] = [];
    for (let i = 0; i < runs; i++) {
      const id = await submit();
      const job = await jobVerdict(proofpod.url, headers, id);
      if (job.state !== 'verified') throw new Error(`Arith.v ended ${job.state}: ${job.stateReason}`);
      for (const name of podPrograms) {
        const logs = await fetch(`${proofpod.url}/v1/jobs/${id}/logs?container=${name}`, { headers });
        if (logs.status !== 200) throw new Error(`the ${name} log answered ${logs.status}`);
        seen[name].push(cpuOf(await logs.text(), name));
      }
      nodeStart.push(nodeStartCpuMs());
    }
    return { runs, nodeStartMs: p50(nodeStart), fetchMs: p50(seen.fetch), checkMs: p50(seen.check), reporterMs: p50(seen.reporter) };
  } finally {
    await proofpod.stop();
  }
}

/** The scheduler of one measure: the local substrate, file sources, one lane `verify` of 1 CPU per attempt. */
function overheadConfig(home: string, databaseUrl: string, firstSandboxUid: number, concurrency: number): Config {
  return parseConfig({
    port: 0,
    logLevel: 'silent',
    home,
    databaseUrl,
    substrate: 'local',
    pod: { allowFileSources: true },
    local: { sandboxUids: { first: firstSandboxUid, count: 100_000 } },
    lanes: [{ name: 'verify', trust: 'trusted', concurrency, maxDeadlineSeconds: 600, resources: { limits: { cpu: 1 } } }],
  });
}

/** A submitter of its own, and a submission of Arith.v at `commit` over the API that answers the job's id. */
async function arithSubmitter(proofpod: Proofpod, id: string, repo: string, commit: string) {
  const token = await createSubmitterToken(proofpod.sql, { id, trust: 'trusted', lanes: ['*'], roles: [] });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const submit = async (): Promise<string> => {
    const response = await fetch(`${proofpod.url}/v1/jobs`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ source: { url: pathToFileURL(repo).href, commit }, prover: 'coq', targets: ['Arith.v'], lane: 'verify' }),
    });
    if (response.status !== 201) throw new Error(`submit answered ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { id: string }).id;
  };
  return { headers, submit };
}

function phasesOf(submittedAt: number, verdictAt: number, pod: LocalPodStatus): AttemptPhases {
  const container = (name: string) => {
    const c = [...pod.initContainers, ...pod.containers].find((x) => x.name === name);
    if (!c?.startedAt || !c.finishedAt) throw new Error(`container ${name} has no start or end time`);
    return { startedAt: Date.parse(c.startedAt), finishedAt: Date.parse(c.finishedAt) };
  };
  const fetch = container('fetch');
  const build = container('build');
  const check = container('check');
  const podEnd = Math.max(...[...pod.initContainers, ...pod.containers].map((c) => Date.parse(c.finishedAt ?? '')));
  return {
    toFetchMs: fetch.startedAt - submittedAt,
    fetchMs: fetch.finishedAt - fetch.startedAt,
    buildMs: build.finishedAt - fetch.finishedAt,
    checkMs: check.finishedAt - build.finishedAt,
    reportMs: podEnd - check.finishedAt,
    verdictMs: verdictAt - podEnd,
    totalMs: verdictAt - submittedAt,
  };
}

export function report(f: OverheadFigures, context: { date: string; machine: string; postgres: string }): string {
  const ms = (v: number) => `${Math.round(v)} ms`;
  const s = (v: number) => `${(v / 1000).toFixed(2)} s`;
  const p = f.proofpod;
  return [
    `Measured ${context.date} with \`npm run bench:overhead\` on ${context.machine}, Postgres ${context.postgres}; test/fixtures/proofs/Arith.v, lane \`verify\` (1 CPU per attempt).`,
    '',
    `One job at a time, ${f.singles} jobs after a warm-up one (p50 of each row; the phases are each one's p50, so they need not add up to the total exactly):`,
    '',
    '| measure | p50 |',
    '|---|---|',
    `| bare \`coqc\` | ${ms(f.bare.coqcMs)} |`,
    `| bare \`coqchk -o\` | ${ms(f.bare.coqchkMs)} |`,
    `| **bare total** | **${ms(f.bare.totalMs)}** |`,
    `| proofpod: submit → fetch running (admission, claim, credential, pod set-up, sandbox) | ${ms(p.toFetchMs)} |`,
    `| proofpod: fetch container (quarantine fetch, blob checks, manifest) | ${ms(p.fetchMs)} |`,
    `| proofpod: fetch ended → build ended (sandbox, \`coqc\`) | ${ms(p.buildMs)} |`,
    `| proofpod: build ended → check ended (sandbox, check wrapper, \`coqchk -o\`, audit) | ${ms(p.checkMs)} |`,
    `| proofpod: check ended → pod ended (reporter: results, evidence upload) | ${ms(p.reportMs)} |`,
    `| proofpod: pod ended → verdict seen (watcher woken, judge, attempt end, the client told) | ${ms(p.verdictMs)} |`,
    `| **proofpod submit → verdict** | **${ms(p.totalMs)}** |`,
    `| proofpod − bare (goal ≤ 500 ms: ${f.overheadMs <= 500 ? 'met' : 'not met'}) | ${ms(f.overheadMs)} |`,
    '',
    'Bursts: every job submitted at once, first submission → last verdict, next to the same checks as a bare 2-way parallel loop (`coqc` then `coqchk` in a fresh copy), in the same run:',
    '',
    '| jobs | lane concurrency | proofpod | bare 2-way loop | throughput bare / proofpod (goal ≥ 0.8×) | machine CPU per job: proofpod | … of which the scheduler process | machine CPU per job: bare |',
    '|---|---|---|---|---|---|---|---|',
    ...f.bursts.map(
      (b) =>
        `| ${b.jobs} | ${b.concurrency} | ${s(b.proofpodMs)} | ${s(b.bareMs)} | ${b.ratio.toFixed(2)}× | ${b.cpuPerJob.machine.toFixed(2)} s | ${b.cpuPerJob.scheduler.toFixed(2)} s | ${b.cpuPerJob.bareMachine.toFixed(2)} s |`,
    ),
    ...(f.programs ? ['', ...programsReport(f.programs)] : []),
  ].join('\n');
}

function programsReport(c: ProgramCpu): string[] {
  const ms = (v: number) => `${Math.round(v)} ms`;
  const sum = c.fetchMs + c.checkMs + c.reporterMs;
  return [
    `The pod's own programs, one job at a time (${c.runs} jobs, copies of the programs that print their own CPU time, user + system, as they exit; p50; their children — git, \`coqchk\`, \`dpkg-query\` — not counted):`,
    '',
    "| program | CPU | … beyond Node's start-up |",
    '|---|---|---|',
    `| Node's own start-up (\`node -e 0\`, measured the same way) | ${ms(c.nodeStartMs)} | — |`,
    `| fetch | ${ms(c.fetchMs)} | ${ms(c.fetchMs - c.nodeStartMs)} |`,
    `| check wrapper | ${ms(c.checkMs)} | ${ms(c.checkMs - c.nodeStartMs)} |`,
    `| reporter | ${ms(c.reporterMs)} | ${ms(c.reporterMs - c.nodeStartMs)} |`,
    `| **the three** | **${ms(sum)}** | **${ms(sum - 3 * c.nodeStartMs)}** |`,
  ];
}

async function main() {
  const db = await openBenchDatabase('overhead', pino({ level: 'warn' }));
  try {
    const f = await measureAttemptOverhead({
      databaseUrl: db.url,
      singles: Number(process.env.BENCH_SINGLES ?? 10),
      burst: Number(process.env.BENCH_BURST ?? 40),
      concurrencies: (process.env.BENCH_CONCURRENCIES ?? '2,4').split(',').map(Number),
      programRuns: Number(process.env.BENCH_PROGRAM_RUNS ?? 10),
    });
    for (const b of f.bursts)
      if (b.states.verified !== b.jobs) throw new Error(`a burst did not end all verified: ${JSON.stringify(b.states)}`);
    await writeSection('overhead', report(f, { date: new Date().toISOString().slice(0, 10), machine: machine(), postgres: db.postgres }));
    process.stdout.write(`${JSON.stringify(f, null, 2)}\n`);
  } finally {
    await db.close();
  }
}

runAsMain(import.meta.url, main);
