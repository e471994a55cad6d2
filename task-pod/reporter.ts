/**
 * The reporter container's entry point, the only holder of the attempt's upload credential. It
 * waits until no process of the prover container is left (end-of-file on the prover-exit FIFO) or
 * until its report-by time, builds the evidence from the fetch manifest and the prover's results,
 * and uploads it, retrying transient failures. Without results by then it reports an error itself,
 * so the scheduler learns why instead of waiting for the grace window.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { canonicalJson, sha256 } from '../contract/canonical-json.js';
import { coerceError } from '../contract/errors.js';
import { type Evidence, EvidenceSchema } from '../contract/evidence.js';
import { env, files, mountPath } from '../contract/pod.js';
import { ProverProfileSchema } from '../contract/profile.js';
import { ManifestSchema, type Manifest } from './manifest.js';
import { type ProverResult, ProverResultSchema } from './result.js';

const POLL_MS = 100;

export interface ReportInput {
  jobId: string;
  attemptNo: number;
  profile: { name: string; checkCommand: string[]; audit?: { command: string[]; policy: 'reject' | 'allow' } };
  targets: string[];
  uploadUrl: string;
  credential: string;
  /** Epoch milliseconds by which the upload must be done. */
  reportBy: number;
  metaDir: string;
  resultsDir: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits for the prover container to be over: the wrapper writes one byte when it starts and holds
 * the FIFO open until it exits. End-of-file after that byte means no writer is left. Returns false
 * when `reportBy` comes first.
 */
export async function waitForProverExit(fifo: string, reportBy: number): Promise<boolean> {
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFIFO()) throw new Error(`${fifo} is not a FIFO`);
    const buffer = Buffer.alloc(64);
    let started = false;
    while (Date.now() < reportBy) {
      let read: number;
      try {
        read = readSync(fd, buffer, 0, buffer.length, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        read = -1; // a writer holds it open and has nothing more to say: still running
      }
      if (read > 0) started = true;
      else if (read === 0 && started) return true;
      await sleep(POLL_MS);
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Why there is no usable prover result to report. */
interface NoResult {
  failure: string;
}

export function buildEvidence(input: ReportInput, manifest: Manifest, result: ProverResult | NoResult): Evidence {
  const base = {
    schemaVersion: 1 as const,
    jobId: input.jobId,
    attemptNo: input.attemptNo,
    source: { url: manifest.url, commit: manifest.commit, treeHash: manifest.treeHash, subdirectory: manifest.subdirectory },
  };
  if ('failure' in result) {
    return EvidenceSchema.parse({
      ...base,
      prover: { profile: input.profile.name, version: null, binaryDigest: null, command: input.profile.checkCommand, exitCode: null, startedAt: null, finishedAt: null, durationMs: null },
      logs: null,
      targets: [],
      audit: { command: input.profile.audit?.command ?? null, findings: [], policy: input.profile.audit?.policy ?? null },
      outcome: 'error',
      error: result.failure,
    });
  }
  const r = result;
  return EvidenceSchema.parse({
    ...base,
    prover: {
      profile: r.profile,
      version: r.version,
      binaryDigest: r.binaryDigest,
      command: r.command,
      exitCode: r.exitCode,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      durationMs: r.durationMs,
    },
    logs: r.log,
    targets: r.targets,
    audit: r.audit,
    outcome: r.outcome,
    error: r.error,
  });
}

/** Reads the wrapper's result and checks the full log against the digest the wrapper computed. */
async function readResult(resultsDir: string): Promise<ProverResult | NoResult> {
  let result: ProverResult;
  try {
    result = ProverResultSchema.parse(JSON.parse(await readFile(path.join(resultsDir, files.result), 'utf8')));
  } catch (error) {
    return { failure: `the prover left no valid result: ${coerceError(error).message.slice(0, 500)}` };
  }
  const log = await readFile(path.join(resultsDir, files.log)).catch(() => undefined);
  const digest = log ? `sha256:${sha256(log).toString('hex')}` : 'missing';
  if (digest !== result.log.digest) return { failure: `the prover log does not match its digest (${digest} ≠ ${result.log.digest})` };
  return result;
}

/** Posts the evidence, retrying network errors, 5xx and 429 with backoff until `reportBy`. */
export async function upload(input: ReportInput, evidence: Evidence, log = (line: string) => process.stderr.write(`${line}\n`)): Promise<void> {
  const body = canonicalJson(evidence);
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    let retryable: string;
    try {
      const response = await fetch(input.uploadUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${input.credential}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      if (response.ok) return;
      if (response.status < 500 && response.status !== 429 && response.status !== 408) {
        throw new Error(`upload refused with ${response.status}: ${text.slice(0, 500)}`);
      }
      retryable = `${response.status}: ${text.slice(0, 200)}`;
    } catch (error) {
      if (coerceError(error).message.startsWith('upload refused')) throw error;
      retryable = coerceError(error).message;
    }
    if (Date.now() + delay > input.reportBy) throw new Error(`upload failed after ${attempt} tries; last: ${retryable}`);
    log(`reporter: upload try ${attempt} failed (${retryable}); retrying in ${delay} ms`);
    await sleep(delay);
    delay = Math.min(delay * 2, 5000);
  }
}

export async function report(input: ReportInput): Promise<Evidence> {
  const manifest = ManifestSchema.parse(JSON.parse(await readFile(path.join(input.metaDir, files.manifest), 'utf8')));
  const exited = await waitForProverExit(path.join(input.metaDir, files.proverExit), input.reportBy);
  const result = exited ? await readResult(input.resultsDir) : { failure: 'the prover did not finish before the deadline' };
  const evidence = buildEvidence(input, manifest, result);
  await upload(input, evidence);
  return evidence;
}

export async function main(environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const profile = ProverProfileSchema.parse(JSON.parse(environment[env.profile] ?? 'null'));
    const input: ReportInput = {
      jobId: z.uuid().parse(environment[env.jobId]),
      attemptNo: z.coerce.number().int().min(1).parse(environment[env.attemptNo]),
      profile,
      targets: z.array(z.string()).parse(JSON.parse(environment[env.targets] ?? 'null')),
      uploadUrl: z.url().parse(environment[env.uploadUrl]),
      credential: (await readFile(path.join(mountPath('credential', environment), files.credential), 'utf8')).trim(),
      reportBy: z.coerce.number().int().parse(environment[env.reportBy]) * 1000,
      metaDir: mountPath('meta', environment),
      resultsDir: mountPath('results', environment),
    };
    const evidence = await report(input);
    process.stdout.write(`reporter: uploaded evidence, outcome ${evidence.outcome}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`reporter: ${coerceError(error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((code) => process.exit(code));
}
