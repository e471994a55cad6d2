import type { AttemptEnding } from '../job-states.js';
import type { Evidence } from './schema.js';

/** What the scheduler saw itself, from the substrate, when the attempt finished. */
export interface Observation {
  exitCode: number | null;
  imageDigest: string | null;
}

/**
 * The verdict from an accepted upload, cross-checked against the scheduler's own observation.
 * Any disagreement is an error naming both values: an upload cannot talk its way to `verified`.
 */
export function judge(evidence: Evidence, observed: Observation): AttemptEnding {
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
  if (observed.imageDigest !== null && evidence.prover.imageDigest !== observed.imageDigest) {
    return {
      kind: 'error',
      jobState: 'error',
      reason: `image digest mismatch: evidence says ${evidence.prover.imageDigest}, substrate observed ${observed.imageDigest}`,
    };
  }
  switch (evidence.outcome) {
    case 'pass':
      if (observed.exitCode !== 0) {
        return { kind: 'error', jobState: 'error', reason: `evidence says pass but the prover exited ${observed.exitCode}` };
      }
      if (evidence.targets.some((t) => t.result !== 'pass')) {
        return { kind: 'error', jobState: 'error', reason: 'evidence says pass but not every target passed' };
      }
      return { kind: 'verdict', jobState: 'verified', reason: `verified: ${evidence.targets.length} target(s) passed` };
    case 'fail': {
      const failed = evidence.targets.filter((t) => t.result !== 'pass').map((t) => t.path);
      return {
        kind: 'verdict',
        jobState: 'rejected',
        reason: failed.length ? `rejected: ${failed.join(', ')}` : 'rejected by the profile policy',
      };
    }
    case 'error':
      return { kind: 'error', jobState: 'error', reason: `reporter reported an error: ${evidence.error ?? 'no reason given'}` };
  }
}
