/**
 * The quick start from a checkout in a 0700 directory, as root's home is on a fresh machine:
 * `node dist/scheduler/main.js` (what `npm start` runs after its build) with the embedded Postgres
 * and the local substrate. As root, the postgres user and the sandbox uids cannot search that
 * directory, so what they must reach is kept under /var/lib/proofpod (scheduler/state-paths.ts);
 * as any other user nothing moves. Either way proofpod reaches /readyz, verifies a Coq proof, and
 * finds its data again after a restart.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFinalJobState } from '../scheduler/job-states.js';
import { homeHash, sharedStateBase } from '../scheduler/state-paths.js';
import { FixtureRepo, scratch } from './support/git-fixtures.js';
import { call, waitFor } from './support/instance.js';

const root = process.getuid?.() === 0;
const work = scratch('proofpod-private-repo-');
// The fixture repository is the user's choice of place: the sandboxes must be able to read it.
chmodSync(work.root, 0o755);
let privateDir: string;
let checkout: string;
let repo: FixtureRepo;
let commit: string;
const running = new Set<ChildProcess>();

beforeAll(async () => {
  expect(existsSync('dist/pod-programs/check.mjs'), 'npm test builds dist/ before running the tests').toBe(true);
  privateDir = await mkdtemp(path.join(tmpdir(), 'proofpod-private-'));
  expect(statSync(privateDir).mode & 0o777).toBe(0o700);
  checkout = path.join(privateDir, 'proofpod');
  await mkdir(checkout);
  execFileSync('cp', ['-a', 'package.json', 'dist', checkout]);
  // Hard links where the file system allows (fast); the path is what makes them unreachable.
  try {
    execFileSync('cp', ['-al', 'node_modules', checkout], { stdio: 'ignore' });
  } catch {
    execFileSync('cp', ['-a', 'node_modules', checkout]);
  }
  // Uids of this file's own: test files run at once, each with a local substrate of its own.
  writeFileSync(path.join(privateDir, 'config.yaml'), 'local:\n  sandboxUids: { first: 620000, count: 64 }\n');
  repo = new FixtureRepo(work.dir('proofs'));
  commit = repo.commit({ 'Arith.v': readFileSync('test/fixtures/proofs/Arith.v') });
});

afterAll(async () => {
  for (const child of running) await end(child);
  work.remove();
  if (root && checkout && existsSync(checkout)) {
    await rm(path.join(sharedStateBase, homeHash(path.join(realpathSync(checkout), '.proofpod'))), { recursive: true, force: true });
  }
  if (privateDir) await rm(privateDir, { recursive: true, force: true });
});

/** Stops proofpod as a signal does (it stops its Postgres), or kills it when it does not stop in 20 s. */
async function end(child: ChildProcess): Promise<number | null> {
  running.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await closed;
  clearTimeout(timer);
  return code;
}

/** Starts proofpod as the quick start does, and resolves once /readyz answers 200. */
async function start(): Promise<{ url: string; lines: () => Record<string, unknown>[]; stop: () => Promise<number | null> }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!/^(PROOFPOD_|DATABASE_URL$|PORT$|HOST$)/.test(name)) env[name] = value;
  const child = spawn(process.execPath, ['dist/scheduler/main.js'], {
    cwd: checkout,
    env: {
      ...env,
      PORT: '0',
      LOG_LEVEL: 'info',
      PROOFPOD_ALLOW_FILE_SOURCES: 'true',
      PROOFPOD_CONFIG: path.join(privateDir, 'config.yaml'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  // Whole lines only: the last one may still be arriving.
  const lines = () =>
    output
      .split('\n')
      .slice(0, -1)
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  let url: string | undefined;
  try {
    await waitFor(
      'proofpod to listen',
      async () => {
        if (child.exitCode !== null) throw new Error(`proofpod exited with ${child.exitCode}: ${output}`);
        url = lines().find((l) => l.msg === 'proofpod listening')?.url as string | undefined;
        return url !== undefined;
      },
      60_000,
      100,
    );
    await waitFor('/readyz', async () => (await call(url!, 'GET', '/readyz')).status === 200, 30_000, 200);
  } catch (error) {
    await end(child);
    throw new Error(`${(error as Error).message}\n--- proofpod's output ---\n${output}`);
  }
  return {
    url: url!,
    lines,
    stop: () => end(child),
  };
}

describe(`the quick start from a checkout in a 0700 directory (as ${root ? 'root' : 'an ordinary user'})`, () => {
  it('reaches /readyz, verifies a Coq proof and finds its data again after a restart', async () => {
    const home = path.join(realpathSync(checkout), '.proofpod');
    const shared = path.join(sharedStateBase, homeHash(home));
    const first = await start();
    const token = readFileSync(path.join(home, 'admin-token'), 'utf8').trim();
    let jobId: string;
    try {
      const moved = first.lines().filter((l) => typeof l.msg === 'string' && l.msg.includes(`kept under ${sharedStateBase}`));
      if (root) {
        expect(moved).toEqual([
          expect.objectContaining({
            msg: `as root, what the postgres user and the sandboxes must reach is kept under ${sharedStateBase}: ${privateDir} is not searchable by others`,
            postgresData: path.join(shared, 'postgres'),
            postgresInstall: expect.stringMatching(new RegExp(`^${sharedStateBase}/postgres-`)),
            attempts: path.join(shared, 'attempts'),
            programs: expect.stringMatching(new RegExp(`^${shared}/programs/[0-9a-f]{16}$`)),
          }),
        ]);
        // The data is the postgres user's alone; the secrets stay in the home, root's alone.
        const data = statSync(path.join(shared, 'postgres'));
        expect([data.uid === 0, data.mode & 0o777]).toEqual([false, 0o700]);
        expect(statSync(privateDir).mode & 0o777, 'nothing above the checkout was opened up').toBe(0o700);
      } else {
        expect(moved).toEqual([]);
        expect(existsSync(path.join(home, 'postgres', 'PG_VERSION'))).toBe(true);
      }
      for (const secret of ['admin-token', 'postgres-password']) expect(statSync(path.join(home, secret)).mode & 0o777).toBe(0o600);

      expect((await call(first.url, 'POST', '/v1/jobs', { body: {} })).status).toBe(401);
      const submitted = await call(first.url, 'POST', '/v1/jobs', {
        token,
        body: { source: { url: repo.url, commit }, prover: 'coq', targets: ['Arith.v'], lane: 'verify' },
      });
      expect(submitted.status).toBe(201);
      jobId = submitted.body.id as string;
      await waitFor(
        'the job to end',
        async () => isFinalJobState((await call(first.url, 'GET', `/v1/jobs/${jobId}`, { token })).body.state),
        90_000,
        250,
      );
      const job = (await call(first.url, 'GET', `/v1/jobs/${jobId}`, { token })).body;
      expect(job, JSON.stringify(job)).toMatchObject({ state: 'verified' });
    } finally {
      expect(await first.stop()).toBe(0);
    }

    const second = await start();
    try {
      expect((await call(second.url, 'GET', `/v1/jobs/${jobId}`, { token })).body).toMatchObject({ state: 'verified' });
      expect(second.lines().some((l) => l.msg === 'initialising embedded postgres')).toBe(false);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});
