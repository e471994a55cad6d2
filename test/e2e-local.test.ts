import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { main as cli } from '../scheduler/cli/main.js';
import type { ProverProfileInput } from '../scheduler/prover-profiles.js';
import { defaultProverProfiles } from '../scheduler/prover-profiles.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FixtureRepo, scratch } from './support/git-fixtures.js';
import { call, startInstance, waitFor } from './support/instance.js';
import { isFinalJobState } from '../scheduler/job-states.js';

/**
 * Tier 3: the scheduler with the local substrate (bubblewrap sandboxes) and the real task-pod
 * programs and provers (Debian's coqc/coqchk, metamath, z3) on proof sources served from local git
 * repositories. Nothing is faked.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'e2e' });
const work = scratch('proofpod-e2e-');
// The sandboxes run as an unprivileged uid: they must be able to read the fixture repositories.
chmodSync(work.root, 0o755);
const fixtures = path.resolve('test/fixtures/proofs');
const fixture = (name: string) => readFileSync(path.join(fixtures, name));

const coq = defaultProverProfiles.find((p) => p.name === 'coq')!;
const metamath = defaultProverProfiles.find((p) => p.name === 'metamath')!;
const provers: ProverProfileInput[] = [
  ...defaultProverProfiles,
  { ...coq, name: 'coq-pinned', pins: { imageDigest: `sha256:${'9'.repeat(64)}` } },
  // A second checker that always passes, standing in for one that disagrees with metamath-rs.
  {
    ...metamath,
    name: 'metamath-stand-in',
    check: {
      ...metamath.check,
      second: {
        versionCommand: ['echo', 'stand-in 1'],
        command: ['echo', 'All proofs in the database were verified (stand-in that always passes)', '{target}'],
        pass: { outputMatches: '^All proofs in the database were verified' },
      },
    },
  },
];

let proofpod: Proofpod;
let repo: FixtureRepo;
let good: string;

beforeAll(async () => {
  expect(existsSync('dist/pod-programs/check.mjs'), 'npm test builds dist/ before running the tests').toBe(true);
  proofpod = await startInstance(db.url, {
    substrate: 'local',
    home: work.dir('home'),
    pod: { allowFileSources: true, maxSourceBytes: 1024 * 1024 },
    // Uids of this file's own: test files run at once, each with a local substrate of its own.
    local: { sandboxUids: { first: 500_000, count: 1024 } },
    provers,
    lanes: [
      { name: 'verify', trust: 'trusted', concurrency: 4, maxDeadlineSeconds: 120 },
      { name: 'classical', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 120, allowedAxioms: ['Coq.Logic.Classical_Prop.classic'] },
      { name: 'audit', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 120, secondChecker: true },
    ],
    dispatch: { intervalSeconds: 0.2, batchSize: 10 },
    reaper: { intervalSeconds: 0.5, evidenceGraceSeconds: 20 },
  });
  repo = new FixtureRepo(work.dir('proofs'));
  good = repo.commit({
    'theories/Arith.v': fixture('Arith.v'),
    'theories/Broken.v': fixture('Broken.v'),
    'theories/Axiomatic.v': fixture('Axiomatic.v'),
    'theories/Classical.v': fixture('Classical.v'),
    'theories/Guard.v': fixture('Guard.v'),
    'theories/NeedsMathcomp.v': fixture('NeedsMathcomp.v'),
    'theories/Goals.v': fixture('Goals.v'),
    'mm/setmm-prop.mm': fixture('setmm-prop.mm'),
    'mm/broken.mm': fixture('setmm-prop.mm').toString('latin1').replace('AAABZAAACAECD', 'AAABZAAACAECC'),
    'mm/demo0.mm': fixture('demo0.mm'),
    'smt/echo-unsat.smt2': readFileSync('test/fixtures/hostile/smt-commands/echo-unsat.smt2'),
    'agda/Plus.agda': readFileSync('test/fixtures/agda/Plus.agda'),
    'agda/Postulated.agda': readFileSync('test/fixtures/agda/Postulated.agda'),
    'smt/unsat.smt2': fixture('unsat.smt2'),
    'smt/sat.smt2': fixture('sat.smt2'),
  });
});
afterAll(async () => {
  await proofpod?.stop();
  work.remove();
});

async function submit(prover: string, targets: string[], subdirectory?: string, commit = good, url = repo.url, lane = 'verify') {
  const response = await call(proofpod.url, 'POST', '/v1/jobs', {
    token,
    body: { source: { url, commit, ...(subdirectory ? { subdirectory } : {}) }, prover, targets, lane },
  });
  expect(response.status).toBe(201);
  return response.body.id as string;
}

async function verdict(id: string) {
  await waitFor(
    `job ${id} to end`,
    async () => {
      const r = await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token });
      return isFinalJobState(r.body.state);
    },
    90_000,
    250,
  );
  const job = (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body;
  const evidence = (await call(proofpod.url, 'GET', `/v1/jobs/${id}/evidence`, { token })).body.evidence;
  return { job, evidence: evidence.at(-1)?.body };
}

describe('local end to end with real provers', () => {
  it('a real Coq development is verified, with evidence bound to what ran', async () => {
    const id = await submit('coq', ['Arith.v'], 'theories');
    const { job, evidence } = await verdict(id);
    expect(job).toMatchObject({ state: 'verified', attempts: [expect.objectContaining({ state: 'succeeded', observedExitCode: 0 })] });
    expect(job.attempts[0].observedImageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(job.attempts[0].observedBuild).toEqual({ exitCode: 0, imageDigest: job.attempts[0].observedImageDigest });
    expect(evidence.source).toEqual({ url: repo.url, commit: good, treeHash: repo.tree(good), subdirectory: 'theories' });
    expect(evidence.targets).toEqual(['Arith.v']);
    expect(evidence.profile).toEqual({
      ...evidence.profile,
      project: expect.objectContaining({ format: 'coq-project', file: '_CoqProject' }),
      name: 'coq',
      build: ['coqc', '-Q', '.', 'Top', '{target}'],
      checkInput: 'artifacts',
      check: ['coqchk', '-silent', '-o', '-Q', '.', 'Top', 'Top.{module}'],
      audit: { parser: 'coqchk', command: null },
    });
    expect(evidence.check).toMatchObject({ exitCode: 0, binaryDigests: { coqchk: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) } });
    expect(evidence.check.version).toMatch(/8\.\d+/);
    // What the verdict relied on besides the source: the image's stdpp, by package version and digest.
    expect(evidence.check.libraries).toEqual([
      {
        name: 'stdpp',
        package: 'libcoq-stdpp',
        version: expect.stringMatching(/^1\./),
        digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      },
    ]);
    expect(evidence.logs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The build's output is in the log, marked as what it is; the check ran coqchk over the staged .vo.
    expect(evidence.logs.excerpt).toContain('--- build output of Arith.v (untrusted) ---');
    expect(evidence.logs.excerpt).toContain('$ coqchk -silent -o -Q . Top Top.Arith');
    expect(evidence.audit).toEqual({ allowedAxioms: [], findings: [] });
  });

  it('a profile that pins another image digest than the one that ran: error naming both', async () => {
    const { job } = await verdict(await submit('coq-pinned', ['Arith.v'], 'theories'));
    expect(job.state).toBe('error');
    expect(job.stateReason).toBe(
      `image digest mismatch: the check container ran ${job.attempts[0].observedImageDigest}, the profile pins sha256:${'9'.repeat(64)}`,
    );
  });

  it("a broken Coq proof is rejected with coqc's error in the excerpt", async () => {
    const { job, evidence } = await verdict(await submit('coq', ['Broken.v'], 'theories'));
    expect(job.state).toBe('rejected');
    expect(job.stateReason).toBe('rejected: Broken.v (build failed with exit code 1 at ./Broken.v, line 2)');
    expect(evidence.logs.excerpt).toContain('Unable to unify');
  });

  it('a proof relying on an axiom and an admitted lemma: the audit names them and the proof is rejected', async () => {
    const rejected = await verdict(await submit('coq', ['Axiomatic.v'], 'theories'));
    expect(rejected.job.state).toBe('rejected');
    expect(rejected.job.stateReason).toBe('rejected: audit found axiom Top.Axiomatic.excluded_middle, axiom Top.Axiomatic.left_for_later');
  });

  it("an axiom on the lane's allow-list is verified with the finding recorded; in a lane without it, rejected", async () => {
    const allowed = await verdict(await submit('coq', ['Classical.v'], 'theories', good, repo.url, 'classical'));
    expect(allowed.job).toMatchObject({ state: 'verified', stateReason: 'verified: 1 target(s) passed, relying on 1 allowed axiom(s)' });
    expect(allowed.evidence.audit).toEqual({
      allowedAxioms: ['Coq.Logic.Classical_Prop.classic'],
      findings: [{ kind: 'axiom', name: 'Coq.Logic.Classical_Prop.classic', target: 'Classical.v', allowed: true }],
    });
    const rejected = await verdict(await submit('coq', ['Classical.v'], 'theories'));
    expect(rejected.job.stateReason).toBe('rejected: audit found axiom Coq.Logic.Classical_Prop.classic');
  });

  it('a development that needs a library the image lacks is rejected naming the library', async () => {
    const { job } = await verdict(await submit('coq', ['NeedsMathcomp.v'], 'theories'));
    expect(job).toMatchObject({
      state: 'rejected',
      stateReason: expect.stringMatching(/it requires mathcomp, a library the image does not provide\)$/),
    });
    expect(job.attempts).toHaveLength(1);
  });

  it('goals: a theorem with the statement is verified; one with another statement is rejected naming the goal', async () => {
    const submitWith = async (goals: { name: string; statement: string }[]) => {
      const response = await call(proofpod.url, 'POST', '/v1/jobs', {
        token,
        body: {
          source: { url: repo.url, commit: good, subdirectory: 'theories' },
          prover: 'coq',
          targets: ['Goals.v'],
          goals,
          lane: 'verify',
        },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      return verdict(response.body.id);
    };
    const proved = await submitWith([{ name: 'Top.Goals.main_thm', statement: 'forall n : nat, n + 0 = n' }]);
    expect(proved.job).toMatchObject({
      state: 'verified',
      stateReason: 'verified: 1 target(s) passed, 1 goal(s) proved',
      goals: [{ name: 'Top.Goals.main_thm', statement: 'forall n : nat, n + 0 = n' }],
    });
    expect(proved.evidence.goals).toEqual([
      { name: 'Top.Goals.main_thm', statement: 'forall n : nat, n + 0 = n', result: 'proved', reason: null },
    ]);
    const weaker = await submitWith([{ name: 'Top.Goals.weak', statement: 'forall n : nat, n + 0 = n' }]);
    expect(weaker.job.state).toBe('rejected');
    expect(weaker.job.stateReason).toMatch(
      /^rejected: goal Top\.Goals\.weak \(Top\.Goals\.weak is missing or does not have the goal's type: /,
    );
  });

  it.each([
    [
      'a prover that cannot bind goals',
      { prover: 'smt-z3', targets: ['unsat.smt2'], goals: [{ name: 'Top.A.x', statement: 'True' }] },
      'goals',
    ],
    [
      'a statement that is more than one term',
      { prover: 'coq', targets: ['Goals.v'], goals: [{ name: 'Top.A.x', statement: 'True. Axiom cheat : False' }] },
      'goals.0.statement',
    ],
    ['a name that is not qualified', { prover: 'coq', targets: ['Goals.v'], goals: [{ name: 'x', statement: 'True' }] }, 'goals.0.name'],
  ])('goals: %s is a 400 naming the field', async (_name, body, field) => {
    const response = await call(proofpod.url, 'POST', '/v1/jobs', {
      token,
      body: { source: { url: repo.url, commit: good }, lane: 'verify', ...body },
    });
    expect(response.status).toBe(400);
    expect(response.body.fields.map((f: { field: string }) => f.field)).toEqual([field]);
  });

  it('False through an unsafe fixpoint is rejected with a finding naming the fixpoint', async () => {
    const { job, evidence } = await verdict(await submit('coq', ['Guard.v'], 'theories'));
    expect(job).toMatchObject({ state: 'rejected', stateReason: 'rejected: audit found unsafe-fixpoint Top.Guard.loop' });
    expect(evidence.audit.findings).toEqual([{ kind: 'unsafe-fixpoint', name: 'Top.Guard.loop', target: 'Guard.v', allowed: false }]);
  });

  it('a development with a _CoqProject is built by it and checked under its logical names', async () => {
    const project = new FixtureRepo(work.dir('coq-project'));
    const files = Object.fromEntries(
      ['_CoqProject', 'theories/Base.v', 'theories/Lemmas.v', 'theories/Main.v'].map((f) => [
        f,
        readFileSync(path.join('test/fixtures/coq-project', f)),
      ]),
    );
    const commit = project.commit(files);
    const { job, evidence } = await verdict(await submit('coq', ['theories/Main.v', 'theories/Lemmas.v'], undefined, commit, project.url));
    expect(job).toMatchObject({ state: 'verified', stateReason: 'verified: 2 target(s) passed' });
    expect(evidence.check.projectFile).toBe('_CoqProject');
    expect(evidence.logs.excerpt).toContain('--- build output of the project (untrusted) ---');
    // One coqchk over both targets.
    expect(evidence.logs.excerpt).toContain('$ coqchk -silent -o -Q theories Arith2 Arith2.Main Arith2.Lemmas');
    // Without targets: every file the _CoqProject lists, as the check read them from it.
    const all = await verdict(await submit('coq', [], undefined, commit, project.url));
    expect(all.job).toMatchObject({ state: 'verified', stateReason: 'verified: 3 target(s) passed' });
    expect(all.evidence.targets).toEqual([]);
    expect(all.evidence.results.map((r: { path: string }) => r.path)).toEqual(['theories/Base.v', 'theories/Lemmas.v', 'theories/Main.v']);
    // The same development with a proof broken in a file the targets require: rejected, naming where.
    const broken = project.commit({
      'theories/Lemmas.v':
        'From Arith2 Require Import Base.\nLemma double_S (n : nat) : double (S n) = S (double n).\nProof. reflexivity. Qed.\n',
    });
    const failed = await verdict(await submit('coq', ['theories/Main.v'], undefined, broken, project.url));
    expect(failed.job.state).toBe('rejected');
    expect(failed.job.stateReason).toMatch(
      /^rejected: theories\/Main\.v \(build failed with exit code 2 at \.\/theories\/Lemmas\.v, line 3\)$/,
    );
  });

  it("a _CoqProject that binds the standard library's names is an error naming the binding", async () => {
    const project = new FixtureRepo(work.dir('coq-project-stdlib'));
    const commit = project.commit({ _CoqProject: '-Q theories Coq\ntheories/Init.v\n', 'theories/Init.v': 'Definition x := 0.\n' });
    const { job } = await verdict(await submit('coq', ['theories/Init.v'], undefined, commit, project.url));
    expect(job).toMatchObject({
      state: 'error',
      stateReason: 'reporter reported an error: _CoqProject: -Q theories Coq binds a name of the standard library',
    });
  });

  it('Metamath and SMT: one passing and one failing case each, two jobs at a time', async () => {
    const ids = await Promise.all([
      submit('metamath', ['setmm-prop.mm'], 'mm'),
      submit('metamath', ['broken.mm'], 'mm'),
      submit('smt-z3', ['unsat.smt2'], 'smt'),
      submit('smt-z3', ['sat.smt2'], 'smt'),
    ]);
    const states = await Promise.all(ids.map(async (id) => (await verdict(id)).job.state));
    expect(states).toEqual(['verified', 'rejected', 'verified', 'rejected']);
  });

  it("in a lane with a second checker both run and agree; their versions and cvc5's proof digest are in the evidence", async () => {
    const [mm, smt] = await Promise.all([
      submit('metamath', ['setmm-prop.mm'], 'mm', good, repo.url, 'audit'),
      submit('smt-z3', ['unsat.smt2'], 'smt', good, repo.url, 'audit'),
    ]);
    const m = await verdict(mm);
    expect(m.job.state).toBe('verified');
    expect(m.evidence.profile.second).toEqual(['metamath', 'read "{target}"', 'verify proof *', 'exit']);
    expect(m.evidence.check).toMatchObject({
      version: expect.stringMatching(/^proofpod-metamath-verify/),
      secondVersion: expect.stringMatching(/^Metamath - Version/),
    });
    const z = await verdict(smt);
    expect(z.job.state).toBe('verified');
    expect(z.evidence.check).toMatchObject({
      version: expect.stringMatching(/^Z3 version/),
      secondVersion: expect.stringMatching(/^This is cvc5 version/),
    });
    expect(z.evidence.results[0].second).toMatchObject({ result: 'pass', proofDigest: expect.stringMatching(/^sha256:/) });
  });

  it('checkers that disagree end the job in error naming both (a stand-in second checker that always passes)', async () => {
    const { job } = await verdict(await submit('metamath-stand-in', ['broken.mm'], 'mm', good, repo.url, 'audit'));
    expect(job.state).toBe('error');
    expect(job.stateReason).toMatch(
      /^reporter reported an error: the checkers disagree: proofpod-metamath-verify did not pass .*; echo passed, saying "All proofs in the database were verified \(stand-in/,
    );
  });

  it('hostile Metamath and SMT sources are rejected naming the axiom or the command', async () => {
    const [axioms, echo] = await Promise.all([submit('metamath', ['demo0.mm'], 'mm'), submit('smt-z3', ['echo-unsat.smt2'], 'smt')]);
    expect((await verdict(axioms)).job).toMatchObject({
      state: 'rejected',
      stateReason: 'rejected: audit found axiom a1, axiom a2, axiom mp',
    });
    expect((await verdict(echo)).job).toMatchObject({
      state: 'rejected',
      stateReason: 'rejected: echo-unsat.smt2 (not a safe SMT-LIB obligation: line 5: echo is not allowed in an obligation)',
    });
  });

  it('Agda: a module using agda-stdlib is verified, one with a postulate rejected naming it', async () => {
    const [plus, postulated] = await Promise.all([submit('agda', ['Plus.agda'], 'agda'), submit('agda', ['Postulated.agda'], 'agda')]);
    const ok = await verdict(plus);
    expect(ok.job.state).toBe('verified');
    expect(ok.evidence.check.libraries).toEqual([expect.objectContaining({ name: 'agda-stdlib', version: expect.stringMatching(/^1\./) })]);
    const bad = await verdict(postulated);
    expect(bad.job).toMatchObject({ state: 'rejected' });
    expect(bad.job.stateReason).toContain('Cannot postulate all-zero with safe flag');
  });

  it('two jobs run in parallel and both reach their verdicts', async () => {
    const [a, b] = await Promise.all([submit('coq', ['Arith.v'], 'theories'), submit('coq', ['Broken.v'], 'theories')]);
    const [ra, rb] = await Promise.all([verdict(a), verdict(b)]);
    expect([ra.job.state, rb.job.state]).toEqual(['verified', 'rejected']);
    const spans = await db.sql<{ startedAt: Date; finishedAt: Date }[]>`
      select started_at, finished_at from attempts where job_id in (${a}, ${b})`;
    const [x, y] = spans;
    expect(x!.startedAt < y!.finishedAt && y!.startedAt < x!.finishedAt, 'the two attempts overlapped in time').toBe(true);
  });

  it('refuses a profile that does not run locally (lean), naming the prover', async () => {
    const response = await call(proofpod.url, 'POST', '/v1/jobs', {
      token,
      body: { source: { url: repo.url, commit: good }, prover: 'lean', targets: ['Main.lean'], lane: 'verify' },
    });
    expect(response.status).toBe(400);
    expect(response.body.fields).toEqual([{ field: 'prover', message: 'not runnable on the local substrate' }]);
  });

  it('the CLI submits and waits for the verdict', async () => {
    const lines: string[] = [];
    const code = await cli(
      [
        'submit',
        '--repo',
        repo.url,
        '--commit',
        good,
        '--subdir',
        'smt',
        '--prover',
        'smt-z3',
        '--target',
        'unsat.smt2',
        '--wait',
        '--timeout',
        '90',
      ],
      { PROOFPOD_URL: proofpod.url, PROOFPOD_TOKEN: token },
      (s) => void lines.push(s),
    );
    expect(code).toBe(0);
    expect(lines.join('')).toMatch(/VERIFIED: verified: 1 target\(s\) passed/);
  });
});

describe('hostile sources are stopped before anything runs', () => {
  it.each([
    ['a symlink to a host path', { 'leak.v': { symlink: '/etc/shadow' } }, /symlink/i],
    ['a submodule to a local path', { '.gitmodules': '[submodule "x"]\n\tpath = x\n\turl = /etc\n' }, /submodule/i],
    ['a source larger than the limit', { 'big.v': Buffer.alloc(2 * 1024 * 1024, 97) }, /larger|limit|size/i],
  ])('%s → error naming the reason, no prover run', async (_name, files, reason) => {
    const hostile = new FixtureRepo(work.dir('hostile'));
    const commit = hostile.commit({ 'A.v': fixture('Arith.v'), ...files } as never);
    const { job, evidence } = await verdict(await submit('coq', ['A.v'], undefined, commit, hostile.url));
    expect(job.state).toBe('error');
    expect(job.stateReason).toMatch(/^source refused: /);
    expect(job.stateReason).toMatch(reason);
    expect(evidence).toBeUndefined();
  });

  it('a commit that does not exist → error naming the commit', async () => {
    const missing = 'f'.repeat(40);
    const { job } = await verdict(await submit('coq', ['Arith.v'], 'theories', missing));
    expect(job.state).toBe('error');
    expect(job.stateReason).toContain(missing);
  });

  it('a repository whose hooks would write a marker: the hook never runs', async () => {
    const hooked = new FixtureRepo(work.dir('hooked'));
    const marker = path.join(work.root, 'hook-ran');
    const hook = { executable: `#!/bin/sh\ntouch ${marker}\n` };
    const commit = hooked.commit({ 'A.v': fixture('Arith.v'), 'hooks/post-checkout': hook, '.githooks/post-checkout': hook });
    // Hooks in the serving repository itself, too.
    for (const name of ['post-checkout', 'post-merge', 'reference-transaction', 'pre-upload-pack']) {
      writeFileSync(path.join(hooked.dir, '.git', 'hooks', name), hook.executable, { mode: 0o755 });
    }
    const { job } = await verdict(await submit('coq', ['A.v'], undefined, commit, hooked.url));
    expect(job.state).toBe('verified');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('after the run', () => {
  it('leaves no attempt directories behind once the jobs have ended', async () => {
    const attempts = path.join(proofpod.config.home, 'attempts');
    await waitFor(
      'the reaper to remove finished attempts',
      async () => (await readdir(attempts).catch(() => [])).filter((e) => !e.startsWith('.')).length === 0,
      15_000,
      250,
    );
    // Every attempt gave its uids back.
    expect(await readdir(path.join(attempts, '.uid-slots')).catch(() => [])).toEqual([]);
  });
});
