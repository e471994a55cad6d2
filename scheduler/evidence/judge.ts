import type { AttemptEnding } from '../job-states.js';
import type { Evidence } from '../../contract/evidence.js';

/** What the scheduler saw itself, from the substrate, when the attempt finished. */
export interface Observation {
  exitCode: number | null;
  imageDigest: string | null;
}

/**
 * The verdict from an accepted upload, cross-checked against the scheduler's own observation of
 * the prover container. Any disagreement is an error naming both values: an upload cannot talk its
 * way to `verified`.
 */
export function judge(evidence: Evidence, observed: Observation): AttemptEnding {
  if (evidence.outcome === 'error') {
    return { kind: 'error', jobState: 'error', reason: `reporter reported an error: ${evidence.error ?? 'no reason given'}` };
  }
  if (observed.exitCode === null) {
    return { kind: 'error', jobState: 'error', reason: 'substrate reported no exit code for the prover' };
  }
  if (evidence.prover.exitCode !== observed.exitCode) {
    return {
      kind: 'error',
      jobState: 'error',
      reason: `exit code mismatch: evidence says ${evidence.prover.exitCode}, substrate observed ${observed.exitCode}`,
    };
  }
  if (evidence.outcome === 'pass') {
    if (observed.exitCode !== 0) {
      return { kind: 'error', jobState: 'error', reason: `evidence says pass but the prover exited ${observed.exitCode}` };
    }
    if (evidence.targets.some((t) => t.result !== 'pass')) {
      return { kind: 'error', jobState: 'error', reason: 'evidence says pass but not every target passed' };
    }
    if (evidence.audit.policy === 'reject' && evidence.audit.findings.length > 0) {
      return { kind: 'error', jobState: 'error', reason: 'evidence says pass but the audit, under policy reject, has findings' };
    }
    return { kind: 'verdict', jobState: 'verified', reason: `verified: ${evidence.targets.length} target(s) passed` };
  }
  const failed = evidence.targets.filter((t) => t.result !== 'pass').map((t) => `${t.path}${t.reason ? ` (${t.reason})` : ''}`);
  const findings = evidence.audit.findings.map((f) => `${f.kind} ${f.name}`);
  const parts = [
    ...(failed.length ? [failed.join(', ')] : []),
    ...(findings.length && evidence.audit.policy === 'reject' ? [`audit found ${findings.join(', ')}`] : []),
  ];
  return { kind: 'verdict', jobState: 'rejected', reason: `rejected: ${parts.join('; ') || 'by the profile policy'}` };
}
