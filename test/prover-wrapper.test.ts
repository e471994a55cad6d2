import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../scheduler/config.js';
import type { ProverProfile } from '../scheduler/prover-profiles.js';
import { runProver } from '../task-pod/prover.js';
import { ProverResultSchema } from '../task-pod/result.js';

const profiles = new Map(parseConfig({}).provers.map((p) => [p.name, p]));
const fixtures = path.resolve('test/fixtures/proofs');

/** Runs the real wrapper with a real prover on fixture files, without a sandbox. */
async function prove(profileName: string, targets: string[], before?: (results: string) => Promise<void>) {
  const work = await mkdtemp(path.join(tmpdir(), 'proofpod-wrapper-'));
  const source = path.join(work, 'source');
  const results = path.join(work, 'results');
  await cp(fixtures, source, { recursive: true });
  await mkdir(results);
  await before?.(results);
  const profile = profiles.get(profileName) as ProverProfile;
  const result = await runProver({ profile, targets, workdir: source, resultsDir: results });
  const onDisk = ProverResultSchema.parse(JSON.parse(await readFile(path.join(results, 'result.json'), 'utf8')));
  const log = await readFile(path.join(results, 'prover.log'), 'utf8');
  return { result, onDisk, log };
}

describe('prover wrapper with real provers', () => {
  it('coq: a correct development passes, with version, binary digest and log digest', async () => {
    const { result, onDisk, log } = await prove('coq', ['Arith.v']);
    expect(result).toMatchObject({ outcome: 'pass', exitCode: 0, error: null, audit: { findings: [], policy: 'reject' } });
    expect(result.version).toMatch(/^The Coq Proof Assistant, version 8\./);
    expect(result.binaryDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.targets).toEqual([expect.objectContaining({ path: 'Arith.v', result: 'pass', exitCode: 0, reason: null })]);
    expect(onDisk).toEqual(result);
    expect(result.log.digest).toBe(`sha256:${createHash('sha256').update(log).digest('hex')}`);
    expect(log).toContain('$ coqc -Q . Top Arith.v');
    expect(log).toContain('$ coqchk -silent -o -Q . Top Top.Arith');
  });

  it("coq: a broken proof fails, with coqc's error in the excerpt", async () => {
    const { result } = await prove('coq', ['Broken.v']);
    expect(result).toMatchObject({ outcome: 'fail', exitCode: 1 });
    expect(result.targets[0]).toMatchObject({ result: 'fail', exitCode: 1, reason: 'exit code 1' });
    expect(result.log.excerpt).toContain('Unable to unify');
  });

  it('coq: the audit names the axiom and the admitted lemma, and policy reject fails the proof', async () => {
    const { result } = await prove('coq', ['Axiomatic.v']);
    expect(result.audit.findings).toEqual([
      { kind: 'axiom', name: 'Top.Axiomatic.excluded_middle', target: 'Axiomatic.v' },
      { kind: 'axiom', name: 'Top.Axiomatic.left_for_later', target: 'Axiomatic.v' },
    ]);
    expect(result).toMatchObject({ outcome: 'fail', exitCode: 1 });
    expect(result.targets[0]?.result).toBe('pass');
  });

  it('coq: under policy allow the same proof passes with its findings recorded', async () => {
    const coq = profiles.get('coq')!;
    profiles.set('coq-allow', { ...coq, name: 'coq-allow', audit: { ...coq.audit!, policy: 'allow' } });
    const { result } = await prove('coq-allow', ['Axiomatic.v']);
    expect(result).toMatchObject({ outcome: 'pass', exitCode: 0 });
    expect(result.audit.findings).toHaveLength(2);
  });

  it('metamath: a valid database passes and a broken proof fails', async () => {
    expect((await prove('metamath', ['demo0.mm'])).result).toMatchObject({ outcome: 'pass', exitCode: 0 });
    const broken = (await prove('metamath', ['broken.mm'])).result;
    expect(broken).toMatchObject({ outcome: 'fail', exitCode: 1 });
    expect(broken.targets[0]?.reason).toMatch(/^output (does not match|matches)/);
    expect(broken.log.excerpt).toContain('?Error');
  });

  it('smt-z3: unsat passes, sat fails', async () => {
    expect((await prove('smt-z3', ['unsat.smt2'])).result).toMatchObject({ outcome: 'pass' });
    const sat = (await prove('smt-z3', ['sat.smt2'])).result;
    expect(sat).toMatchObject({ outcome: 'fail', exitCode: 1 });
    expect(sat.targets[0]?.reason).toBe('output does not match ^unsat\\s*$');
  });

  it('files in the results volume before the run cannot pass for results', async () => {
    const fake = { outcome: 'pass', exitCode: 0, forged: true };
    const { result, onDisk } = await prove('coq', ['Broken.v'], async (results) => {
      await writeFile(path.join(results, 'result.json'), JSON.stringify(fake));
      await writeFile(path.join(results, 'prover.log'), 'all good\n');
      await writeFile(path.join(results, 'extra'), 'left by the source');
    });
    expect(result.outcome).toBe('fail');
    expect(onDisk.outcome).toBe('fail');
  });

  it('a missing prover binary is an error, not a failure of the proof', async () => {
    profiles.set('missing', { ...profiles.get('smt-z3')!, name: 'missing', checkCommand: ['no-such-prover', '{target}'] });
    const { result } = await prove('missing', ['unsat.smt2']);
    expect(result).toMatchObject({ outcome: 'error', exitCode: 2 });
    expect(result.error).toContain('no-such-prover not found');
  });
});
