import { describe, expect, it } from 'vitest';
import { ProverProfileSchema } from '../contract/profile.js';
import { defaultLanes } from '../scheduler/lanes.js';
import { type Refusal, type Submission, admissionRefusal, overQueueQuota, usableLanes } from '../scheduler/policy/admission.js';
import { defaultProverProfiles } from '../scheduler/prover-profiles.js';
import type { Submitter } from '../scheduler/store/submitters/submitters.js';

const profile = (name: string) => ProverProfileSchema.parse(defaultProverProfiles.find((p) => p.name === name));
const trusted: Submitter = { id: 'ci', trust: 'trusted', lanes: ['*'], roles: [] };
const fork: Submitter = { id: 'fork', trust: 'untrusted', lanes: ['*'], roles: [] };
const narrow: Submitter = { id: 'narrow', trust: 'trusted', lanes: ['audit'], roles: [] };
/** May run in intake, and be promoted to verify only. */
const intakeBot: Submitter = { id: 'intake-bot', trust: 'untrusted', lanes: ['intake', 'verify'], roles: [] };
const intakeOnly: Submitter = { id: 'intake-only', trust: 'untrusted', lanes: ['intake'], roles: [] };
const coq: Submission = { lane: 'verify', prover: 'coq', targets: ['A.v'], goals: [] };
const context = (submitter: Submitter, prover = 'coq', substrateKind = 'kubernetes') => ({
  submitter,
  lanes: defaultLanes,
  profile: profile(prover),
  substrateKind,
});

describe('admission: every refusal, and what passes', () => {
  it.each<[string, Submission, Parameters<typeof admissionRefusal>[1], Partial<Refusal> | null]>([
    ['a trusted submitter in a trusted lane', coq, context(trusted), null],
    ['an untrusted submitter in the untrusted lane', { ...coq, lane: 'intake' }, context(fork), null],
    [
      'an untrusted submitter in a trusted lane',
      coq,
      context(fork),
      { status: 403, field: 'lane', message: 'untrusted submitter fork may not use trusted lane verify; allowed lanes: intake' },
    ],
    [
      'a lane the token does not name',
      coq,
      context(narrow),
      { status: 403, field: 'lane', message: 'submitter narrow may not use lane verify; allowed lanes: audit' },
    ],
    ['promoteTo from the untrusted to a trusted lane', { ...coq, lane: 'intake', promoteTo: 'verify' }, context(fork), null],
    [
      'promoteTo from a trusted lane',
      { ...coq, promoteTo: 'audit' },
      context(trusted),
      {
        status: 400,
        field: 'promoteTo',
        message: 'promoteTo moves a job from an untrusted lane to a trusted one; verify is trusted and audit is trusted',
      },
    ],
    [
      'promoteTo to the untrusted lane',
      { ...coq, lane: 'intake', promoteTo: 'intake' },
      context(fork),
      { status: 400, field: 'promoteTo' },
    ],
    ['promoteTo one of its lanes', { ...coq, lane: 'intake', promoteTo: 'verify' }, context(intakeBot), null],
    [
      'promoteTo a trusted lane its token does not name',
      { ...coq, lane: 'intake', promoteTo: 'audit' },
      context(intakeBot),
      {
        status: 403,
        field: 'promoteTo',
        message: 'submitter intake-bot may not be promoted to lane audit; lanes it may be promoted to: verify',
      },
    ],
    [
      'promoteTo from a token limited to the untrusted lane',
      { ...coq, lane: 'intake', promoteTo: 'audit' },
      context(intakeOnly),
      {
        status: 403,
        field: 'promoteTo',
        message: 'submitter intake-only may not be promoted to lane audit; lanes it may be promoted to: none',
      },
    ],
    [
      'promoteTo a lane a promotion rule names it for',
      { ...coq, lane: 'intake', promoteTo: 'audit' },
      { ...context(intakeOnly), promotion: [{ name: 'bots', from: 'intake', to: 'audit', submitters: ['intake-only'] }] },
      null,
    ],
    ['no targets for a prover with project builds', { ...coq, targets: [] }, context(trusted), null],
    [
      'no targets for a prover without project builds',
      { ...coq, prover: 'smt-z3', targets: [] },
      context(trusted, 'smt-z3'),
      { status: 400, field: 'targets', message: 'prover smt-z3 needs targets' },
    ],
    ['goals for a prover that binds them', { ...coq, goals: [{}] }, context(trusted), null],
    [
      'goals for a prover that cannot bind them',
      { ...coq, prover: 'metamath', targets: ['a.mm'], goals: [{}] },
      context(trusted, 'metamath'),
      { status: 400, field: 'goals', message: 'prover metamath cannot bind goals to statements' },
    ],
    [
      'an image-only prover on the local substrate',
      { ...coq, prover: 'lean' },
      context(trusted, 'lean', 'local'),
      { status: 400, field: 'prover', message: 'prover lean does not run on the local substrate (it needs its Kubernetes image)' },
    ],
    ['an image-only prover on Kubernetes', { ...coq, prover: 'lean' }, context(trusted, 'lean', 'kubernetes'), null],
  ])('%s', (_name, submission, given, refusal) => {
    const decided = admissionRefusal(submission, given);
    if (refusal === null) expect(decided).toBeNull();
    else expect(decided).toMatchObject(refusal);
  });

  it.each([
    [0, 1, false],
    [9, 10, false],
    [10, 10, true],
    [11, 10, true],
  ])('the queue quota: %i waiting of %i allowed → refused: %s', (waitingJobs, maxQueued, refused) => {
    expect(overQueueQuota(waitingJobs, { maxQueued })).toBe(refused);
  });

  it("usable lanes: the token's, and only untrusted ones for an untrusted submitter", () => {
    expect(usableLanes(trusted, defaultLanes)).toEqual(['intake', 'verify', 'audit', 'replay']);
    expect(usableLanes(fork, defaultLanes)).toEqual(['intake']);
    expect(usableLanes(narrow, defaultLanes)).toEqual(['audit']);
  });
});
