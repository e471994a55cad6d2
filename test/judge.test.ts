import { describe, expect, it } from 'vitest';
import { judge } from '../scheduler/evidence/judge.js';
import { EvidenceSchema } from '../contract/evidence.js';
import { FAKE_IMAGE_DIGEST, evidenceFor } from './support/evidence.js';

const launch = {
  jobId: '11111111-1111-4111-8111-111111111111',
  attemptNo: 1,
  source: { url: 'https://example.org/p.git', commit: 'b'.repeat(40), subdirectory: null },
  prover: 'coq',
  targets: ['A.v', 'B.v'],
};
const pass = evidenceFor(launch);
const seen = { exitCode: 0, imageDigest: FAKE_IMAGE_DIGEST };

describe('judge', () => {
  it.each([
    ['pass, observed exit 0', pass, seen, 'verified'],
    ['fail with a failing target', { ...pass, outcome: 'fail' as const, prover: { ...pass.prover, exitCode: 1 }, targets: [{ ...pass.targets[0]!, result: 'fail' as const }] }, { ...seen, exitCode: 1 }, 'rejected'],
    ['pass claimed but the substrate saw exit 1', pass, { ...seen, exitCode: 1 }, 'error'],
    ['pass claimed with audit findings under policy reject', { ...pass, audit: { command: ['coqchk'], policy: 'reject' as const, findings: [{ kind: 'axiom' as const, name: 'Top.magic', target: 'A.v' }] } }, seen, 'error'],
    ['fail from audit findings under policy reject', { ...pass, outcome: 'fail' as const, prover: { ...pass.prover, exitCode: 1 }, audit: { command: ['coqchk'], policy: 'reject' as const, findings: [{ kind: 'axiom' as const, name: 'Top.magic', target: 'A.v' }] } }, { ...seen, exitCode: 1 }, 'rejected'],
    ['pass with findings under policy allow', { ...pass, audit: { command: ['coqchk'], policy: 'allow' as const, findings: [{ kind: 'axiom' as const, name: 'Top.magic', target: 'A.v' }] } }, seen, 'verified'],
    ['pass claimed, exit codes agree on 1', { ...pass, prover: { ...pass.prover, exitCode: 1 } }, { ...seen, exitCode: 1 }, 'error'],
    ['pass claimed with a failed target', { ...pass, targets: [{ ...pass.targets[0]!, result: 'error' as const }] }, seen, 'error'],
    ['no exit code observed', pass, { exitCode: null, imageDigest: null }, 'error'],
    ['the reporter reports an error', { ...pass, outcome: 'error' as const, error: 'prover produced nothing before the deadline' }, seen, 'error'],
  ])('%s → %s', (_name, evidence, observed, state) => {
    const ending = judge(evidence, observed);
    expect('jobState' in ending ? ending.jobState : ending.kind).toBe(state);
  });

  it('names both values on a disagreement', () => {
    expect(judge(pass, { ...seen, exitCode: 3 }).reason).toBe('exit code mismatch: evidence says 0, substrate observed 3');
  });
});

describe('evidence schema', () => {
  it('accepts complete evidence', () => {
    expect(EvidenceSchema.safeParse(pass).success).toBe(true);
  });

  it.each(['source', 'prover', 'logs', 'targets', 'audit', 'outcome', 'error'] as const)('a missing %s is an error, never a default', (field) => {
    const { [field]: _dropped, ...rest } = pass;
    const result = EvidenceSchema.safeParse(rest);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(field);
  });

  it('names the audit finding in a rejection', () => {
    const ending = judge(
      { ...pass, outcome: 'fail', prover: { ...pass.prover, exitCode: 1 }, audit: { command: ['coqchk'], policy: 'reject', findings: [{ kind: 'axiom', name: 'Top.magic', target: 'A.v' }] } },
      { ...seen, exitCode: 1 },
    );
    expect(ending.reason).toBe('rejected: audit found axiom Top.magic');
  });

  it('pass or fail without the prover facts is refused; an error report may leave them null', () => {
    const unknown = { ...pass.prover, version: null, binaryDigest: null, exitCode: null, startedAt: null, finishedAt: null, durationMs: null };
    expect(EvidenceSchema.safeParse({ ...pass, prover: unknown }).success).toBe(false);
    expect(EvidenceSchema.safeParse({ ...pass, prover: unknown, logs: null, targets: [], outcome: 'error', error: 'deadline' }).success).toBe(true);
  });

  it('a missing nested value (the tree hash) is an error', () => {
    const { treeHash: _dropped, ...source } = pass.source;
    expect(EvidenceSchema.safeParse({ ...pass, source }).success).toBe(false);
  });
});
