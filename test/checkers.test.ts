import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ProverProfile, ProverProfileSchema, profileForLane } from '../contract/profile.js';
import { parseConfig } from '../scheduler/config.js';
import { check } from './support/check-run.js';

const profiles = new Map(parseConfig({}).provers.map((p) => [p.name, p]));
const configured = (name: string) => profiles.get(name)!;
/** As a lane with a second checker runs it (audit, replay), and as one without (intake, verify). */
const both = (name: string) => profileForLane(configured(name), { secondChecker: true });
const firstOnly = (name: string) => profileForLane(configured(name), { secondChecker: false });
const proofs = path.resolve('test/fixtures/proofs');
const hostileSmt = path.resolve('test/fixtures/hostile/smt-commands');
const agda = path.resolve('test/fixtures/agda');
const setmm = '/usr/share/metamath/databases/set.mm';

describe('Metamath: metamath-rs and metamath C, and the axioms of the pinned set.mm', () => {
  it("a database whose axioms are all set.mm's passes with one verifier, and with both", async () => {
    const one = (await check(firstOnly('metamath'), ['setmm-prop.mm'])).result;
    expect(one).toMatchObject({ outcome: 'pass', secondVersion: null, findings: [] });
    expect(one.results[0]).toMatchObject({ result: 'pass', second: null });
    expect(one.version).toMatch(/^proofpod-metamath-verify .*metamath-rs/);
    const two = (await check(both('metamath'), ['setmm-prop.mm'])).result;
    expect(two).toMatchObject({ outcome: 'pass', secondVersion: expect.stringMatching(/^Metamath - Version/) });
    expect(two.results[0]).toMatchObject({ result: 'pass', second: { result: 'pass', exitCode: 0 } });
    expect(Object.keys(two.binaryDigests).sort()).toEqual(['metamath', 'proofpod-metamath-verify']);
  });

  it('an axiom the reference does not have is a finding naming its label: rejected', async () => {
    const database = `${await readFile(path.join(proofs, 'setmm-prop.mm'), 'utf8')}\n  ax-cheat $a |- ph $.\n  cheat $p |- ph $= wph ax-cheat $.\n`;
    const { result } = await check(both('metamath'), ['cheat.mm'], { files: { 'cheat.mm': database } });
    expect(result.outcome).toBe('fail');
    expect(result.findings).toEqual([{ kind: 'axiom', name: 'ax-cheat', target: 'cheat.mm', allowed: false }]);
    // Both verifiers accept its proofs: only the audit stands between it and `verified`.
    expect(result.results[0]).toMatchObject({ result: 'pass', second: { result: 'pass' } });
  });

  it("demo0.mm's own axioms are not set.mm's: rejected, each named", async () => {
    const { result } = await check(firstOnly('metamath'), ['demo0.mm']);
    expect(result.outcome).toBe('fail');
    expect(result.findings.map((f) => f.name).sort()).toEqual(['a1', 'a2', 'mp']);
  });

  it('an include outside the source is refused, whatever the verifiers say', async () => {
    const { result } = await check(both('metamath'), ['out.mm'], { files: { 'out.mm': `$[ ${setmm} $]\n` } });
    expect(result.outcome).toBe('fail');
    expect(result.results[0]).toMatchObject({ result: 'fail', exitCode: null, second: null });
    expect(result.results[0]!.reason).toContain(setmm);
  });

  it('set.mm is verified by both verifiers; a copy with one proof step changed is rejected by both', async () => {
    const whole = await readFile(setmm);
    const good = (await check(both('metamath'), ['set.mm'], { source: proofs, files: { 'set.mm': whole } })).result;
    expect(good).toMatchObject({ outcome: 'pass', findings: [] });
    expect(good.results[0]).toMatchObject({ result: 'pass', second: { result: 'pass' } });
    // id's proof `( wi ax-1 mpd ) AAABZAAACAECD`, one step changed.
    const text = whole.toString('latin1');
    const step = '( wi ax-1 mpd ) AAABZAAACAECD $.';
    expect(text.split(step)).toHaveLength(2);
    const broken = Buffer.from(text.replace(step, '( wi ax-1 mpd ) AAABZAAACAECC $.'), 'latin1');
    const bad = (await check(both('metamath'), ['set.mm'], { files: { 'set.mm': broken } })).result;
    expect(bad.outcome).toBe('fail');
    expect(bad.results[0]).toMatchObject({ result: 'fail', exitCode: 1, second: { result: 'fail' } });
  }, 120_000);

  it('two verifiers that disagree end in an error naming both (a stand-in second checker that always passes)', async () => {
    const mm = both('metamath');
    const standIn: ProverProfile = ProverProfileSchema.parse({
      ...mm,
      check: {
        ...mm.check,
        second: {
          versionCommand: ['echo', 'stand-in 1'],
          command: ['echo', 'All proofs in the database were verified (stand-in that always passes)', '{target}'],
          pass: mm.check.second!.pass,
        },
      },
    });
    const { result } = await check(standIn, ['broken-setmm.mm'], {
      files: {
        'broken-setmm.mm': (await readFile(path.join(proofs, 'setmm-prop.mm'), 'latin1')).replace('AAABZAAACAECD', 'AAABZAAACAECC'),
      },
    });
    expect(result.outcome).toBe('error');
    expect(result.results[0]).toMatchObject({ result: 'error', second: { result: 'pass' } });
    expect(result.results[0]!.reason).toMatch(
      /^the checkers disagree: proofpod-metamath-verify did not pass \(exit code 1\), saying ".*"; echo passed, saying "All proofs in the database were verified \(stand-in/,
    );
  });
});

describe('SMT: our reader of the obligation, z3 and cvc5', () => {
  it("an unsat obligation is verified by both, with both versions and the digest of cvc5's proof", async () => {
    const { result, log } = await check(both('smt-z3'), ['unsat.smt2']);
    expect(result).toMatchObject({
      outcome: 'pass',
      version: expect.stringMatching(/^Z3 version/),
      secondVersion: expect.stringMatching(/^This is cvc5 version/),
    });
    expect(result.results[0]).toMatchObject({
      result: 'pass',
      proofDigest: null,
      second: { result: 'pass', proofDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) },
    });
    expect(log).toContain('the checkers read our re-printing');
  });

  it('a satisfiable obligation is rejected by z3 and by cvc5', async () => {
    const { result } = await check(both('smt-z3'), ['sat.smt2']);
    expect(result.outcome).toBe('fail');
    expect(result.results[0]).toMatchObject({ result: 'fail', reason: 'output is not exactly "unsat": "sat"', second: { result: 'fail' } });
  });

  it.each([
    ['echo-unsat.smt2', 'line 5: echo is not allowed'],
    ['echo-only.smt2', 'line 2: echo is not allowed'],
    ['two-check-sat.smt2', 'line 4: push is not allowed'],
    ['push-pop.smt2', 'line 5: push is not allowed'],
    ['exit-early.smt2', 'line 5: exit is not allowed'],
  ])('%s is refused naming the command, before any solver runs', async (file, said) => {
    const { result } = await check(both('smt-z3'), [file], { source: hostileSmt });
    expect(result.outcome).toBe('fail');
    expect(result.results[0]).toMatchObject({ result: 'fail', exitCode: null, second: null });
    expect(result.results[0]!.reason).toContain(`not a safe SMT-LIB obligation: ${said}`);
  });

  it('anything after the one check-sat is refused, naming it', async () => {
    const { result } = await check(firstOnly('smt-z3'), ['twice.smt2'], {
      files: { 'twice.smt2': '(declare-const x Int)\n(assert false)\n(check-sat)\n(assert (> x 1))\n(check-sat)\n' },
    });
    expect(result.results[0]!.reason).toBe('not a safe SMT-LIB obligation: line 4: assert after check-sat is not allowed in an obligation');
  });
});

describe('Agda: --safe with the standard library', () => {
  it('a module using agda-stdlib is verified; the evidence records the library version', async () => {
    const { result } = await check(configured('agda'), ['Plus.agda'], { source: agda });
    expect(result).toMatchObject({ outcome: 'pass', version: expect.stringMatching(/^Agda version/) });
    expect(result.libraries).toEqual([
      { name: 'agda-stdlib', package: 'agda-stdlib', version: expect.stringMatching(/^1\./), digest: expect.stringMatching(/^sha256:/) },
    ]);
  });

  it.each([
    ['Postulated.agda', 'Cannot postulate all-zero with safe flag'],
    ['Looping.agda', 'Cannot use TERMINATING pragma with safe flag'],
  ])('%s is rejected naming what --safe refused', async (file, said) => {
    const { result } = await check(configured('agda'), [file], { source: agda });
    expect(result.outcome).toBe('fail');
    expect(result.results[0]!.reason).toContain(said);
  });

  it('an interface file the source ships is never loaded: only the modules are copied', async () => {
    const { result, log } = await check(configured('agda'), ['Plus.agda'], { source: agda, files: { 'Plus.agdai': 'forged interface' } });
    expect(result.outcome).toBe('pass');
    expect(log).toMatch(/\[copied 3 source file\(s\) matching/);
  });
});
