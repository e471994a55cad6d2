/**
 * Metamath benchmark (`npm run bench:metamath`): Debian's set.mm (41 MB, package
 * metamath-databases) submitted to proofpod on the local substrate — submit → verdict through the
 * API, in a lane where metamath-rs alone verifies it and in one that also requires metamath C —
 * next to bare metamath C (`verify proof *`) and bare metamath-rs (`proofpod-metamath-verify`) on a
 * plain copy, interleaved in the same run. Each proofpod run is a job of its own, and its time is
 * broken down from the local substrate's container statuses and the job's evidence.
 * The result replaces the marked section of docs/benchmarks.md. `measureMetamath` is also run, on a
 * small database, by test/bench-metamath.test.ts, so the benchmark cannot rot.
 */
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pino from 'pino';
import { startProofpod } from '../../scheduler/app.js';
import { parseConfig } from '../../scheduler/config.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import { openBenchDatabase } from './database.js';
import { localSubstrateWithEndedPods } from './ended-pods.js';
import { jobVerdict } from './job-verdict.js';
import { machine, writeSection, runAsMain } from './report.js';
import type { LocalPodStatus } from '../../scheduler/substrate/local/local-substrate.js';
import { git } from '../support/git-fixtures.js';

/** Debian's set.mm, the database the default `metamath` profile pins as its reference. */
export const SET_MM = '/usr/share/metamath/databases/set.mm';
/** Our metamath-rs program where `npm run build:checkers` leaves it: dist/bin, seen from dist/test/bench or from test/bench. */
const METAMATH_RS =
  ['../../bin', '../../dist/bin']
    .map((dir) => fileURLToPath(new URL(`${dir}/proofpod-metamath-verify`, import.meta.url)))
    .find((file) => existsSync(file)) ?? 'proofpod-metamath-verify';

/** Each repetition's time, with the median and the least of them. */
export interface Series {
  runsMs: number[];
  medianMs: number;
  minMs: number;
}

/**
 * Where one proofpod run's time went: each phase but the check's parts ends where the next begins;
 * null where it could not be observed (the local substrate's status was gone, or the evidence
 * lacks the time).
 */
export interface Phases {
  /** Submit → the fetch container starts: admission, claim, dispatch, the attempt's sandbox set up. */
  toFetchMs: number | null;
  /** The fetch container: quarantine fetch of the commit, the checks of its blobs, the manifest. */
  fetchMs: number | null;
  /** Fetch ended → the check wrapper's own clock starts: the check sandbox and Node starting. */
  toCheckMs: number | null;
  /** The check container by its wrapper's own clock; the three below are within it. */
  checkMs: number | null;
  /** metamath-rs (`proofpod-metamath-verify`) over the target. */
  metamathRsMs: number | null;
  /** metamath C over the target; null in a lane without a second checker. */
  metamathCMs: number | null;
  /**
   * The check beyond its longest checker: reference digest, our axiom reader on reference and
   * target where it does not overlap the checkers, versions, binary digests. Where the wrapper runs
   * the checkers one after the other this includes the shorter one.
   */
  beyondCheckersMs: number | null;
  /** The check wrapper ended → the evidence arrived: the reporter builds and uploads it. */
  reportMs: number | null;
  /** The evidence arrived → the verdict was seen: the judge, the attempt's end, our polling. */
  judgeMs: number | null;
}

export interface ProofpodRun {
  jobId: string;
  state: string;
  stateReason: string;
  submitToVerdictMs: number;
  phases: Phases;
  /** The check log's lines from our reader (`[reference …]`, `[read …]`). */
  readerLines: string[];
}

export interface LaneFigures extends Series {
  lane: string;
  runs: ProofpodRun[];
  /** The run whose time is the median one, for the breakdown. */
  medianRun: ProofpodRun;
}

export interface MetamathFigures {
  database: string;
  bytes: number;
  repetitions: number;
  bare: { metamathC: Series; metamathRs: Series };
  proofpod: { verify: LaneFigures; audit: LaneFigures };
  /** Median proofpod submit → verdict over median bare metamath C. */
  ratios: { verify: number; audit: number };
}

function series(runsMs: number[]): Series {
  const sorted = [...runsMs].sort((a, b) => a - b);
  return { runsMs, medianMs: sorted[Math.floor((sorted.length - 1) / 2)]!, minMs: sorted[0]! };
}

function timed(command: string, args: string[], cwd: string, expect: RegExp): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString('latin1')).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      // A bare run that did not verify the database would make every ratio meaningless.
      if (code === 0 && expect.test(output)) resolve(ms);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code} without ${expect}: ${output}`));
    });
  });
}

/** A packed git repository holding the database at its root; returns its url and commit. */
function layOut(dir: string, database: string): { url: string; commit: string } {
  mkdirSync(dir, { recursive: true });
  cpSync(database, path.join(dir, path.basename(database)));
  const run = (...args: string[]) => git(dir, args);
  run('init', '--quiet');
  run('add', '--all');
  run('commit', '--quiet', '-m', `${path.basename(database)} from Debian's metamath-databases`);
  // Packed, as a served repository is: from a loose object upload-pack deflates it anew for every
  // fetch, which for set.mm took 1.7 s where fetching it from the pack took 0.7 s (2 × AMD EPYC).
  run('gc', '--quiet');
  return { url: pathToFileURL(dir).href, commit: run('rev-parse', 'HEAD') };
}

interface ContainerTimes {
  name: string;
  startedAt?: string;
  finishedAt?: string;
}

/** The fetch container's times from the pod status the local substrate wrote (as a kubelet would report it). */
function fetchTimes(status: LocalPodStatus | undefined): ContainerTimes | undefined {
  return (status?.initContainers as ContainerTimes[] | undefined)?.find((c) => c.name === 'fetch');
}

interface EvidenceView {
  receivedAt: string;
  body: {
    check: { startedAt: string | null; finishedAt: string | null; durationMs: number | null };
    results: { durationMs: number; second: { durationMs: number } | null }[];
    logs: { excerpt: string } | null;
  };
}

const at = (iso: string | null | undefined) => (iso ? Date.parse(iso) : null);
const between = (from: number | null, to: number | null) => (from === null || to === null ? null : to - from);

function phases(submittedAt: number, verdictAt: number, fetch: ContainerTimes | undefined, evidence: EvidenceView | undefined): Phases {
  const check = evidence?.body.check;
  const result = evidence?.body.results[0];
  const fetchStart = at(fetch?.startedAt);
  const fetchEnd = at(fetch?.finishedAt);
  const received = at(evidence?.receivedAt);
  const checkMs = check?.durationMs ?? null;
  const longest = result ? Math.max(result.durationMs, result.second?.durationMs ?? 0) : null;
  return {
    toFetchMs: between(submittedAt, fetchStart),
    fetchMs: between(fetchStart, fetchEnd),
    toCheckMs: between(fetchEnd, at(check?.startedAt)),
    checkMs,
    metamathRsMs: result?.durationMs ?? null,
    metamathCMs: result?.second?.durationMs ?? null,
    beyondCheckersMs: between(longest, checkMs),
    reportMs: between(at(check?.finishedAt), received),
    judgeMs: between(received, verdictAt),
  };
}

/** Measures `database` (Debian's set.mm by default), `repetitions` times each (3 by default), on `databaseUrl`. */
export async function measureMetamath(options: { databaseUrl: string; database?: string; repetitions?: number }): Promise<MetamathFigures> {
  const database = path.resolve(options.database ?? SET_MM);
  const repetitions = options.repetitions ?? 3;
  const name = path.basename(database);
  const work = mkdtempSync(path.join(tmpdir(), 'proofpod-bench-metamath-'));
  // The sandboxes run as other uids: they read the repository and the state under here.
  chmodSync(work, 0o755);
  try {
    const repo = layOut(path.join(work, 'repo'), database);
    const bareDir = path.join(work, 'bare');
    mkdirSync(bareDir);
    cpSync(database, path.join(bareDir, name));
    const home = path.join(work, 'home');
    const config = parseConfig({
      port: 0,
      logLevel: 'silent',
      home,
      databaseUrl: options.databaseUrl,
      substrate: 'local',
      pod: { allowFileSources: true },
      // Uids of this benchmark's own, so that it can run beside the other tests' local substrates.
      local: { sandboxUids: { first: 640_000, count: 1024 } },
      lanes: [
        { name: 'verify', trust: 'trusted', concurrency: 1, maxDeadlineSeconds: 1800 },
        { name: 'audit', trust: 'trusted', concurrency: 1, maxDeadlineSeconds: 1800, secondChecker: true },
      ],
      dispatch: { intervalSeconds: 0.2, batchSize: 10 },
    });
    const log = pino({ level: 'silent' });
    const { substrate, pods } = localSubstrateWithEndedPods(config, home, log);
    const proofpod = await startProofpod(config, { substrate, log, print: () => {} });
    try {
      const token = await createSubmitterToken(proofpod.sql, { id: 'bench-metamath', trust: 'trusted', lanes: ['*'], roles: [] });
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const get = async <T>(route: string): Promise<T> => (await (await fetch(`${proofpod.url}${route}`, { headers })).json()) as T;

      const submitAndWait = async (lane: string): Promise<ProofpodRun> => {
        const submittedAt = Date.now();
        const response = await fetch(`${proofpod.url}/v1/jobs`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ source: { url: repo.url, commit: repo.commit }, prover: 'metamath', targets: [name], lane }),
        });
        if (response.status !== 201)
          throw new Error(`submitting ${name} to lane ${lane}: HTTP ${response.status} ${await response.text()}`);
        const { id } = (await response.json()) as { id: string };
        const job = await jobVerdict(proofpod.url, headers, id);
        const { evidence } = await get<{ evidence: EvidenceView[] }>(`/v1/jobs/${id}/evidence`);
        const last = evidence.at(-1);
        const readerLines = (last?.body.logs?.excerpt ?? '').split('\n').filter((l) => /^\[(reference|read) /.test(l));
        const attempt = job.attempts?.at(-1)?.name;
        return {
          jobId: id,
          state: job.state,
          stateReason: job.stateReason,
          submitToVerdictMs: job.seenAt - submittedAt,
          phases: phases(submittedAt, job.seenAt, fetchTimes(attempt === undefined ? undefined : pods.get(attempt)), last),
          readerLines,
        };
      };

      // Interleaved, so that a slower stretch of the machine weighs on every measure alike.
      const runs = { metamathC: [] as number[], metamathRs: [] as number[], verify: [] as ProofpodRun[], audit: [] as ProofpodRun[] };
      for (let i = 0; i < repetitions; i++) {
        runs.metamathC.push(
          await timed('metamath', [`read "${name}"`, 'verify proof *', 'exit'], bareDir, /^All proofs in the database were verified/m),
        );
        runs.metamathRs.push(await timed(METAMATH_RS, [name], bareDir, /^verified: \d+ statements, no diagnostics$/m));
        runs.verify.push(await submitAndWait('verify'));
        runs.audit.push(await submitAndWait('audit'));
      }
      const lane = (laneName: string, laneRuns: ProofpodRun[]): LaneFigures => {
        const s = series(laneRuns.map((r) => r.submitToVerdictMs));
        return { lane: laneName, ...s, runs: laneRuns, medianRun: laneRuns.find((r) => r.submitToVerdictMs === s.medianMs)! };
      };
      const bare = { metamathC: series(runs.metamathC), metamathRs: series(runs.metamathRs) };
      const verify = lane('verify', runs.verify);
      const audit = lane('audit', runs.audit);
      return {
        database: name,
        bytes: statSync(database).size,
        repetitions,
        bare,
        proofpod: { verify, audit },
        ratios: { verify: verify.medianMs / bare.metamathC.medianMs, audit: audit.medianMs / bare.metamathC.medianMs },
      };
    } finally {
      await proofpod.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The two tables of docs/benchmarks.md: the measures, then where the median proofpod run's time went. */
export function report(f: MetamathFigures, context: { date: string; machine: string; postgres: string }): string {
  const s = (ms: number | null) => (ms === null ? '–' : ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`);
  const row = (label: string, x: Series) => `| ${label} | ${s(x.medianMs)} | ${s(x.minMs)} |`;
  const goal = f.ratios.verify <= 0.5 ? 'met' : 'not met';
  const { verify, audit } = f.proofpod;
  const phase = (label: string, key: keyof Phases) =>
    `| ${label} | ${s(verify.medianRun.phases[key])} | ${s(audit.medianRun.phases[key])} |`;
  const reader = verify.medianRun.readerLines.map((l) => `\`${l.replace(/\(sha256:[0-9a-f]{64}\)/, '(pinned digest)')}\``).join(', ');
  return [
    `Measured ${context.date} with \`npm run bench:metamath\` on ${context.machine}, Postgres ${context.postgres}; ${f.database} (${(f.bytes / 1e6).toFixed(1)} MB) in a packed file:// repository, ${f.repetitions} repetition${f.repetitions === 1 ? '' : 's'} of each measure, interleaved; every proofpod run is a job of its own and ended \`verified\`.`,
    '',
    '| measure | median | min |',
    '|---|---|---|',
    row(`bare metamath C: \`metamath 'read "${f.database}"' 'verify proof *' exit\``, f.bare.metamathC),
    row(`bare metamath-rs: \`proofpod-metamath-verify ${f.database}\``, f.bare.metamathRs),
    row('proofpod submit → verdict, `verify` lane (metamath-rs)', verify),
    row('proofpod submit → verdict, `audit` lane (metamath-rs and metamath C)', audit),
    `| ratio proofpod \`verify\` / bare metamath C (goal ≤ 0.5×: ${goal}) | ${f.ratios.verify.toFixed(2)}× | |`,
    `| ratio proofpod \`audit\` / bare metamath C | ${f.ratios.audit.toFixed(2)}× | |`,
    '',
    `Where the time of the median run of each lane went, from the local substrate's container statuses and the job's evidence; the rows without \`…\` add up to the total, and the checkers' rows overlap where the check wrapper runs them side by side. Our reader logged ${reader || 'nothing'}.`,
    '',
    '| phase | `verify` | `audit` |',
    '|---|---|---|',
    phase('submit → fetch container starts (admission, claim, dispatch, sandbox set-up)', 'toFetchMs'),
    phase('fetch container (quarantine fetch of the commit, blob checks, manifest)', 'fetchMs'),
    phase('fetch ended → check wrapper running (sandbox, Node start)', 'toCheckMs'),
    phase("check container, by its wrapper's clock", 'checkMs'),
    phase('… of which metamath-rs', 'metamathRsMs'),
    phase('… of which metamath C', 'metamathCMs'),
    phase(
      '… of which beyond the longest checker (reference digest, our axiom reader where it does not overlap the checkers, versions, binary digests)',
      'beyondCheckersMs',
    ),
    phase('check ended → evidence received (reporter)', 'reportMs'),
    phase('evidence received → verdict seen (judge, attempt end, the client told)', 'judgeMs'),
    `| total submit → verdict | ${s(verify.medianRun.submitToVerdictMs)} | ${s(audit.medianRun.submitToVerdictMs)} |`,
  ].join('\n');
}

async function main() {
  const repetitions = Number(process.env.BENCH_REPETITIONS ?? 3);
  if (!Number.isInteger(repetitions) || repetitions < 1)
    throw new Error(`BENCH_REPETITIONS must be a positive integer, not ${process.env.BENCH_REPETITIONS}`);
  const db = await openBenchDatabase('metamath', pino({ level: 'warn' }));
  try {
    const f = await measureMetamath({ databaseUrl: db.url, repetitions });
    for (const run of [...f.proofpod.verify.runs, ...f.proofpod.audit.runs]) {
      if (run.state !== 'verified') throw new Error(`job ${run.jobId} on ${f.database} ended ${run.state}: ${run.stateReason}`);
    }
    await writeSection('metamath', report(f, { date: new Date().toISOString().slice(0, 10), machine: machine(), postgres: db.postgres }));
    process.stdout.write(`${JSON.stringify(f, null, 2)}\n`);
  } finally {
    await db.close();
  }
}

runAsMain(import.meta.url, main);
