import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { removeTree } from '../scheduler/substrate/local/host.js';
import { createTestDatabase, createToken } from './support/database.js';
import { type FileSpec, FixtureRepo, scratch } from './support/git-fixtures.js';
import { attackPayload, hostileFiles, payload, pluginSource } from './support/hostile-fixtures.js';
import { call, startInstance, waitFor } from './support/instance.js';
import { isFinalJobState } from '../scheduler/job-states.js';

/**
 * One test per way a hostile proof source tried to get a wrong proof verified or the upload
 * credential out (fixtures in test/fixtures/hostile/), on the local substrate with the stock
 * profiles and the real provers. None may end `verified`; each ends `rejected`, `error` or refused
 * with the reason; and the attempt's credential — its value, any 8 characters of it, or its digest —
 * appears in no API answer and no log line.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'hostile' });
const work = scratch('proofpod-hostile-');
chmodSync(work.root, 0o755);

let proofpod: Proofpod;
const logLines: string[] = [];

beforeAll(async () => {
  expect(existsSync('/usr/bin/ocamlopt'), 'the plugin fixtures are built with Debian ocaml-nox (.ci/run installs it)').toBe(true);
  const capture = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  proofpod = await startInstance(
    db.url,
    {
      substrate: 'local',
      home: work.dir('home'),
      pod: { allowFileSources: true, maxSourceBytes: 4 * 1024 * 1024 },
      // Uids of this file's own: test files run at once, each with a local substrate of its own.
      local: { sandboxUids: { first: 400_000, count: 1024 } },
      lanes: [{ name: 'verify', trust: 'trusted', concurrency: 4, maxDeadlineSeconds: 120 }],
      dispatch: { intervalSeconds: 0.2, batchSize: 10 },
      reaper: { intervalSeconds: 0.5, evidenceGraceSeconds: 20 },
    },
    { log: pino({ level: 'debug' }, capture) },
  );
});
afterAll(async () => {
  await proofpod?.stop();
  // Attempts the reaper has not removed yet keep read-only credential directories.
  await removeTree(work.root);
});

interface Outcome {
  job: { state: string; stateReason: string; attempts: { name: string }[] };
  evidence: { logs?: { excerpt: string } } | undefined;
  credentials: string[];
}

/** Submits, keeps every attempt's credential as the substrate wrote it, waits for the verdict. */
async function run(files: Record<string, FileSpec>, prover: string, targets: string[], exact = false): Promise<Outcome> {
  const repo = new FixtureRepo(work.dir('repo'));
  const commit = exact ? repo.commitExact(files) : repo.commit(files);
  const response = await call(proofpod.url, 'POST', '/v1/jobs', {
    token,
    body: { source: { url: repo.url, commit }, prover, targets, lane: 'verify' },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  const id = response.body.id as string;
  const credentials = new Set<string>();
  const attempts = path.join(proofpod.config.home, 'attempts');
  await waitFor(
    `job ${id} to end`,
    async () => {
      for (const name of (existsSync(attempts) ? readdirSync(attempts) : []).filter((n) => n.startsWith(`pp-${id.replaceAll('-', '')}`))) {
        const file = path.join(attempts, name, 'volumes', 'upload-credential', 'credential');
        // Read while the substrate may still be writing it: keep only whole credentials.
        const credential = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
        if (/^ppu_[A-Za-z0-9_-]{20,}$/.test(credential)) credentials.add(credential);
      }
      const r = await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token });
      return isFinalJobState(r.body.state);
    },
    90_000,
    20,
  );
  const job = (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body;
  const evidence = (await call(proofpod.url, 'GET', `/v1/jobs/${id}/evidence`, { token })).body;
  const events = (await call(proofpod.url, 'GET', `/v1/jobs/${id}/events`, { token })).body;
  expect(credentials.size, 'the test saw the attempt credential').toBeGreaterThan(0);
  assertNoCredential([...credentials], JSON.stringify({ job, evidence, events }) + logLines.join(''));
  return { job, evidence: evidence.evidence?.at(-1)?.body, credentials: [...credentials] };
}

function assertNoCredential(credentials: string[], text: string): void {
  for (const credential of credentials) {
    const digest = createHash('sha256').update(credential).digest('hex');
    expect(
      text.includes(digest),
      `the credential digest leaked: …${text.slice(Math.max(0, text.indexOf(digest) - 300), text.indexOf(digest) + 80)}`,
    ).toBe(false);
    for (let i = 0; i + 8 <= credential.length; i++) {
      const piece = credential.slice(i, i + 8);
      if (piece.startsWith('ppu_')) continue; // the prefix alone names the kind, not the secret
      expect(text.includes(piece), `8 characters of the credential (${i}) leaked`).toBe(false);
    }
  }
}

const excerpt = (outcome: Outcome) => outcome.evidence?.logs?.excerpt ?? '';

describe('a proof that runs code at build time', () => {
  it('a repository-shipped Coq plugin that signals, attaches to the inspector and forges results: rejected with its admitted lemma', async () => {
    const outcome = await run(pluginSource(attackPayload), 'coq', ['Evil.v']);
    expect(outcome.job.state, `${outcome.job.stateReason}\n${excerpt(outcome)}`).toBe('rejected');
    expect(outcome.job.stateReason).toContain('Top.Evil.wrong');
    const log = excerpt(outcome);
    // The plugin did run, and none of it reached anything of ours.
    expect(log).toContain('attack: is uid 65533');
    expect(log).toMatch(/attack: inspector 9229: unreachable/);
    expect(log).not.toMatch(/attack: inspector \d+: "patched"/);
    expect(log).not.toMatch(/attack: wrote \/workspace\/(results|meta|source)/);
    expect(log).toMatch(/attack: credential: ENOENT/);
    expect(log).not.toMatch(/attack: pid \d+ runs .*(dist\/task-pod|dist\/scheduler)/);
  });

  it('a plugin that leaves a process behind: nothing of the build outlives it', async () => {
    const outcome = await run(pluginSource(payload('leftover.sh')), 'coq', ['Evil.v']);
    expect(outcome.job.state).toBe('rejected');
    const survivors = readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\u000061.25\u0000';
        } catch {
          return false;
        }
      });
    expect(survivors).toEqual([]);
  });

  it('a plugin that plants a link to the credential and a FIFO among the build outputs: error naming them', async () => {
    const outcome = await run(pluginSource(payload('plant-links.sh')), 'coq', ['Evil.v']);
    expect(outcome.job.state).not.toBe('verified');
    expect(outcome.job.state).toBe('error');
    expect(outcome.job.stateReason).toMatch(/(Planted|Fifo)\.vo is not a regular file/);
  });
});

describe('a goal bound to a module that declares a plugin', () => {
  it('the check loads no plugin of the source: the goal is not proved, and the job is rejected naming it', async () => {
    const files = pluginSource('echo "attack: the plugin ran"\n');
    const repo = new FixtureRepo(work.dir('repo'));
    const commit = repo.commit(files);
    const response = await call(proofpod.url, 'POST', '/v1/jobs', {
      token,
      body: {
        source: { url: repo.url, commit },
        prover: 'coq',
        targets: ['PluginTrue.v'],
        goals: [{ name: 'Top.PluginTrue.t', statement: 'True' }],
        lane: 'verify',
      },
    });
    expect(response.status).toBe(201);
    let job: { state: string; stateReason: string } = { state: '', stateReason: '' };
    await waitFor(
      'the job to end',
      async () => {
        job = (await call(proofpod.url, 'GET', `/v1/jobs/${response.body.id}`, { token })).body;
        return ['verified', 'rejected', 'error'].includes(job.state);
      },
      90_000,
      100,
    );
    expect(job.state).toBe('rejected');
    expect(job.stateReason).toMatch(
      /^rejected: goal Top\.PluginTrue\.t \(Top\.PluginTrue\.t is missing or does not have the goal's type: .*evil/,
    );
  });
});

describe('a source whose checkout differs from its commit', () => {
  it('.gitattributes ident turns a false claim about a string into a true one: the committed content is checked, and rejected', async () => {
    const outcome = await run(
      hostileFiles('gitattributes-ident', { '.gitattributes': 'gitattributes', 'Stamp.v': 'Stamp.v' }),
      'coq',
      ['Stamp.v'],
      true,
    );
    expect(outcome.job.state).not.toBe('verified');
    expect(['rejected', 'error']).toContain(outcome.job.state);
  });
});

describe('a target that rewrites another', () => {
  it("z3's regular-output-channel cannot turn a later satisfiable target into an unsat one", async () => {
    const outcome = await run(hostileFiles('smt-output-channel', { 'a.smt2': 'a.smt2', 'b.smt2': 'b.smt2' }), 'smt-z3', [
      'a.smt2',
      'b.smt2',
    ]);
    expect(outcome.job.state).toBe('rejected');
    expect(outcome.job.stateReason).toMatch(/b\.smt2/);
  });
});

describe('a target that is an option', () => {
  it.each([['--version'], ['-load-vernac-source=/etc/passwd'], ['sub/-x.v']])(
    '%s is refused with a 400 naming the field',
    async (target) => {
      const response = await call(proofpod.url, 'POST', '/v1/jobs', {
        token,
        body: {
          source: { url: 'https://example.org/p.git', commit: 'a'.repeat(40) },
          prover: 'coq',
          targets: ['Fine.v', target],
          lane: 'verify',
        },
      });
      expect(response.status).toBe(400);
      expect(response.body.fields.map((f: { field: string }) => f.field)).toEqual(['targets.1']);
    },
  );
});
