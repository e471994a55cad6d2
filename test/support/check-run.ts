import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ProverProfile } from '../../contract/profile.js';
import { buildCommand } from '../../scheduler/pod/build-script.js';
import { runCheck } from '../../task-pod/check.js';
import { CheckResultSchema } from '../../task-pod/result.js';

const fixtures = path.resolve('test/fixtures/proofs');

export interface CheckOptions {
  /** Plays a hostile build between build and check. */
  tamper?: (artifacts: string, results: string) => Promise<void>;
  allowedAxioms?: string[];
  goals?: { name: string; statement: string }[];
  /** The source directory (copied); default test/fixtures/proofs. */
  source?: string;
  /** Files to write into the copied source before the run. */
  files?: Record<string, string | Buffer>;
}

/**
 * Runs the real build driver (the build container's command) and the real check wrapper with real
 * provers on fixture files, without a sandbox; `tamper` plays a hostile build between the two.
 */
export async function check(profile: ProverProfile, targets: string[], options: CheckOptions = {}) {
  const work = await mkdtemp(path.join(tmpdir(), 'proofpod-check-'));
  const dir = (name: string) => path.join(work, name);
  await cp(options.source ?? fixtures, dir('source'), { recursive: true });
  for (const [name, content] of Object.entries(options.files ?? {})) {
    await mkdir(path.dirname(path.join(dir('source'), name)), { recursive: true });
    await writeFile(path.join(dir('source'), name), content);
  }
  for (const name of ['artifacts', 'results', 'tmp']) await mkdir(dir(name));
  if (profile.build) {
    const [command, ...args] = buildCommand(profile.build.command, null, targets);
    execFileSync(command!, args, {
      env: { PATH: process.env.PATH, PROOFPOD_MOUNT_SOURCE: dir('source'), PROOFPOD_MOUNT_ARTIFACTS: dir('artifacts') },
      stdio: 'pipe',
    });
  }
  await options.tamper?.(dir('artifacts'), dir('results'));
  const result = await runCheck({
    profile,
    targets,
    allowedAxioms: options.allowedAxioms ?? [],
    goals: options.goals ?? [],
    subdirectory: null,
    sourceDir: dir('source'),
    artifactsDir: profile.build ? dir('artifacts') : undefined,
    resultsDir: dir('results'),
    tmpDir: dir('tmp'),
  });
  const onDisk = CheckResultSchema.parse(JSON.parse(await readFile(path.join(dir('results'), 'result.json'), 'utf8')));
  const log = await readFile(path.join(dir('results'), 'check.log'), 'utf8');
  return { result, onDisk, log, sourceDir: dir('source') };
}
