/**
 * The check container's entry point, the trusted half of an attempt: it runs only the profile's
 * checker and audit, on read-only inputs, and leaves the results for the reporter. No proof code
 * runs here: the build container, which may have run any, is over and every process it started is
 * gone before this container starts. What the build left is untrusted input: its outputs are
 * staged as regular files into our own scratch space before a checker reads them, and its exit
 * statuses can only fail a target, never pass one. Checkers still read hostile input, so:
 *  - results left in the results volume before we start are wiped, and ours are written last, by
 *    atomic rename, after every other process of the container has been killed;
 *  - the log digest is computed from the output stream itself, not from a file a checker could edit;
 *  - the check-exit FIFO is held open until we exit, so the reporter reads results only then;
 *  - SIGUSR1 is handled, so nothing can open Node's inspector in this process.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, realpathSync, statSync, writeSync } from 'node:fs';
import { mkdir, readFile, readdir, realpath as realpathAsync, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as z from 'zod';
import { coerceError } from '../contract/errors.js';
import { AllowedAxiomsSchema, type Finding, type Goal, GoalSchema } from '../contract/evidence.js';
import { artifacts, checkExitCodes, env, files, mountPath } from '../contract/pod.js';
import { type PassRule, type ProverProfile, ProverProfileSchema, fillCommand } from '../contract/profile.js';
import { LogDigest } from './log-digest.js';
import { type GoalResult, bindGoals } from './coq-goals.js';
import { CoqProjectError, type CoqProject, loadPath, logicalName, parseCoqProject } from './coq-project.js';
import { AuditError, parseCoqchkSummary } from './coqchk-summary.js';
import { MetamathReadError, type MetamathAxiom, includesWithin, readMetamathAxioms, unpinnedAxioms } from './metamath-database.js';
import { SmtObligationError, readSmtObligation } from './smtlib-obligation.js';
import { type CheckResult, CheckResultSchema } from './result.js';
import { stageArtifacts } from './stage-artifacts.js';
import { UntrustedFileError, readUntrusted } from './untrusted-file.js';

/**
 * Where checkers are looked up: our own checker programs (dist/bin, beside the compiled task-pod
 * programs, or from this module's TypeScript source as the tests run it: proofpod-metamath-verify)
 * first, then the image's PATH.
 */
const checkerPath = [
  ...['../bin', '../dist/bin'].map((dir) => fileURLToPath(new URL(dir, import.meta.url))).filter((dir) => existsSync(dir)),
  process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
].join(':');

/** Output kept per command for the pass rules and the audit parser. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Log output a command run beside another may hold back, to keep its part of the log together. */
const MAX_HELD_LOG_BYTES = 64 * 1024 * 1024;
/** Of each target's build output, what goes into our log. */
const MAX_BUILD_LOG_BYTES = 64 * 1024;
const stageLimits = { maxFiles: 100_000, maxBytes: 8 * 1024 * 1024 * 1024, maxDepth: 64 };

export interface CheckRun {
  profile: ProverProfile;
  targets: string[];
  /** The axioms the lane allows; every other finding of the audit rejects the proof. */
  allowedAxioms: readonly string[];
  /** Theorems the job names, with the statements they must have. */
  goals: readonly Goal[];
  subdirectory: string | null;
  sourceDir: string;
  /** The artifacts volume, when the profile has a build step. */
  artifactsDir: string | undefined;
  resultsDir: string;
  /** Our scratch space, where build outputs are staged. */
  tmpDir: string;
  /** The check-exit FIFO, when there is one. */
  fifo?: string;
}

interface CommandOutcome {
  exitCode: number | null;
  /** Standard output and error as they came, up to MAX_OUTPUT_BYTES. */
  output: string;
  /** Standard output alone, up to MAX_OUTPUT_BYTES, and the SHA-256 of all of it. */
  stdout: string;
  stdoutDigest: string;
  durationMs: number;
  spawnError?: string;
}

type TargetResult = CheckResult['results'][number];

/** Appends to the log file and its digest at once. */
class CheckLog {
  readonly digest = new LogDigest();
  constructor(private readonly fd: number) {}
  write(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.digest.update(bytes);
    writeSync(this.fd, bytes);
    // And on stdout, the container's log, which the scheduler keeps and streams (GET /v1/jobs/{id}/logs).
    process.stdout.write(bytes);
  }
}

/** Runs one command in its own process group; the group is killed when the command exits. */
function run(argv: string[], cwd: string, log: CheckLog, home: string, options: { buffered?: boolean } = {}): Promise<CommandOutcome> {
  const started = Date.now();
  // A command run beside another keeps its part of the log together: held back until it ends (up
  // to MAX_HELD_LOG_BYTES; past that it streams, interleaved).
  const held: (Buffer | string)[] = [];
  let heldBytes = options.buffered ? 0 : Infinity;
  const write = (chunk: Buffer | string) => {
    if (heldBytes + chunk.length > MAX_HELD_LOG_BYTES) {
      for (const c of held.splice(0)) log.write(c);
      heldBytes = Infinity;
      log.write(chunk);
    } else {
      held.push(chunk);
      heldBytes += chunk.length;
    }
  };
  write(`$ ${argv.join(' ')}\n`);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    const stdoutChunks: Buffer[] = [];
    let stdoutKept = 0;
    const stdoutHash = createHash('sha256');
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: checkerPath, HOME: home, LANG: 'C.UTF-8' },
    });
    const take = (chunk: Buffer) => {
      write(chunk);
      if (kept < MAX_OUTPUT_BYTES) {
        chunks.push(chunk);
        kept += chunk.length;
      }
    };
    child.stdout.on('data', (chunk: Buffer) => {
      take(chunk);
      stdoutHash.update(chunk);
      if (stdoutKept < MAX_OUTPUT_BYTES) {
        stdoutChunks.push(chunk);
        stdoutKept += chunk.length;
      }
    });
    child.stderr.on('data', take);
    const flush = () => {
      for (const c of held.splice(0)) log.write(c);
    };
    // A command that cannot start emits error and then close: the first of them answers.
    let answered = false;
    child.on('error', (error) => {
      if (answered) return;
      answered = true;
      flush();
      resolve({
        exitCode: null,
        output: '',
        stdout: '',
        stdoutDigest: `sha256:${stdoutHash.digest('hex')}`,
        durationMs: Date.now() - started,
        spawnError: `${argv[0]}: ${error.message}`,
      });
    });
    child.on('close', (code, signal) => {
      if (answered) return;
      answered = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
      write(`[exit ${code ?? signal}]\n`);
      flush();
      resolve({
        exitCode: code ?? 128,
        output: Buffer.concat(chunks).toString('utf8'),
        stdout: Buffer.concat(stdoutChunks).toString('utf8'),
        stdoutDigest: `sha256:${stdoutHash.digest('hex')}`,
        durationMs: Date.now() - started,
      });
    });
  });
}

/** One line of a checker's output for a reason: control characters out, at most 200 characters. */
const oneLine = (text: string) =>
  text
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .trim()
    .slice(0, 200);

/**
 * A checker's run read under a pass rule: why it did not pass (null when it did), and the digest
 * of its standard output when the rule says a proof follows the answer.
 */
function readOutcome(pass: PassRule, outcome: CommandOutcome): { reason: string | null; proofDigest: string | null } {
  const failed = (reason: string) => {
    const explained = pass.explain ? new RegExp(pass.explain, 'm').exec(outcome.output) : null;
    return { reason: explained ? `${reason}: ${oneLine(explained[0])}` : reason, proofDigest: null };
  };
  if (outcome.spawnError) return { reason: outcome.spawnError, proofDigest: null };
  if (outcome.exitCode !== 0) return failed(`exit code ${outcome.exitCode}`);
  if (pass.outputEquals !== undefined) {
    // Standard output alone: what a solver writes to standard error (warnings) goes to the log only.
    const answer = pass.proofFollows ? outcome.stdout.split('\n', 1)[0]! : outcome.stdout.replace(/\n$/, '');
    if (answer !== pass.outputEquals)
      return failed(
        `output is not exactly ${JSON.stringify(pass.outputEquals)}${pass.proofFollows ? ' on its first line' : ''}: ${JSON.stringify(oneLine(outcome.stdout.slice(0, 200)))}`,
      );
    if (pass.proofFollows && outcome.stdout.length <= answer.length + 1) return failed('no proof followed the answer');
  }
  if (pass.outputMatches && !new RegExp(pass.outputMatches, 'm').test(outcome.output)) {
    return failed(`output does not match ${pass.outputMatches}`);
  }
  if (pass.outputRejects) {
    const bad = new RegExp(pass.outputRejects, 'm').exec(outcome.output);
    if (bad) return failed(`output matches ${pass.outputRejects}: ${outcome.output.slice(bad.index, bad.index + 200).split('\n')[0]}`);
  }
  return { reason: null, proofDigest: pass.proofFollows ? outcome.stdoutDigest : null };
}

async function binaryDigest(program: string): Promise<string> {
  const candidates = program.includes('/') ? [program] : checkerPath.split(':').map((dir) => path.join(dir, program));
  const found = candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
  if (!found) throw new Error(`${program} not found on PATH`);
  return `sha256:${createHash('sha256')
    .update(await readFile(realpathSync(found)))
    .digest('hex')}`;
}

/**
 * Opens the FIFO for writing once the reporter has it open for reading: data written to a FIFO
 * nobody reads is lost, and the reporter must see our start byte. Gives up after a minute (the
 * reporter then reports that the check did not finish).
 */
async function openFifoForWriting(fifo: string): Promise<number | undefined> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    try {
      return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      // The reporter starts with us and usually opens it a few ms later: every attempt waits here.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  process.stderr.write('check: no reporter opened the check-exit FIFO within a minute; continuing without it\n');
  return undefined;
}

/**
 * The library a failed Coq build says it could not find (`Cannot find a physical path bound to
 * logical path …`), when that path's root is not one of the development's own; else undefined.
 */
export function missingLibrary(output: string, ownRoots: readonly string[]): string | undefined {
  const found = /Cannot find a physical path bound to logical path\s+([^\s]+?)\.?(?:\s+with prefix\s+([^\s]+?)\.)?\s*$/m.exec(output);
  if (!found) return undefined;
  const root = (found[2] ?? found[1]!).split('.')[0]!;
  return ownRoots.includes(root) || !/^[A-Za-z_][A-Za-z0-9_']*$/.test(root) ? undefined : root;
}

/** Exit codes of a build stopped by a limit: the lane's build time (timeout), memory, CPU time. */
const limitReasons: Record<number, string> = {
  124: "past the lane's build time limit",
  137: 'killed, e.g. out of memory',
  152: 'past its CPU time limit',
};

/**
 * The build's word on the n-th target, or on the whole project (untrusted): its exit code and
 * output. A missing or garbled status is a failed build: only a build that says it succeeded gets
 * its outputs checked.
 */
async function buildStatus(
  artifactsDir: string,
  n: number | 'project',
  ownRoots: readonly string[],
): Promise<{ exitCode: number | null; log: Buffer; problem: string | null }> {
  const dir = path.join(artifactsDir, artifacts.status);
  const log = await readUntrusted(path.join(dir, `${n}.log`), { maxBytes: MAX_BUILD_LOG_BYTES, truncate: true }, `build log ${n}`).then(
    (r) => r.content,
    (error: unknown) => Buffer.from(`[${coerceError(error).message}]\n`),
  );
  try {
    const { content } = await readUntrusted(path.join(dir, `${n}.exit`), { maxBytes: 16 }, `build status ${n}`);
    const text = content.toString('latin1').trim();
    if (!/^\d{1,3}$/.test(text)) return { exitCode: null, log, problem: 'the build left an unreadable exit status' };
    if (Number(text) === 0) return { exitCode: 0, log, problem: null };
    // Where the build says it failed: its first `File "…", line N` (untrusted text, kept short).
    const output = log.toString('utf8');
    const at = /File "([^"\n]{1,200})", line (\d{1,7})/.exec(output);
    const missing = missingLibrary(output, ownRoots);
    const limit = limitReasons[Number(text)];
    return {
      exitCode: Number(text),
      log,
      problem: `build failed with exit code ${text}${limit ? ` (${limit})` : ''}${at ? ` at ${at[1]!.replace(/[\x00-\x1f]/g, '')}, line ${at[2]}` : ''}${missing ? `: it requires ${missing}, a library the image does not provide` : ''}`,
    };
  } catch (error) {
    if (!(error instanceof UntrustedFileError)) throw error;
    return { exitCode: null, log, problem: `the build left no exit status: ${error.message}` };
  }
}

type Verdict = Omit<CheckResult, 'log' | 'exitCode' | 'startedAt' | 'finishedAt' | 'durationMs'>;

/**
 * The profile's libraries as the image has them: the Debian package's installed version and the
 * SHA-256 over the sorted relative paths and SHA-256s of their files that match `files` (compiled ones). A library the profile
 * lists and the image lacks is an error of the configuration, never skipped.
 */
async function libraryFacts(libraries: ProverProfile['libraries'], log: CheckLog, home: string): Promise<CheckResult['libraries']> {
  const facts: CheckResult['libraries'] = [];
  for (const library of libraries) {
    const pattern = new RegExp(library.files);
    // Relative paths are built as the walk goes: path.relative per file cost more than the hashing.
    const files: string[] = [];
    const walk = async (relative: string): Promise<void> => {
      for (const entry of await readdir(path.join(library.path, relative), { withFileTypes: true })) {
        const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
        if (entry.isDirectory()) await walk(child);
        else if (entry.isFile() && pattern.test(child)) files.push(child);
      }
    };
    try {
      await walk('');
    } catch {
      throw new Error(`library ${library.name} (${library.path}) is not in the image`);
    }
    const digest = createHash('sha256');
    for (const file of files.sort())
      digest.update(
        `${file}\0${createHash('sha256')
          .update(await readFile(path.join(library.path, file)))
          .digest('hex')}\n`,
      );
    const query = await run(['dpkg-query', '-W', '-f=${Version}', library.package], '/', log, home, { buffered: true });
    if (query.spawnError || query.exitCode !== 0 || query.output.trim() === '')
      throw new Error(`library ${library.name}: package ${library.package} is not installed in the image`);
    facts.push({
      name: library.name,
      package: library.package,
      version: query.output.trim().split('\n')[0]!.slice(0, 200),
      digest: `sha256:${digest.digest('hex')}`,
    });
  }
  return facts;
}

/**
 * The profile's project file in the read-only source, read by our own reader; undefined when the
 * source has none (then the per-target commands run). A link or anything but a regular file there
 * is an error, as is a file our reader refuses.
 */
async function readProject(job: CheckRun): Promise<CoqProject | undefined> {
  const spec = job.profile.project;
  if (!spec) return undefined;
  const file = path.join(job.sourceDir, job.subdirectory ?? '.', spec.file);
  let text: string;
  try {
    text = (await readUntrusted(file, { maxBytes: 1024 * 1024 }, spec.file)).content.toString('utf8');
  } catch (error) {
    if (error instanceof UntrustedFileError && error.message === `${spec.file} is missing`) return undefined;
    throw error;
  }
  return parseCoqProject(text);
}

/** Largest source target our readers take (set.mm is 41 MB). */
const MAX_READ_BYTES = 256 * 1024 * 1024;

type CheckerRun = Omit<TargetResult, 'path' | 'second'>;

/** The first non-empty line of a version command's output; run in `/`, as it reads no source. */
async function versionOf(command: string[], what: string, log: CheckLog, home: string): Promise<string> {
  const v = await run(command, '/', log, home, { buffered: true });
  if (v.spawnError || v.exitCode !== 0) throw new Error(`${what} failed: ${v.spawnError ?? `exit ${v.exitCode}`}`);
  return (
    v.output
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? 'unknown'
  );
}

/**
 * Two independent checkers' runs as one result: both must pass; both failing is a fail with the
 * first's reason; any other pair is a disagreement, an error naming both outputs.
 */
function agreement(
  firstName: string,
  first: { run: CheckerRun; output: string },
  secondName: string,
  second: { run: CheckerRun; output: string },
): Omit<TargetResult, 'path'> {
  const combined = { ...first.run, second: second.run };
  if (first.run.result === 'pass' && second.run.result === 'pass') return combined;
  if (first.run.result === 'fail' && second.run.result === 'fail') return combined;
  const said = (name: string, c: { run: CheckerRun; output: string }) =>
    `${name} ${c.run.result === 'pass' ? 'passed' : `did not pass (${c.run.reason})`}, saying ${JSON.stringify(excerpt(c.output))}`;
  return {
    ...combined,
    result: 'error',
    reason: `the checkers disagree: ${said(firstName, first)}; ${said(secondName, second)}`.slice(0, 2000),
  };
}

/** Head and tail of a checker's output, for a disagreement's reason. */
function excerpt(output: string): string {
  const text = output.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trim();
  return text.length <= 400 ? text : `${text.slice(0, 200)} … ${text.slice(-200)}`;
}

/**
 * A target filled into a word of a command with more around it (metamath's `read "{target}"`) must
 * not carry the quoting of that word: only names of plain characters go in there.
 */
function commandCanQuote(command: readonly string[], target: string): boolean {
  const embedded = command.some((word) => word.includes('{target}') && word !== '{target}');
  return !embedded || /^[A-Za-z0-9._/+-]+$/.test(target);
}

/** `target` under `root`, refusing a path whose directories lead out of it through a link. */
async function insideSource(root: string, target: string): Promise<string> {
  const file = path.resolve(root, target);
  const dir = await realpathAsync(path.dirname(file)).catch(() => null);
  const realRoot = await realpathAsync(root);
  if (dir === null) throw new UntrustedFileError(`${target} is missing`);
  if (dir !== realRoot && !dir.startsWith(`${realRoot}${path.sep}`))
    throw new UntrustedFileError(`${target} leads out of the source through a link`);
  return path.join(dir, path.basename(file));
}

/**
 * The pinned reference database's logical axioms: its digest must be the one the profile pins, or
 * the check is an error of the image, naming both digests.
 */
async function referenceAxioms(pin: { path: string; digest: string }, log: CheckLog): Promise<MetamathAxiom[]> {
  const content = await readFile(pin.path).catch(() => {
    throw new Error(`the reference database ${pin.path} is not in the image`);
  });
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
  if (digest !== pin.digest)
    throw new Error(`reference database digest mismatch: ${pin.path} is ${digest}, the profile pins ${pin.digest}`);
  const axioms = await readMetamathAxioms(content, includesWithin(path.dirname(pin.path), MAX_READ_BYTES));
  log.write(`[reference ${pin.path} (${digest}): ${axioms.length} logical axioms]\n`);
  return axioms;
}

/** Every goal of the job, failed for `reason`. */
const notBound = (job: CheckRun, reason: string): GoalResult[] => job.goals.map((g) => ({ ...g, result: 'failed', reason }));

/** A verdict with no results yet: what every early error starts from. */
function emptyVerdict(job: CheckRun): Omit<Verdict, 'outcome' | 'error'> {
  return {
    profile: job.profile.name,
    version: null,
    secondVersion: null,
    binaryDigests: {},
    libraries: [],
    results: [],
    findings: [],
    allowedAxioms: [...job.allowedAxioms],
    projectFile: null,
    goals: notBound(job, 'not bound: the check did not run'),
  };
}

async function checkTargets(job: CheckRun, log: CheckLog): Promise<Verdict> {
  const { check } = job.profile;
  let workdir: string;
  let project: CoqProject | undefined;
  let facts: Promise<ImageFacts> | undefined;
  try {
    project = await readProject(job);
    // No check depends on what the image is: that is gathered beside the checks.
    facts = imageFacts(job.profile, project !== undefined, log, job.tmpDir);
    facts.catch(() => {}); // awaited below, after the checks; never unhandled meanwhile
    if (check.input === 'artifacts') {
      if (!job.artifactsDir) throw new Error('the profile checks build outputs but the pod has no artifacts volume');
      const staged = path.join(job.tmpDir, 'check-input');
      const pattern = new RegExp(check.artifacts ?? '$^');
      const copied = await stageArtifacts(path.join(job.artifactsDir, artifacts.tree), pattern, staged, stageLimits);
      log.write(`[staged ${copied.length} build output(s) matching ${check.artifacts}]\n`);
      workdir = path.join(staged, job.subdirectory ?? '.');
      await mkdir(workdir, { recursive: true });
    } else if (check.copySource) {
      // The checker writes beside the sources: a copy of only the files it reads, as regular files.
      const copy = path.join(job.tmpDir, 'check-source');
      const copied = await stageArtifacts(
        path.join(job.sourceDir, job.subdirectory ?? '.'),
        new RegExp(check.copySource),
        copy,
        stageLimits,
      );
      log.write(`[copied ${copied.length} source file(s) matching ${check.copySource}]\n`);
      workdir = copy;
      await mkdir(workdir, { recursive: true });
    } else {
      workdir = path.join(job.sourceDir, job.subdirectory ?? '.');
    }
  } catch (error) {
    await facts?.catch(() => {});
    return { ...emptyVerdict(job), outcome: 'error', error: coerceError(error).message };
  }
  const verdict = await checkSources(job, log, project, workdir);
  try {
    return { ...verdict, ...(await facts!) };
  } catch (error) {
    return { ...verdict, version: null, secondVersion: null, libraries: [], outcome: 'error', error: coerceError(error).message };
  }
}

/** What the image is, as the evidence records it: the checkers' versions and binary digests, the libraries. */
interface ImageFacts {
  version: string;
  secondVersion: string | null;
  binaryDigests: Record<string, string>;
  libraries: CheckResult['libraries'];
}

async function imageFacts(profile: ProverProfile, hasProject: boolean, log: CheckLog, home: string): Promise<ImageFacts> {
  const { check } = profile;
  const programs = [hasProject ? profile.project!.check[0] : check.command[0], check.second?.command[0], check.audit?.command?.[0]];
  const binaryDigests: Record<string, string> = {};
  for (const program of programs) if (program) binaryDigests[program] = await binaryDigest(program);
  const [libraries, version, secondVersion] = await Promise.all([
    libraryFacts(profile.libraries, log, home),
    versionOf(profile.versionCommand, 'version command', log, home),
    check.second ? versionOf(check.second.versionCommand, 'second checker version command', log, home) : null,
  ]);
  return { version, secondVersion, binaryDigests, libraries };
}

/** The checks themselves, after the set-up: every result but the image facts, which checkTargets adds. */
async function checkSources(job: CheckRun, log: CheckLog, project: CoqProject | undefined, workdir: string): Promise<Verdict> {
  const { profile } = job;
  const { check } = profile;
  let targets = job.targets;
  let reference: MetamathAxiom[] | undefined;
  const base = emptyVerdict(job);
  const results: TargetResult[] = [];
  const findings: Finding[] = [];
  const projectFile = project ? profile.project!.file : null;
  /** An error once the checker is known: what was found so far goes with it. */
  const failed = (error: string, extra: Partial<Verdict> = {}): Verdict => ({
    ...base,
    projectFile,
    results,
    findings,
    ...extra,
    outcome: 'error',
    error,
  });
  // No targets given: a project build checks every file its project lists.
  if (job.targets.length === 0) {
    if (!project)
      return failed(`no targets were given, and the source has no ${profile.project?.file ?? 'project file'} to take them from`);
    targets = project.files;
    if (targets.length === 0) return failed(`${profile.project!.file} lists no files to check`);
  }
  // The development's own logical roots: a module missing under them is no missing library.
  const ownRoots = project ? project.bindings.map((b) => b.logical.split('.')[0]!) : ['Top'];
  const projectBuild = project && job.artifactsDir ? await buildStatus(job.artifactsDir, 'project', ownRoots) : undefined;
  if (projectBuild) {
    log.write(`--- build output of the project (untrusted) ---\n`);
    log.write(projectBuild.log);
    log.write(`\n--- end of build output of the project ---\n`);
  }
  const goalsDir = path.resolve(job.tmpDir, 'check-goals');
  // The directories coqchk may load from: the staged build outputs and the goals' bindings.
  const checkedRoots = [path.resolve(workdir), goalsDir];
  const runChecker = async (command: string[], pass: PassRule, buffered = false): Promise<{ run: CheckerRun; output: string }> => {
    const checked = await run(command, workdir, log, job.tmpDir, { buffered });
    const { reason, proofDigest } = readOutcome(pass, checked);
    const result = checked.spawnError ? ('error' as const) : reason ? ('fail' as const) : ('pass' as const);
    return { run: { result, exitCode: checked.exitCode, durationMs: checked.durationMs, reason, proofDigest }, output: checked.output };
  };
  /** One run of the checker (and the audit) over `target`, or over every target at once (null). */
  const checkOnce = async (
    command: string[],
    target: string | null,
    second?: string[],
  ): Promise<{ result: Omit<TargetResult, 'path'>; findings: Finding[] }> => {
    // Independent checkers run side by side (the lane's CPU is theirs); each part of the log stays whole.
    const [first, other] = await Promise.all([
      runChecker(command, check.pass),
      second ? runChecker(second, check.second!.pass, true) : undefined,
    ]);
    const result: Omit<TargetResult, 'path'> = other ? agreement(command[0]!, first, second![0]!, other) : { ...first.run, second: null };
    if (result.reason || !check.audit) return { result, findings: [] };
    let output = first.output;
    if (check.audit.command) {
      const audited = await run(fillCommand(check.audit.command, target ?? ''), workdir, log, job.tmpDir);
      if (audited.spawnError || audited.exitCode !== 0)
        return {
          result: { ...result, result: 'error', reason: `audit failed: ${audited.spawnError ?? `exit ${audited.exitCode}`}` },
          findings: [],
        };
      output = audited.output;
    }
    try {
      const found = parseCoqchkSummary(output, target, { checkedRoot: checkedRoots });
      return { result, findings: found.map((f) => ({ ...f, allowed: f.kind === 'axiom' && job.allowedAxioms.includes(f.name) })) };
    } catch (error) {
      if (!(error instanceof AuditError)) throw error;
      return { result: { ...result, result: 'error', reason: `audit: ${error.message}` }, findings: [] };
    }
  };

  /**
   * Our reader of one source target: what the checkers are given instead (the SMT-LIB obligation as
   * we re-printed it), the findings (Metamath axioms not in the reference), or why it is refused.
   */
  const readTarget = async (
    format: 'smt-lib' | 'metamath',
    target: string,
    n: number,
  ): Promise<{ refused: string; durationMs: number } | { refused: null; checkedPath: string; findings: Finding[] }> => {
    const started = Date.now();
    const refuse = (why: string) => ({ refused: why, durationMs: Date.now() - started });
    let content: Buffer;
    try {
      content = (await readUntrusted(await insideSource(workdir, target), { maxBytes: MAX_READ_BYTES, timeoutMs: 60_000 }, target)).content;
    } catch (error) {
      if (!(error instanceof UntrustedFileError)) throw error;
      return refuse(error.message);
    }
    if (format === 'smt-lib') {
      try {
        const obligation = readSmtObligation(content.toString('latin1'));
        const file = path.join(job.tmpDir, 'check-read', `${n}.smt2`);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, obligation.canonical, { mode: 0o444, flag: 'wx' });
        log.write(`[read ${target}: ${obligation.commands.length} commands; the checkers read our re-printing, ${file}]\n`);
        return { refused: null, checkedPath: file, findings: [] };
      } catch (error) {
        if (!(error instanceof SmtObligationError)) throw error;
        return refuse(`not a safe SMT-LIB obligation: ${error.message}`);
      }
    }
    try {
      const axioms = await readMetamathAxioms(content, includesWithin(workdir, MAX_READ_BYTES));
      const unpinned = unpinnedAxioms(axioms, reference!);
      for (const u of unpinned) log.write(`[axiom ${u.label} of ${target}: ${u.reason}]\n`);
      log.write(`[read ${target}: ${axioms.length} logical axioms, ${unpinned.length} not in the reference]\n`);
      return {
        refused: null,
        checkedPath: target,
        findings: unpinned.map((u) => ({ kind: 'axiom' as const, name: u.label, target, allowed: job.allowedAxioms.includes(u.label) })),
      };
    } catch (error) {
      if (!(error instanceof MetamathReadError)) throw error;
      return refuse(`not a database our reader accepts: ${error.message}`);
    }
  };

  if (project) {
    // One build for all: a project that did not build whole gives no verdict for any target.
    const spec = profile.project!;
    let names: string[];
    try {
      names = targets.map((t) => logicalName(project, t));
    } catch (error) {
      if (!(error instanceof CoqProjectError)) throw error;
      return failed(error.message);
    }
    const lists = { '{loadpath}': loadPath(project, '.'), '{logicals}': names };
    if (projectBuild?.problem) {
      for (const target of targets)
        results.push({
          path: target,
          result: 'fail',
          exitCode: null,
          durationMs: 0,
          reason: projectBuild.problem,
          proofDigest: null,
          second: null,
        });
    } else if (spec.check.includes('{logicals}')) {
      // The whole project in one checker run: each module is checked once, not once per dependent.
      const { result, findings: found } = await checkOnce(fillCommand(spec.check, '', { lists }), null);
      for (const target of targets) results.push({ path: target, ...result });
      findings.push(...found);
    } else {
      for (const [i, target] of targets.entries()) {
        const { result, findings: found } = await checkOnce(
          fillCommand(spec.check, target, { words: { '{logical}': names[i]! }, lists }),
          target,
        );
        results.push({ path: target, ...result });
        findings.push(...found);
      }
    }
  } else {
    for (const [i, target] of targets.entries()) {
      if (profile.build && job.artifactsDir) {
        const built = await buildStatus(job.artifactsDir, i + 1, ownRoots);
        log.write(`--- build output of ${target} (untrusted) ---\n`);
        log.write(built.log);
        log.write(`\n--- end of build output of ${target} ---\n`);
        if (built.problem) {
          results.push({
            path: target,
            result: 'fail',
            exitCode: null,
            durationMs: 0,
            reason: built.problem,
            proofDigest: null,
            second: null,
          });
          continue;
        }
      }
      const refused = (reason: string, durationMs = 0) =>
        results.push({ path: target, result: 'fail', exitCode: null, durationMs, reason, proofDigest: null, second: null });
      if (!commandCanQuote(check.command, target) || (check.second && !commandCanQuote(check.second.command, target))) {
        refused('the target name has characters the checker command cannot quote');
        continue;
      }
      const checking = (checkedPath: string) =>
        checkOnce(
          fillCommand(check.command, checkedPath),
          target,
          check.second ? fillCommand(check.second.command, checkedPath) : undefined,
        );
      if (check.read?.format === 'smt-lib') {
        // Our reader first: the checkers read what it re-printed, and a target it refuses reaches none.
        const read = await readTarget('smt-lib', target, i + 1);
        if (read.refused !== null) {
          refused(read.refused, read.durationMs);
          continue;
        }
        const { result, findings: found } = await checking(read.checkedPath);
        results.push({ path: target, ...result });
        findings.push(...found);
      } else if (check.read?.format === 'metamath') {
        // Our reader beside the verifiers (they read the committed file itself, which nothing can
        // change): a database it refuses fails, whatever they say, and their word is not recorded.
        const checked = checking(target);
        let read: Awaited<ReturnType<typeof readTarget>>;
        try {
          reference ??= await referenceAxioms(check.read.reference, log);
          read = await readTarget('metamath', target, i + 1);
        } catch (error) {
          await checked;
          return failed(coerceError(error).message);
        }
        const { result, findings: found } = await checked;
        if (read.refused !== null) {
          refused(read.refused, read.durationMs);
          continue;
        }
        results.push({ path: target, ...result });
        findings.push(...read.findings, ...found);
      } else {
        const { result, findings: found } = await checking(target);
        results.push({ path: target, ...result });
        findings.push(...found);
      }
    }
  }
  let goals: GoalResult[] = [];
  if (job.goals.length > 0) {
    if (check.goals !== 'coq') return failed(`profile ${profile.name} cannot bind goals`);
    if (results.some((t) => t.result !== 'pass')) {
      goals = notBound(job, 'not bound: a target did not pass');
    } else {
      const root = path.resolve(workdir);
      const bound = await bindGoals({
        goals: job.goals,
        loadPath: project ? loadPath(project, root) : ['-Q', root, 'Top'],
        goalsDir,
        run: (argv, cwd) => run(argv, cwd, log, job.tmpDir),
      });
      goals = bound.results;
      if (bound.recheck) {
        // The bindings re-checked by coqchk with the development, and audited like the targets.
        const { result, findings: found } = await checkOnce(bound.recheck, null);
        const reason = `coqchk did not accept the binding: ${result.reason ?? 'no reason'}`;
        const unaccepted = goals.map((g): GoalResult => (g.result === 'proved' ? { ...g, result: 'failed', reason } : g));
        if (result.result === 'error') return failed(reason, { goals: unaccepted });
        if (result.result === 'fail') goals = unaccepted;
        for (const f of found) if (!findings.some((o) => o.kind === f.kind && o.name === f.name)) findings.push(f);
      }
    }
  }
  const outcome = results.some((t) => t.result === 'error')
    ? 'error'
    : results.some((t) => t.result === 'fail') || findings.some((f) => !f.allowed) || goals.some((g) => g.result !== 'proved')
      ? 'fail'
      : 'pass';
  return {
    ...base,
    projectFile,
    results,
    findings,
    goals,
    outcome,
    error: outcome === 'error' ? (results.find((t) => t.result === 'error')?.reason ?? null) : null,
  };
}

export async function runCheck(job: CheckRun): Promise<CheckResult> {
  const { resultsDir } = job;
  // Hold the FIFO from the start: the reporter sees end-of-file only once we (and everything we
  // started) are gone. The byte tells it we started at all.
  const fifoFd = job.fifo && existsSync(job.fifo) ? await openFifoForWriting(job.fifo) : undefined;
  if (fifoFd !== undefined) writeSync(fifoFd, 'S');
  // Anything in the results volume now was not written by us.
  for (const entry of await readdir(resultsDir)) await rm(path.join(resultsDir, entry), { recursive: true, force: true });
  const partialLog = path.join(resultsDir, `.${files.log}.partial`);
  const logFd = openSync(partialLog, 'wx', 0o644);
  const log = new CheckLog(logFd);
  const startedAt = new Date();
  const verdict = await checkTargets(job, log);
  // As PID 1 of the container's PID namespace, signal -1 reaches every other process in it: nothing
  // a checker started can touch the results after this point. Never do this outside a namespace.
  if (process.pid === 1) {
    try {
      process.kill(-1, 'SIGKILL');
    } catch {
      // Nothing else was running.
    }
  }
  closeSync(logFd);
  const finishedAt = new Date();
  const full: CheckResult = CheckResultSchema.parse({
    ...verdict,
    exitCode: checkExitCodes[verdict.outcome],
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    log: log.digest.summary(),
  });
  await rename(partialLog, path.join(resultsDir, files.log));
  const partialResult = path.join(resultsDir, `.${files.result}.partial`);
  await writeFile(partialResult, JSON.stringify(full, null, 2), { mode: 0o644, flag: 'wx' });
  await rename(partialResult, path.join(resultsDir, files.result));
  if (fifoFd !== undefined) closeSync(fifoFd);
  return full;
}

export async function main(environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Node opens its inspector on SIGUSR1 unless the signal has a listener.
  process.on('SIGUSR1', () => {});
  try {
    const profile = ProverProfileSchema.parse(JSON.parse(environment[env.profile] ?? 'null'));
    const targets = z.array(z.string().min(1)).parse(JSON.parse(environment[env.targets] ?? 'null'));
    const allowedAxioms = AllowedAxiomsSchema.parse(JSON.parse(environment[env.allowedAxioms] || '[]'));
    const goals = z
      .array(GoalSchema)
      .max(100)
      .parse(JSON.parse(environment[env.goals] || '[]'));
    const resultsDir = mountPath('results', environment);
    await mkdir(resultsDir, { recursive: true });
    const result = await runCheck({
      profile,
      targets,
      allowedAxioms,
      goals,
      subdirectory: environment[env.subdirectory] || null,
      sourceDir: mountPath('source', environment),
      artifactsDir: profile.build ? mountPath('artifacts', environment) : undefined,
      resultsDir,
      tmpDir: mountPath('tmp', environment),
      fifo: path.join(mountPath('meta', environment), files.checkExit),
    });
    process.stdout.write(`check: ${result.outcome}${result.error ? `: ${result.error}` : ''}\n`);
    return result.exitCode;
  } catch (error) {
    process.stderr.write(`check: ${coerceError(error).message}\n`);
    return checkExitCodes.error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((code) => process.exit(code));
}
