/**
 * The reporter container's entry point, the only holder of the attempt's upload credential. It
 * waits until no process of the check container is left (end-of-file on the check-exit FIFO) or
 * until its report-by time, builds the evidence from the fetch manifest and the check's results,
 * and uploads it, retrying transient failures. Without results by then it reports an error itself,
 * so the scheduler learns why instead of waiting for the grace window.
 *
 * The results volume is written by a container whose checkers read hostile input, so every file
 * read from it is opened without following links, must be a regular file, is bounded in size and
 * time, and its content never appears in an error message: a planted link to the credential file
 * must not carry the credential, or any part of it, into the evidence.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as z from 'zod';
import { canonicalJson } from '../contract/canonical-json.js';
import { asText } from '../contract/text.js';
import { coerceError } from '../contract/errors.js';
import { type Evidence, EvidenceSchema, dispatchedProfile } from '../contract/evidence.js';
import { env, files, mountPath } from '../contract/pod.js';
import { type ProverProfile, ProverProfileSchema } from '../contract/profile.js';
import { ManifestSchema, type Manifest } from './manifest.js';
import { type CheckResult, CheckResultSchema } from './result.js';
import { UntrustedFileError, openRegular, readUntrusted } from './untrusted-file.js';

const POLL_MS = 10;
/** Bounds on what the reporter reads: the results volume itself is limited to 256 MiB. */
const MAX_RESULT_BYTES = 1024 * 1024;
const MAX_LOG_BYTES = 256 * 1024 * 1024;
const READ_TIMEOUT_MS = 30_000;

export interface ReportInput {
  jobId: string;
  attemptNo: number;
  profile: ProverProfile;
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
 * Waits for the check container to be over: the wrapper writes one byte when it starts and holds
 * the FIFO open until it exits. End-of-file after that byte means no writer is left. Returns false
 * when `reportBy` comes first.
 */
export async function waitForCheckExit(fifo: string, reportBy: number): Promise<boolean> {
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
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

/** Why there is no usable check result to report. */
interface NoResult {
  failure: string;
}

export function buildEvidence(input: ReportInput, manifest: Manifest, result: CheckResult | NoResult): Evidence {
  const base = {
    schemaVersion: 3 as const,
    jobId: input.jobId,
    attemptNo: input.attemptNo,
    source: { url: manifest.url, commit: manifest.commit, treeHash: manifest.treeHash, subdirectory: manifest.subdirectory },
    targets: input.targets,
    profile: dispatchedProfile(input.profile),
  };
  if ('failure' in result) {
    return EvidenceSchema.parse({
      ...base,
      check: {
        version: null,
        secondVersion: null,
        projectFile: null,
        libraries: [],
        binaryDigests: {},
        exitCode: null,
        startedAt: null,
        finishedAt: null,
        durationMs: null,
      },
      logs: null,
      results: [],
      audit: { allowedAxioms: [], findings: [] },
      goals: [],
      outcome: 'error',
      error: result.failure,
    });
  }
  const r = result;
  // The check's results carry text from proof output (reasons, excerpts): only text, or the API
  // refuses the upload and the attempt ends without evidence.
  return EvidenceSchema.parse(
    asText({
      ...base,
      check: {
        version: r.version,
        secondVersion: r.secondVersion,
        projectFile: r.projectFile,
        libraries: r.libraries,
        binaryDigests: r.binaryDigests,
        exitCode: r.exitCode,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        durationMs: r.durationMs,
      },
      logs: r.log,
      results: r.results,
      audit: { allowedAxioms: r.allowedAxioms, findings: r.findings },
      goals: r.goals,
      outcome: r.outcome,
      error: r.error,
    }),
  );
}

/** The SHA-256 of a file read in chunks, within the log's bounds. */
async function digestOf(file: string, label: string): Promise<string> {
  const { handle, size } = await openRegular(file, label);
  try {
    if (size > MAX_LOG_BYTES) throw new UntrustedFileError(`${label} is larger than ${MAX_LOG_BYTES} bytes`);
    const hash = createHash('sha256');
    const buffer = Buffer.alloc(1024 * 1024);
    const until = Date.now() + READ_TIMEOUT_MS;
    for (let offset = 0; offset < size; ) {
      if (Date.now() > until) throw new UntrustedFileError(`${label} could not be read within ${READ_TIMEOUT_MS} ms`);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      offset += bytesRead;
    }
    return `sha256:${hash.digest('hex')}`;
  } finally {
    await handle.close();
  }
}

/** Reads the check's result and checks the full log against the digest the wrapper computed. */
async function readResult(resultsDir: string): Promise<CheckResult | NoResult> {
  let text: string;
  try {
    text = (
      await readUntrusted(path.join(resultsDir, files.result), { maxBytes: MAX_RESULT_BYTES, timeoutMs: READ_TIMEOUT_MS }, files.result)
    ).content.toString('utf8');
  } catch (error) {
    if (error instanceof UntrustedFileError) return { failure: `the check left no usable result: ${error.message}` };
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Never the parser's message: it quotes the text, which could be anything a link pointed at.
    return { failure: `the check left no usable result: ${files.result} is not valid JSON` };
  }
  const parsed = CheckResultSchema.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))].slice(0, 10).join(', ');
    return { failure: `the check left no usable result: ${files.result} does not match the result schema (${fields})` };
  }
  let digest: string;
  try {
    digest = await digestOf(path.join(resultsDir, files.log), files.log);
  } catch (error) {
    if (error instanceof UntrustedFileError) return { failure: `the check log is not usable: ${error.message}` };
    throw error;
  }
  if (digest !== parsed.data.log.digest)
    return { failure: `the check log does not match its digest (${digest} ≠ ${parsed.data.log.digest})` };
  return parsed.data;
}

/** What is kept of the scheduler's answer: enough for the error message, never a whole page. */
const MAX_ANSWER_BYTES = 64 * 1024;
const UPLOAD_TIMEOUT_MS = 10_000;

/**
 * One POST with node:http(s). Not fetch: in Node 20 its WebAssembly HTTP parser costs ~70 ms to
 * load, and the process then waits ~50 ms at exit for V8 to finish compiling it — on the path of
 * every verdict (measured in docs/benchmarks.md).
 */
function post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : undefined;
  if (request === undefined) return Promise.reject(new Error(`upload refused locally: ${target.protocol} is not http or https`));
  return new Promise((resolve, reject) => {
    const sent = request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
      },
      (answer) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        answer.on('data', (chunk: Buffer) => {
          if (kept >= MAX_ANSWER_BYTES) return;
          chunks.push(chunk);
          kept += chunk.length;
        });
        answer.on('end', () => resolve({ status: answer.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        answer.on('error', reject);
        answer.on('close', () => {
          if (!answer.complete) reject(new Error('the answer was cut off'));
        });
      },
    );
    sent.on('error', reject);
    sent.end(body);
  });
}

/** Posts the evidence, retrying network errors, 5xx and 429 with backoff until `reportBy`. */
export async function upload(
  input: ReportInput,
  evidence: Evidence,
  log = (line: string) => process.stderr.write(`${line}\n`),
): Promise<void> {
  const body = canonicalJson(evidence);
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    let retryable: string;
    try {
      const response = await post(
        input.uploadUrl,
        { authorization: `Bearer ${input.credential}`, 'content-type': 'application/json' },
        body,
      );
      const text = response.text;
      if (response.status >= 200 && response.status < 300) return;
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
  const manifestText = (await readUntrusted(path.join(input.metaDir, files.manifest), { maxBytes: MAX_RESULT_BYTES }, files.manifest))
    .content;
  const manifest = ManifestSchema.parse(JSON.parse(manifestText.toString('utf8')));
  const exited = await waitForCheckExit(path.join(input.metaDir, files.checkExit), input.reportBy);
  const result = exited ? await readResult(input.resultsDir) : { failure: 'the check did not finish before the deadline' };
  const evidence = buildEvidence(input, manifest, result);
  await upload(input, evidence);
  return evidence;
}

export async function main(environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Node opens its inspector on SIGUSR1 unless the signal has a listener.
  process.on('SIGUSR1', () => {});
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
