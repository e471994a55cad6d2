/**
 * The prover container's entry point: runs the profile's check (and audit) command on each target
 * and leaves the results for the reporter. The proof source is untrusted and runs inside this very
 * container, so:
 *  - results left in the results volume before we start are wiped, and ours are written last, by
 *    atomic rename, after every other process of the container has been killed;
 *  - the log digest is computed from the output stream itself, not from a file the proof could edit;
 *  - the prover-exit FIFO is held open until we exit, so the reporter reads results only then.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, readFileSync, realpathSync, statSync, writeSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { coerceError } from '../contract/errors.js';
import { env, files, mountPath } from '../contract/pod.js';
import { type ProverProfile, ProverProfileSchema } from '../contract/profile.js';
import { LogDigest } from './log-digest.js';
import { type ProverResult, ProverResultSchema, outcomeExitCode } from './result.js';

/** Output kept per command for the pass rules and the audit parser. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

export interface ProverRun {
  profile: ProverProfile;
  targets: string[];
  /** Where the targets are: the source mount, joined with the subdirectory. */
  workdir: string;
  resultsDir: string;
  /** The prover-exit FIFO, when there is one. */
  fifo?: string;
}

interface CommandOutcome {
  exitCode: number | null;
  output: string;
  durationMs: number;
  spawnError?: string;
}

export function fill(command: readonly string[], target: string): string[] {
  const module = target.replace(/\.[^./]+$/, '').split('/').join('.');
  return command.map((part) => part.replaceAll('{target}', target).replaceAll('{module}', module));
}

/** Runs one command in its own process group; the group is killed when the command exits. */
function run(argv: string[], cwd: string, log: LogDigest, logFile: number): Promise<CommandOutcome> {
  const started = Date.now();
  const header = Buffer.from(`$ ${argv.join(' ')}\n`);
  log.update(header);
  writeSync(logFile, header);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: mountPath('tmp'), LANG: 'C.UTF-8' },
    });
    const take = (chunk: Buffer) => {
      log.update(chunk);
      writeSync(logFile, chunk);
      if (kept < MAX_OUTPUT_BYTES) {
        chunks.push(chunk);
        kept += chunk.length;
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (error) =>
      resolve({ exitCode: null, output: '', durationMs: Date.now() - started, spawnError: `${argv[0]}: ${error.message}` }),
    );
    child.on('close', (code, signal) => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
      const trailer = Buffer.from(`[exit ${code ?? signal}]\n`);
      log.update(trailer);
      writeSync(logFile, trailer);
      resolve({ exitCode: code ?? 128, output: Buffer.concat(chunks).toString('utf8'), durationMs: Date.now() - started });
    });
  });
}

function passRule(profile: ProverProfile, outcome: CommandOutcome): string | null {
  if (outcome.spawnError) return outcome.spawnError;
  if (outcome.exitCode !== 0) return `exit code ${outcome.exitCode}`;
  if (profile.pass.outputMatches && !new RegExp(profile.pass.outputMatches, 'm').test(outcome.output)) {
    return `output does not match ${profile.pass.outputMatches}`;
  }
  if (profile.pass.outputRejects) {
    const bad = new RegExp(profile.pass.outputRejects, 'm').exec(outcome.output);
    if (bad) return `output matches ${profile.pass.outputRejects}: ${outcome.output.slice(bad.index, bad.index + 200).split('\n')[0]}`;
  }
  return null;
}

export function parseFindings(audit: NonNullable<ProverProfile['audit']>, output: string, target: string) {
  const after = new RegExp(audit.after);
  const until = new RegExp(audit.until);
  const line = new RegExp(audit.line);
  const findings: { kind: typeof audit.kind; name: string; target: string }[] = [];
  let inside = false;
  for (const text of output.split('\n')) {
    if (!inside) {
      inside = after.test(text);
      continue;
    }
    if (until.test(text)) {
      inside = false;
      continue;
    }
    const name = line.exec(text)?.groups?.name;
    if (name) findings.push({ kind: audit.kind, name, target });
  }
  return findings;
}

function binaryDigest(program: string): string {
  const candidates = program.includes('/') ? [program] : (process.env.PATH ?? '').split(':').map((dir) => path.join(dir, program));
  const found = candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
  if (!found) throw new Error(`${program} not found on PATH`);
  return `sha256:${createHash('sha256').update(readFileSync(realpathSync(found))).digest('hex')}`;
}

/**
 * Opens the FIFO for writing once the reporter has it open for reading: data written to a FIFO
 * nobody reads is lost, and the reporter must see our start byte. No proof code runs before this,
 * so nothing but us can be the writer the reporter waits on. Gives up after a minute (the reporter
 * then reports that the prover did not finish).
 */
async function openFifoForWriting(fifo: string): Promise<number | undefined> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    try {
      return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  process.stderr.write('prover: no reporter opened the prover-exit FIFO within a minute; continuing without it\n');
  return undefined;
}

export async function runProver(job: ProverRun): Promise<ProverResult> {
  const { profile, targets, workdir, resultsDir } = job;
  // Hold the FIFO from the start: the reporter sees end-of-file only once we (and everything we
  // started) are gone. The byte tells it we started at all.
  const fifoFd = job.fifo && existsSync(job.fifo) ? await openFifoForWriting(job.fifo) : undefined;
  if (fifoFd !== undefined) writeSync(fifoFd, 'S');
  // Anything in the results volume now was not written by us.
  for (const entry of await readdir(resultsDir)) await rm(path.join(resultsDir, entry), { recursive: true, force: true });
  const partialLog = path.join(resultsDir, `.${files.log}.partial`);
  const logFile = openSync(partialLog, 'w', 0o644);
  const log = new LogDigest();
  const startedAt = new Date();
  const result = await (async (): Promise<Omit<ProverResult, 'log' | 'exitCode' | 'startedAt' | 'finishedAt' | 'durationMs'>> => {
    const base = { profile: profile.name, command: profile.checkCommand, audit: { command: profile.audit?.command ?? null, findings: [], policy: profile.audit?.policy ?? null } };
    let version: string;
    let digest: string | null;
    try {
      digest = binaryDigest(profile.checkCommand[0]!);
      const v = await run(profile.versionCommand, workdir, log, logFile);
      if (v.spawnError || v.exitCode !== 0) throw new Error(`version command failed: ${v.spawnError ?? `exit ${v.exitCode}`}`);
      version = v.output.split('\n').find((l) => l.trim())?.trim() ?? 'unknown';
    } catch (error) {
      return { ...base, version: null, binaryDigest: null, targets: [], outcome: 'error', error: coerceError(error).message };
    }
    const results: ProverResult['targets'] = [];
    const findings: ProverResult['audit']['findings'] = [];
    for (const target of targets) {
      const checked = await run(fill(profile.checkCommand, target), workdir, log, logFile);
      const reason = passRule(profile, checked);
      results.push({
        path: target,
        result: checked.spawnError ? 'error' : reason ? 'fail' : 'pass',
        exitCode: checked.exitCode,
        durationMs: checked.durationMs,
        reason,
      });
      if (reason || !profile.audit) continue;
      const audited = await run(fill(profile.audit.command, target), workdir, log, logFile);
      if (audited.spawnError || audited.exitCode !== 0) {
        results[results.length - 1] = { ...results.at(-1)!, result: 'error', reason: `audit failed: ${audited.spawnError ?? `exit ${audited.exitCode}`}` };
        continue;
      }
      findings.push(...parseFindings(profile.audit, audited.output, target));
    }
    const outcome = results.some((t) => t.result === 'error')
      ? 'error'
      : results.some((t) => t.result === 'fail') || (profile.audit?.policy === 'reject' && findings.length > 0)
        ? 'fail'
        : 'pass';
    return {
      ...base,
      version,
      binaryDigest: digest,
      targets: results,
      audit: { ...base.audit, findings },
      outcome,
      error: outcome === 'error' ? results.find((t) => t.result === 'error')?.reason ?? null : null,
    };
  })();
  // As PID 1 of the container's PID namespace, signal -1 reaches every other process in it: nothing
  // the proof started can touch the results after this point. Never do this outside a namespace.
  if (process.pid === 1) {
    try {
      process.kill(-1, 'SIGKILL');
    } catch {
      // Nothing else was running.
    }
  }
  closeSync(logFile);
  const finishedAt = new Date();
  const full: ProverResult = ProverResultSchema.parse({
    ...result,
    exitCode: outcomeExitCode[result.outcome],
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    log: log.summary(),
  });
  await rename(partialLog, path.join(resultsDir, files.log));
  const partialResult = path.join(resultsDir, `.${files.result}.partial`);
  await writeFile(partialResult, JSON.stringify(full, null, 2), { mode: 0o644 });
  await rename(partialResult, path.join(resultsDir, files.result));
  if (fifoFd !== undefined) closeSync(fifoFd);
  return full;
}

export async function main(environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const profile = ProverProfileSchema.parse(JSON.parse(environment[env.profile] ?? 'null'));
    const targets = z.array(z.string().min(1)).min(1).parse(JSON.parse(environment[env.targets] ?? 'null'));
    const source = mountPath('source', environment);
    const workdir = path.join(source, environment[env.subdirectory] || '.');
    const resultsDir = mountPath('results', environment);
    await mkdir(resultsDir, { recursive: true });
    const result = await runProver({ profile, targets, workdir, resultsDir, fifo: path.join(mountPath('meta', environment), files.proverExit) });
    process.stdout.write(`prover: ${result.outcome}${result.error ? `: ${result.error}` : ''}\n`);
    return result.exitCode;
  } catch (error) {
    process.stderr.write(`prover: ${coerceError(error).message}\n`);
    return outcomeExitCode.error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((code) => process.exit(code));
}
