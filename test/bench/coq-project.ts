/**
 * Coq-project benchmark (`npm run bench:coq-project`): Debian's stdpp 1.8 sources (package
 * libcoq-stdpp) laid out as a project with a `_CoqProject`, verified end to end by proofpod on the
 * local substrate — submit → verdict through the API — next to a bare `make -j2` (coq_makefile) and
 * one `coqchk` over every module, on the same machine in the same run. The result replaces the
 * marked section of docs/benchmarks.md. `measureCoqProject` is also run, on one file, by
 * test/bench-coq-project.test.ts, so the benchmark cannot rot.
 */
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { startProofpod } from '../../scheduler/app.js';
import { parseConfig } from '../../scheduler/config.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import { openBenchDatabase } from './database.js';
import { machine, writeSection, runAsMain } from './report.js';
import { type JobState, isFinalJobState } from '../../scheduler/job-states.js';
import { git } from '../support/git-fixtures.js';

/** Where Debian's libcoq-stdpp puts its sources (beside the .vo files). */
export const STDPP_SOURCES = '/usr/lib/ocaml/coq/user-contrib/stdpp';
/** stdpp's own warning flags (its _CoqProject upstream), so the build reads as it does there. */
const STDPP_FLAGS =
  '-arg -w -arg -notation-overridden,-redundant-canonical-projection,-unknown-warning,-argument-scope-delimiter,-deprecated';

export interface CoqProjectFigures {
  files: number;
  bare: { buildMs: number; checkMs: number; totalMs: number };
  proofpod: { state: string; stateReason: string; submitToVerdictMs: number };
  ratio: number;
}

/** A git repository of the stdpp sources `files` (base names) with a `_CoqProject`; returns its url and commit. */
function layOut(root: string, files: readonly string[]): { dir: string; url: string; commit: string } {
  const dir = path.join(root, 'stdpp');
  mkdirSync(path.join(dir, 'theories'), { recursive: true });
  for (const file of files) cpSync(path.join(STDPP_SOURCES, file), path.join(dir, 'theories', file));
  writeFileSync(path.join(dir, '_CoqProject'), `-Q theories stdpp\n${STDPP_FLAGS}\n${files.map((f) => `theories/${f}`).join('\n')}\n`);
  const run = (...args: string[]) => git(dir, args);
  run('init', '--quiet');
  run('add', '--all');
  run('commit', '--quiet', '-m', 'stdpp 1.8 as a project');
  return { dir, url: pathToFileURL(dir).href, commit: run('rev-parse', 'HEAD') };
}

function timed(command: string, args: string[], cwd: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(performance.now() - started) : reject(new Error(`${command} exited ${code}: ${stderr}`)),
    );
  });
}

/** The bare build and check of the laid-out project, in a copy of its own. */
async function bare(source: string, work: string, modules: string[]): Promise<CoqProjectFigures['bare']> {
  const dir = path.join(work, 'bare');
  cpSync(source, dir, { recursive: true, filter: (p) => !p.includes('/.git') });
  const buildMs = await timed(
    'sh',
    ['-c', 'coq_makefile -f _CoqProject -o CoqMakefile >/dev/null && make -f CoqMakefile -j2 >/dev/null'],
    dir,
  );
  const checkMs = await timed('coqchk', ['-silent', '-o', '-Q', 'theories', 'stdpp', ...modules], dir);
  return { buildMs, checkMs, totalMs: buildMs + checkMs };
}

/** Measures `files` of stdpp (all of them by default) through proofpod and bare, on `databaseUrl`. */
export async function measureCoqProject(options: { databaseUrl: string; files?: string[] }): Promise<CoqProjectFigures> {
  const files =
    options.files ??
    readdirSync(STDPP_SOURCES)
      .filter((f) => f.endsWith('.v'))
      .sort();
  const work = mkdtempSync(path.join(tmpdir(), 'proofpod-bench-coq-'));
  // The sandboxes run as other uids: they read the repository and the state under here.
  chmodSync(work, 0o755);
  try {
    const repo = layOut(work, files);
    const figures = await bare(
      repo.dir,
      work,
      files.map((f) => `stdpp.${f.replace(/\.v$/, '')}`),
    );
    const config = parseConfig({
      port: 0,
      logLevel: 'silent',
      home: path.join(work, 'home'),
      databaseUrl: options.databaseUrl,
      substrate: 'local',
      pod: { allowFileSources: true },
      lanes: [{ name: 'verify', trust: 'trusted', concurrency: 1, maxDeadlineSeconds: 1800, resources: { limits: { cpu: 2 } } }],
      dispatch: { intervalSeconds: 0.2, batchSize: 10 },
    });
    const proofpod = await startProofpod(config, { log: pino({ level: 'silent' }), print: () => {} });
    try {
      const token = await createSubmitterToken(proofpod.sql, { id: 'bench-coq', trust: 'trusted', lanes: ['*'], roles: [] });
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const started = performance.now();
      const submitted = await fetch(`${proofpod.url}/v1/jobs`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          source: { url: repo.url, commit: repo.commit },
          prover: 'coq',
          targets: files.map((f) => `theories/${f}`),
          lane: 'verify',
        }),
      });
      const { id } = (await submitted.json()) as { id: string };
      for (;;) {
        const job = (await (await fetch(`${proofpod.url}/v1/jobs/${id}`, { headers })).json()) as { state: string; stateReason: string };
        if (isFinalJobState(job.state as JobState)) {
          const submitToVerdictMs = performance.now() - started;
          return {
            files: files.length,
            bare: figures,
            proofpod: { state: job.state, stateReason: job.stateReason, submitToVerdictMs },
            ratio: submitToVerdictMs / figures.totalMs,
          };
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await proofpod.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main() {
  const db = await openBenchDatabase('coq-project', pino({ level: 'warn' }));
  try {
    const f = await measureCoqProject({ databaseUrl: db.url });
    if (f.proofpod.state !== 'verified') throw new Error(`stdpp ended ${f.proofpod.state}: ${f.proofpod.stateReason}`);
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const date = new Date().toISOString().slice(0, 10);
    await writeSection(
      'coq-project',
      [
        `Measured ${date} with \`npm run bench:coq-project\` on ${machine()}, Postgres ${db.postgres}; ${f.files} files of stdpp 1.8 (Debian's libcoq-stdpp sources).`,
        '',
        '| measure | value |',
        '|---|---|',
        `| bare \`make -j2\` (coq_makefile) | ${s(f.bare.buildMs)} |`,
        `| bare \`coqchk -o\` over every module | ${s(f.bare.checkMs)} |`,
        `| bare total | ${s(f.bare.totalMs)} |`,
        `| proofpod submit → verdict (local substrate: fetch, build with make -j2, one coqchk, evidence) | ${s(f.proofpod.submitToVerdictMs)} |`,
        `| ratio proofpod / bare | ${f.ratio.toFixed(2)}× |`,
      ].join('\n'),
    );
    process.stdout.write(`${JSON.stringify(f, null, 2)}\n`);
  } finally {
    await db.close();
  }
}

runAsMain(import.meta.url, main);
