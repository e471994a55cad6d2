import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProverProfileSchema } from '../contract/profile.js';
import { parseConfig } from '../scheduler/config.js';
import { missingLibrary } from '../task-pod/check.js';
import { check } from './support/check-run.js';

const profiles = new Map(parseConfig({}).provers.map((p) => [p.name, p]));
const profile = (name: string) => profiles.get(name)!;

describe('build driver and check wrapper with real provers', () => {
  it('coq: a correct development passes, with version, binary digest and log digest', async () => {
    const { result, onDisk, log } = await check(profile('coq'), ['Arith.v']);
    expect(result).toMatchObject({ outcome: 'pass', exitCode: 0, error: null, findings: [] });
    expect(result.version).toMatch(/8\.\d+/);
    expect(result.binaryDigests.coqchk).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.results).toEqual([expect.objectContaining({ path: 'Arith.v', result: 'pass', exitCode: 0, reason: null })]);
    expect(onDisk).toEqual(result);
    expect(result.log.digest).toBe(`sha256:${createHash('sha256').update(log).digest('hex')}`);
    expect(log).toContain('--- build output of Arith.v (untrusted) ---');
    expect(log).toContain('$ coqchk -silent -o -Q . Top Top.Arith');
  });

  it("coq: a broken proof fails at the build, with coqc's error in the excerpt", async () => {
    const { result } = await check(profile('coq'), ['Broken.v']);
    expect(result).toMatchObject({ outcome: 'fail', exitCode: 1 });
    expect(result.results[0]).toMatchObject({
      result: 'fail',
      exitCode: null,
      reason: 'build failed with exit code 1 at ./Broken.v, line 2',
    });
    expect(result.log.excerpt).toContain('Unable to unify');
  });

  it('coq: the audit names the axiom and the admitted lemma, and the proof fails', async () => {
    const { result } = await check(profile('coq'), ['Axiomatic.v']);
    expect(result.findings).toEqual([
      { kind: 'axiom', name: 'Top.Axiomatic.excluded_middle', target: 'Axiomatic.v', allowed: false },
      { kind: 'axiom', name: 'Top.Axiomatic.left_for_later', target: 'Axiomatic.v', allowed: false },
    ]);
    expect(result).toMatchObject({ outcome: 'fail', exitCode: 1 });
    expect(result.results[0]?.result).toBe('pass');
  });

  it.each([
    ['Guard.v', 'unsafe-fixpoint', 'Top.Guard.loop'],
    ['TypeInType.v', 'type-in-type', 'Top.TypeInType.T'],
    ['Positivity.v', 'assumed-positivity', 'Top.Positivity.bad'],
  ])('coq: %s fails with a %s finding naming %s, whatever the allow-list says', async (target, kind, name) => {
    const { result } = await check(profile('coq'), [target], { allowedAxioms: [name] });
    expect(result.findings).toEqual([{ kind, name, target, allowed: false }]);
    expect(result).toMatchObject({ outcome: 'fail', exitCode: 1 });
  });

  it("coq: an axiom on the lane's allow-list passes with the finding recorded; off it, the proof fails", async () => {
    const classic = 'Coq.Logic.Classical_Prop.classic';
    const allowed = (await check(profile('coq'), ['Classical.v'], { allowedAxioms: [classic] })).result;
    expect(allowed).toMatchObject({ outcome: 'pass', exitCode: 0, allowedAxioms: [classic] });
    expect(allowed.findings).toEqual([{ kind: 'axiom', name: classic, target: 'Classical.v', allowed: true }]);
    expect((await check(profile('coq'), ['Classical.v'])).result).toMatchObject({
      outcome: 'fail',
      findings: [{ name: classic, allowed: false }],
    });
  });

  it('coq: a development requiring a library the image lacks fails naming the library', async () => {
    const { result } = await check(profile('coq'), ['NeedsMathcomp.v']);
    expect(result).toMatchObject({ outcome: 'fail' });
    expect(result.results[0]?.reason).toBe(
      'build failed with exit code 1 at ./NeedsMathcomp.v, line 2: it requires mathcomp, a library the image does not provide',
    );
  });

  it.each([
    ['Error: Cannot find a physical path bound to logical path\nssreflect with prefix mathcomp.\n', 'mathcomp'],
    ['Error: Cannot find a physical path bound to logical path\nmathcomp.ssreflect.ssreflect.\n', 'mathcomp'],
    ['Error: Cannot find a physical path bound to logical path stdpp.\n', 'stdpp'],
    ['Error: Cannot find a physical path bound to logical path Top.Nope.\n', undefined],
    ['Error: Unable to unify\n', undefined],
  ])('names the missing library of %j: %s', (output, library) => {
    expect(missingLibrary(output, ['Top'])).toBe(library);
  });

  describe('coq: goals, bound to their statements', () => {
    const goal = (name: string, statement = 'forall n : nat, n + 0 = n') => ({ name, statement });

    it('a theorem that has the statement proves its goal', async () => {
      const { result } = await check(profile('coq'), ['Goals.v'], { goals: [goal('Top.Goals.main_thm')] });
      expect(result).toMatchObject({ outcome: 'pass', goals: [{ name: 'Top.Goals.main_thm', result: 'proved', reason: null }] });
      // Elaborated alone, bound, then re-checked by coqchk with the development.
      expect(result.log.excerpt).toMatch(/\$ coqc -Q \S+ Proofpod Goal_1\.v/);
      expect(result.log.excerpt).toMatch(/\$ coqchk -silent -o -Q \S+ Top -Q \S+ Proofpod Proofpod\.Bind_1/);
    });

    it.each([
      ['another statement (0 + n = n)', goal('Top.Goals.weak'), /^Top\.Goals\.weak is missing or does not have the goal's type: /],
      ['a name that is not there', goal('Top.Goals.nope'), /^Top\.Goals\.nope is missing or does not have the goal's type: .*nope/],
      [
        'a statement that holds only through a notation of the source (+ as *)',
        goal('Top.NotationTrick.times_one', 'forall n : nat, n + 1 = n'),
        /^Top\.NotationTrick\.times_one is missing or does not have the goal's type: /,
      ],
      [
        'a statement that does not elaborate with the standard library alone',
        goal('Top.Goals.main_thm', 'forall n : nat, n ⊕ 0 = n'),
        /^the statement does not elaborate with the standard library alone: /,
      ],
    ])('%s: the goal fails, naming why', async (_name, g, reason) => {
      const targets = g.name.startsWith('Top.NotationTrick') ? ['NotationTrick.v'] : ['Goals.v'];
      const { result } = await check(profile('coq'), targets, { goals: [g] });
      expect(result).toMatchObject({ outcome: 'fail', goals: [{ name: g.name, result: 'failed' }] });
      expect(result.goals[0]!.reason).toMatch(reason);
    });

    it('goals are not bound when a target fails', async () => {
      const { result } = await check(profile('coq'), ['Broken.v'], { goals: [goal('Top.Broken.x')] });
      expect(result.goals).toEqual([{ ...goal('Top.Broken.x'), result: 'failed', reason: 'not bound: a target did not pass' }]);
    });
  });

  it('coq: a summary the audit does not recognise is an error, never a pass', async () => {
    const coq = profile('coq');
    // A check command whose summary has a section coqchk 8.16 does not print.
    const odd = ProverProfileSchema.parse({
      ...coq,
      check: {
        ...coq.check,
        command: ['sh', '-c', 'printf "CONTEXT SUMMARY\\n===============\\n\\n* Rewrite rules: allowed\\n" >&2', '{target}'],
      },
    });
    const { result } = await check(odd, ['Arith.v']);
    expect(result).toMatchObject({ outcome: 'error', exitCode: 2 });
    expect(result.error).toBe('audit: unknown section in coqchk\'s summary: "* Rewrite rules: allowed"');
  });

  it('files in the results volume before the run cannot pass for results', async () => {
    const fake = { outcome: 'pass', exitCode: 0, forged: true };
    const { result, onDisk } = await check(profile('coq'), ['Broken.v'], {
      tamper: async (_artifacts, results) => {
        await writeFile(path.join(results, 'result.json'), JSON.stringify(fake));
        await writeFile(path.join(results, 'check.log'), 'all good\n');
        await writeFile(path.join(results, '.check.log.partial'), 'planted\n');
      },
    });
    expect(result.outcome).toBe('fail');
    expect(onDisk.outcome).toBe('fail');
  });

  it("a build stopped by the lane's build time limit fails its target, naming the limit", async () => {
    const coq = profile('coq');
    const slow = ProverProfileSchema.parse({ ...coq, build: { command: ['timeout', '-k', '1', '1', 'sleep', '5'] } });
    const { result } = await check(slow, ['Arith.v']);
    expect(result.results[0]).toMatchObject({
      result: 'fail',
      reason: "build failed with exit code 124 (past the lane's build time limit)",
    });
  });

  it('a build that claims success for a target it never built: the check fails it', async () => {
    const { result } = await check(profile('coq'), ['Broken.v'], {
      tamper: async (artifacts) => writeFile(path.join(artifacts, 'status', '1.exit'), '0\n'),
    });
    expect(result).toMatchObject({ outcome: 'fail' });
    expect(result.results[0]).toMatchObject({ result: 'fail', exitCode: 1 });
  });

  it.each([
    ['a symlink', (file: string) => symlink('/etc/passwd', file)],
    ['a FIFO', async (file: string) => void execFileSync('mkfifo', [file])],
  ])('a build output that is %s is refused before any checker reads it', async (_kind, plant) => {
    const { result } = await check(profile('coq'), ['Arith.v'], {
      tamper: (artifacts) => plant(path.join(artifacts, 'tree', 'Planted.vo')),
    });
    expect(result).toMatchObject({ outcome: 'error', exitCode: 2 });
    expect(result.error).toBe('build output Planted.vo is not a regular file');
  });

  it("records the profile's libraries with their package version and digest; a listed library the image lacks is an error", async () => {
    const { result } = await check(profile('coq'), ['Arith.v']);
    // The digest as docs/architecture.md defines it, computed here on its own: each compiled file's path
    // under the library and its SHA-256, sorted by path.
    const root = '/usr/lib/ocaml/coq/user-contrib/stdpp';
    const compiled = readdirSync(root, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.vo'))
      .sort();
    expect(compiled.length).toBeGreaterThan(10);
    const expected = createHash('sha256');
    for (const file of compiled)
      expected.update(
        `${file}\0${createHash('sha256')
          .update(readFileSync(path.join(root, file)))
          .digest('hex')}\n`,
      );
    expect(result.libraries).toEqual([
      {
        name: 'stdpp',
        package: 'libcoq-stdpp',
        version: expect.stringMatching(/^1\./),
        digest: `sha256:${expected.digest('hex')}`,
      },
    ]);
    const coq = profile('coq');
    const lacking = ProverProfileSchema.parse({
      ...coq,
      libraries: [{ name: 'mathcomp', package: 'libcoq-mathcomp', path: '/usr/lib/ocaml/coq/user-contrib/mathcomp' }],
    });
    expect((await check(lacking, ['Arith.v'])).result).toMatchObject({
      outcome: 'error',
      error: 'library mathcomp (/usr/lib/ocaml/coq/user-contrib/mathcomp) is not in the image',
    });
  });

  it('a missing prover binary is an error, not a failure of the proof', async () => {
    const z3 = profile('smt-z3');
    const missing = ProverProfileSchema.parse({ ...z3, name: 'missing', check: { ...z3.check, command: ['no-such-prover', '{target}'] } });
    const { result } = await check(missing, ['unsat.smt2']);
    expect(result).toMatchObject({ outcome: 'error', exitCode: 2 });
    expect(result.error).toContain('no-such-prover not found');
  });
});

describe('the programs of ours in a task pod open no inspector on SIGUSR1', () => {
  /** Whether something listens on Node's inspector port of 127.0.0.1. */
  const inspectorOpen = () =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect(9229, '127.0.0.1');
      socket.once('connect', () => resolve(socket.destroy() === socket));
      socket.once('error', () => resolve(false));
    });

  it.each(['check', 'reporter'])('%s: SIGUSR1 changes nothing', async (program) => {
    expect(await inspectorOpen(), 'nothing else listens on 9229').toBe(false);
    const work = await mkdtemp(path.join(tmpdir(), 'proofpod-sigusr1-'));
    for (const name of ['meta', 'results', 'tmp', 'source', 'credential']) await mkdir(path.join(work, name));
    execFileSync('mkfifo', [path.join(work, 'meta', 'check-exit.fifo')]);
    const z3 = profile('smt-z3');
    // A check that runs long enough to be signalled; a reporter that waits for it.
    const slow = { ...z3, versionCommand: ['sleep', '3'] };
    await writeFile(
      path.join(work, 'meta', 'manifest.json'),
      JSON.stringify({
        url: 'file:///x',
        commit: 'c'.repeat(40),
        treeHash: 'd'.repeat(40),
        subdirectory: null,
        bytes: 1,
        files: 1,
        fetchedAt: new Date().toISOString(),
      }),
    );
    await writeFile(path.join(work, 'credential', 'credential'), 'ppu_test');
    const env = {
      PATH: process.env.PATH,
      ...Object.fromEntries(
        ['meta', 'results', 'tmp', 'source', 'credential'].map((m) => [`PROOFPOD_MOUNT_${m.toUpperCase()}`, path.join(work, m)]),
      ),
      PROOFPOD_PROFILE: JSON.stringify(slow),
      PROOFPOD_TARGETS: '["unsat.smt2"]',
      PROOFPOD_JOB_ID: '11111111-1111-4111-8111-111111111111',
      PROOFPOD_ATTEMPT: '1',
      PROOFPOD_UPLOAD_URL: 'http://127.0.0.1:9/v1/attempts/x/evidence',
      PROOFPOD_REPORT_BY: String(Math.floor(Date.now() / 1000) + 4),
    };
    const child = spawn(process.execPath, [path.resolve(`dist/pod-programs/${program}.mjs`)], { env, stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 700));
      process.kill(child.pid!, 'SIGUSR1');
      await new Promise((r) => setTimeout(r, 500));
      expect(child.exitCode, 'the program is still running, not killed by the signal').toBeNull();
      expect(await inspectorOpen()).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
