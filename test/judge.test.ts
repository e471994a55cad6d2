import { describe, expect, it } from 'vitest';
import { type Evidence, EvidenceSchema } from '../contract/evidence.js';
import { ProverProfileSchema } from '../contract/profile.js';
import { type Dispatched, type Observation, judge } from '../scheduler/evidence/judge.js';
import { FAKE_BINARY_DIGEST, FAKE_IMAGE_DIGEST, defaultProfile, evidenceFor, laneProfile } from './support/evidence.js';

const launch = {
  jobId: '11111111-1111-4111-8111-111111111111',
  attemptNo: 1,
  source: { url: 'https://example.org/p.git', commit: 'b'.repeat(40), subdirectory: null },
  prover: 'coq',
  targets: ['A.v', 'B.v'],
};
const coq = defaultProfile('coq');
const dispatched: Dispatched = { source: launch.source, targets: launch.targets, profile: coq, allowedAxioms: [], goals: [] };
const pass = evidenceFor(launch);
const seen: Observation = {
  check: { exitCode: 0, imageDigest: FAKE_IMAGE_DIGEST },
  build: { exitCode: 0, imageDigest: FAKE_IMAGE_DIGEST },
};
const exited = (code: number): Observation => ({ ...seen, check: { ...seen.check, exitCode: code } });
const finding = { kind: 'axiom' as const, name: 'Top.magic', target: 'A.v', allowed: false };
const allowing = { ...dispatched, allowedAxioms: ['Top.magic'] };
const failed = (overrides: Partial<Evidence> = {}): Evidence => ({
  ...pass,
  outcome: 'fail',
  check: { ...pass.check, exitCode: 1 },
  ...overrides,
});
const other = (digit: string) => `sha256:${digit.repeat(64)}`;

describe('judge', () => {
  it.each<[string, Evidence, Observation, Dispatched, string]>([
    ['pass, observed exit 0', pass, seen, dispatched, 'verified'],
    [
      'fail with a failing target',
      failed({ results: [{ ...pass.results[0]!, result: 'fail' }, pass.results[1]!] }),
      exited(1),
      dispatched,
      'rejected',
    ],
    ['pass claimed but the substrate saw exit 1', pass, exited(1), dispatched, 'error'],
    [
      'pass claimed with an axiom the lane does not allow',
      { ...pass, audit: { allowedAxioms: [], findings: [finding] } },
      seen,
      dispatched,
      'error',
    ],
    [
      'fail from an axiom the lane does not allow',
      failed({ audit: { allowedAxioms: [], findings: [finding] } }),
      exited(1),
      dispatched,
      'rejected',
    ],
    [
      'pass relying on an axiom the lane allows',
      { ...pass, audit: { allowedAxioms: ['Top.magic'], findings: [{ ...finding, allowed: true }] } },
      seen,
      allowing,
      'verified',
    ],
    [
      'an allowed axiom marked not allowed',
      failed({ audit: { allowedAxioms: ['Top.magic'], findings: [finding] } }),
      exited(1),
      allowing,
      'error',
    ],
    [
      'a disallowed finding marked allowed',
      { ...pass, audit: { allowedAxioms: [], findings: [{ ...finding, allowed: true }] } },
      seen,
      dispatched,
      'error',
    ],
    [
      'an unsafe fixpoint, which no allow-list allows',
      {
        ...pass,
        audit: { allowedAxioms: ['Top.loop'], findings: [{ kind: 'unsafe-fixpoint', name: 'Top.loop', target: 'A.v', allowed: true }] },
      },
      seen,
      { ...dispatched, allowedAxioms: ['Top.loop'] },
      'error',
    ],
    ['pass claimed, exit codes agree on 1', { ...pass, check: { ...pass.check, exitCode: 1 } }, exited(1), dispatched, 'error'],
    [
      'pass claimed with a failed target',
      { ...pass, results: [{ ...pass.results[0]!, result: 'error' }, pass.results[1]!] },
      seen,
      dispatched,
      'error',
    ],
    ['pass claimed with a target left out', { ...pass, results: [pass.results[0]!] }, seen, dispatched, 'error'],
    ['no exit code observed', pass, { ...seen, check: { exitCode: null, imageDigest: null } }, dispatched, 'error'],
    [
      'the reporter reports an error',
      { ...pass, outcome: 'error', error: 'the check produced nothing before the deadline' },
      seen,
      dispatched,
      'error',
    ],
    ['no build container observed for a profile with a build step', pass, { ...seen, build: null }, dispatched, 'error'],
    [
      'a build container observed that exited 1',
      pass,
      { ...seen, build: { exitCode: 1, imageDigest: FAKE_IMAGE_DIGEST } },
      dispatched,
      'error',
    ],
  ])('%s → %s', (_name, evidence, observed, what, state) => {
    const ending = judge(evidence, observed, what);
    expect('jobState' in ending ? ending.jobState : ending.kind).toBe(state);
  });

  describe('a lane with a second checker', () => {
    const smtLaunch = { ...launch, prover: 'smt-z3', targets: ['a.smt2'] };
    const both = laneProfile('smt-z3', { secondChecker: true });
    const onlyFirst = laneProfile('smt-z3');
    const dispatchedBoth: Dispatched = { source: launch.source, targets: smtLaunch.targets, profile: both, allowedAxioms: [], goals: [] };
    const agreed = evidenceFor(smtLaunch, {}, both);
    const noBuild: Observation = { ...seen, build: null };
    it.each<[string, Evidence, Dispatched, string]>([
      ['both checkers passed', agreed, dispatchedBoth, 'verified: 1 target(s) passed'],
      [
        'the evidence ran the first checker alone',
        evidenceFor(smtLaunch, {}, onlyFirst),
        dispatchedBoth,
        'profile second mismatch: evidence says null, dispatched ["cvc5","--lang=smt2","--dump-proofs","{target}"]',
      ],
      [
        'a second checker the lane does not run',
        agreed,
        { ...dispatchedBoth, profile: onlyFirst },
        'profile second mismatch: evidence says ["cvc5","--lang=smt2","--dump-proofs","{target}"], dispatched null',
      ],
      [
        'pass with the second run missing',
        { ...agreed, results: [{ ...agreed.results[0]!, second: null }] },
        dispatchedBoth,
        'evidence says pass but the second checker the lane requires did not pass every target',
      ],
      [
        'pass with the second checker failing',
        { ...agreed, results: [{ ...agreed.results[0]!, second: { ...agreed.results[0]!.second!, result: 'fail' } }] },
        dispatchedBoth,
        'evidence says pass but the second checker the lane requires did not pass every target',
      ],
      [
        'pass without the second version',
        { ...agreed, check: { ...agreed.check, secondVersion: null } },
        dispatchedBoth,
        'evidence says pass but names no version of the second checker the lane requires',
      ],
      [
        'another reader',
        { ...agreed, profile: { ...agreed.profile, read: null } },
        dispatchedBoth,
        'profile read mismatch: evidence says null, dispatched {"format":"smt-lib","reference":null}',
      ],
    ])('%s', (_name, evidence, what, reason) => {
      expect(judge(evidence, noBuild, what).reason).toBe(reason);
    });
  });

  it('names both values on a disagreement', () => {
    expect(judge(pass, exited(3), dispatched).reason).toBe('exit code mismatch: evidence says 0, substrate observed 3');
  });

  it('names the audit finding in a rejection', () => {
    expect(judge(failed({ audit: { allowedAxioms: [], findings: [finding] } }), exited(1), dispatched).reason).toBe(
      'rejected: audit found axiom Top.magic',
    );
    const fixpoint = { kind: 'unsafe-fixpoint' as const, name: 'Top.loop', target: 'A.v', allowed: false };
    expect(judge(failed({ audit: { allowedAxioms: [], findings: [fixpoint] } }), exited(1), dispatched).reason).toBe(
      'rejected: audit found unsafe-fixpoint Top.loop',
    );
  });

  it('says how many allowed axioms a verified proof relies on', () => {
    const relying = { ...pass, audit: { allowedAxioms: ['Top.magic'], findings: [{ ...finding, allowed: true }] } };
    expect(judge(relying, seen, allowing).reason).toBe('verified: 2 target(s) passed, relying on 1 allowed axiom(s)');
  });
});

describe('judge: the evidence must describe what was dispatched', () => {
  // Each is what a holder of a leaked credential could upload: a passing report of something else.
  it.each<[string, Evidence, string]>([
    [
      'another source URL',
      { ...pass, source: { ...pass.source, url: 'https://example.org/other.git' } },
      'source URL mismatch: evidence says "https://example.org/other.git", dispatched "https://example.org/p.git"',
    ],
    [
      'another commit',
      { ...pass, source: { ...pass.source, commit: 'c'.repeat(40) } },
      `commit mismatch: evidence says "${'c'.repeat(40)}", dispatched "${'b'.repeat(40)}"`,
    ],
    [
      'another subdirectory',
      { ...pass, source: { ...pass.source, subdirectory: 'easy' } },
      'subdirectory mismatch: evidence says "easy", dispatched null',
    ],
    ['other targets', { ...pass, targets: ['A.v'] }, 'targets mismatch: evidence says ["A.v"], dispatched ["A.v","B.v"]'],
    [
      'another profile',
      { ...pass, profile: { ...pass.profile, name: 'coq-allow' } },
      'profile name mismatch: evidence says "coq-allow", dispatched "coq"',
    ],
    ['another check command', { ...pass, profile: { ...pass.profile, check: ['true'] } }, 'profile check mismatch: evidence says ["true"]'],
    ['another build command', { ...pass, profile: { ...pass.profile, build: null } }, 'profile build mismatch: evidence says null'],
    [
      'another audit',
      { ...pass, profile: { ...pass.profile, audit: null } },
      'profile audit mismatch: evidence says null, dispatched {"command":null,"parser":"coqchk"}',
    ],
    [
      'another allow-list',
      { ...pass, audit: { allowedAxioms: ['Coq.Logic.Classical_Prop.classic'], findings: [] } },
      'allowed axioms mismatch: evidence says ["Coq.Logic.Classical_Prop.classic"], dispatched []',
    ],
  ])('%s → error naming both values', (_name, evidence, reason) => {
    const ending = judge(evidence, seen, dispatched);
    expect(ending).toMatchObject({ kind: 'error', jobState: 'error' });
    expect(ending.reason.startsWith(reason)).toBe(true);
  });

  it('a pinned image digest that differs from the observed one is an error naming both', () => {
    const pinned = ProverProfileSchema.parse({ ...coq, pins: { imageDigest: other('1') } });
    const ending = judge(evidenceFor(launch, {}, pinned), seen, { ...dispatched, profile: pinned });
    expect(ending).toMatchObject({
      kind: 'error',
      reason: `image digest mismatch: the check container ran ${FAKE_IMAGE_DIGEST}, the profile pins ${other('1')}`,
    });
    // Matching pins pass.
    const matching = ProverProfileSchema.parse({
      ...coq,
      pins: { imageDigest: FAKE_IMAGE_DIGEST, binaries: { coqchk: FAKE_BINARY_DIGEST } },
    });
    expect(judge(evidenceFor(launch, {}, matching), seen, { ...dispatched, profile: matching }).kind).toBe('verdict');
  });

  it("build and check must have run the same image, the profile's", () => {
    const ending = judge(pass, { ...seen, build: { exitCode: 0, imageDigest: other('2') } }, dispatched);
    expect(ending.reason).toBe(`image digest mismatch: the build container ran ${other('2')}, the check container ${FAKE_IMAGE_DIGEST}`);
  });

  it('a pinned image is required of the build container too: one whose digest is unknown is an error', () => {
    const pinned = ProverProfileSchema.parse({ ...coq, pins: { imageDigest: FAKE_IMAGE_DIGEST } });
    const unknown = { ...seen, build: { exitCode: 0, imageDigest: null } };
    expect(judge(evidenceFor(launch, {}, pinned), unknown, { ...dispatched, profile: pinned }).reason).toBe(
      `image digest mismatch: the build container ran an unknown image, the profile pins ${FAKE_IMAGE_DIGEST}`,
    );
  });

  it('a pinned checker binary that differs is an error naming both', () => {
    const pinned = ProverProfileSchema.parse({ ...coq, pins: { binaries: { coqchk: other('3') } } });
    const ending = judge(evidenceFor(launch, {}, pinned), seen, { ...dispatched, profile: pinned });
    expect(ending.reason).toBe(`binary digest of coqchk mismatch: evidence says "${FAKE_BINARY_DIGEST}", the profile pins "${other('3')}"`);
  });
});

describe('judge: a job without targets', () => {
  const none = { ...dispatched, targets: [] };
  it('takes the results of every file of the project the check read', () => {
    const project = { ...pass, targets: [], check: { ...pass.check, projectFile: '_CoqProject' } };
    expect(judge(project, seen, none)).toMatchObject({ jobState: 'verified' });
  });
  it('refuses results without a project file, or none at all', () => {
    expect(judge({ ...pass, targets: [] }, seen, none).reason).toBe(
      'a job without targets needs results for the files of its project, and the evidence has none',
    );
    expect(judge({ ...pass, targets: [], check: { ...pass.check, projectFile: '_CoqProject' }, results: [] }, seen, none).kind).toBe(
      'error',
    );
  });
});

describe('judge: goals', () => {
  const goal = { name: 'Top.A.main', statement: 'forall n : nat, n + 0 = n' };
  const withGoals = { ...dispatched, goals: [goal] };
  it.each<[string, Evidence, string, string]>([
    [
      'a proved goal',
      { ...pass, goals: [{ ...goal, result: 'proved', reason: null }] },
      'verified',
      'verified: 2 target(s) passed, 1 goal(s) proved',
    ],
    [
      'an unproved goal, named with why',
      failed({ goals: [{ ...goal, result: 'failed', reason: 'Top.A.main is missing' }] }),
      'rejected',
      'rejected: goal Top.A.main (Top.A.main is missing)',
    ],
    [
      'pass claimed with an unproved goal',
      { ...pass, goals: [{ ...goal, result: 'failed', reason: 'no' }] },
      'error',
      'evidence says pass but not every goal was proved',
    ],
    [
      'a goal left out',
      { ...pass, goals: [] },
      'error',
      'goals mismatch: evidence says [], dispatched [{"name":"Top.A.main","statement":"forall n : nat, n + 0 = n"}]',
    ],
    [
      'another statement',
      { ...pass, goals: [{ ...goal, statement: 'True', result: 'proved', reason: null }] },
      'error',
      'goals mismatch: evidence says [{"name":"Top.A.main","statement":"True"}]',
    ],
  ])('%s → %s', (_name, evidence, state, reason) => {
    const ending = judge(evidence, evidence.outcome === 'fail' ? exited(1) : seen, withGoals);
    expect('jobState' in ending ? ending.jobState : ending.kind).toBe(state);
    expect(ending.reason.startsWith(reason), ending.reason).toBe(true);
  });
});

describe('evidence schema', () => {
  it('accepts complete evidence', () => {
    expect(EvidenceSchema.safeParse(pass).success).toBe(true);
  });

  it.each(['source', 'targets', 'profile', 'check', 'logs', 'results', 'audit', 'outcome', 'error'] as const)(
    'a missing %s is an error, never a default',
    (field) => {
      const { [field]: _dropped, ...rest } = pass;
      const result = EvidenceSchema.safeParse(rest);
      expect(result.success).toBe(false);
      expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(field);
    },
  );

  it('pass or fail without the check facts is refused; an error report may leave them null', () => {
    const unknown = { ...pass.check, version: null, exitCode: null, startedAt: null, finishedAt: null, durationMs: null };
    expect(EvidenceSchema.safeParse({ ...pass, check: unknown }).success).toBe(false);
    expect(
      EvidenceSchema.safeParse({ ...pass, check: unknown, logs: null, results: [], outcome: 'error', error: 'deadline' }).success,
    ).toBe(true);
  });

  it('a missing nested value (the tree hash) is an error', () => {
    const { treeHash: _dropped, ...source } = pass.source;
    expect(EvidenceSchema.safeParse({ ...pass, source }).success).toBe(false);
  });

  it('evidence of the schema before the build/check split is refused', () => {
    expect(EvidenceSchema.safeParse({ ...pass, schemaVersion: 1 }).success).toBe(false);
  });
});
