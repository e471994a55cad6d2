import type { AttemptEnding, JobState } from '../job-states.js';
import { type PromotionRule, promotionRuleFor } from '../lanes.js';

/** What the store knows of an attempt and its job when it ends, read under the attempt's fence. */
export interface EndingFacts {
  /** Attempts the job has had in this lane, this one included. */
  attemptsInLane: number;
  lane: string;
  promoteTo: string | null;
  submitterId: string;
}

/** Where an ending attempt leaves itself and its job. */
export interface AttemptTransition {
  attemptState: 'succeeded' | 'failed';
  /** The attempt's own reason: its ending's. */
  attemptReason: string;
  job: {
    state: JobState;
    reason: string;
    /** The lane the job moves to (a promotion); absent: it stays. */
    lane?: string;
    /** Who moved it when not the attempt's holder (a promotion rule). */
    actor?: string;
  };
}

/**
 * How an attempt's ending moves its job, a pure decision: a verdict or an error is final; an
 * infrastructure failure is retried while the lane's retry limit allows, then gives up; a job that
 * was verified in its lane with a `promoteTo` moves to that trusted lane when a promotion rule
 * covers it, and otherwise waits in `awaiting_approval`.
 */
export function attemptTransition(
  ending: AttemptEnding,
  facts: EndingFacts,
  policy: { retryLimit: number; promotion: readonly PromotionRule[] },
): AttemptTransition {
  switch (ending.kind) {
    case 'infrastructure':
      return facts.attemptsInLane <= policy.retryLimit
        ? {
            attemptState: 'failed',
            attemptReason: ending.reason,
            job: { state: 'queued', reason: `retrying after attempt ${facts.attemptsInLane}: ${ending.reason}` },
          }
        : {
            attemptState: 'failed',
            attemptReason: ending.reason,
            job: { state: 'error', reason: `gave up after ${facts.attemptsInLane} attempts: ${ending.reason}` },
          };
    case 'error':
      return { attemptState: 'failed', attemptReason: ending.reason, job: { state: ending.jobState, reason: ending.reason } };
    case 'verdict': {
      if (ending.jobState !== 'verified' || !facts.promoteTo || facts.promoteTo === facts.lane) {
        return { attemptState: 'succeeded', attemptReason: ending.reason, job: { state: ending.jobState, reason: ending.reason } };
      }
      const rule = promotionRuleFor(policy.promotion, { lane: facts.lane, promoteTo: facts.promoteTo, submitterId: facts.submitterId });
      if (rule) {
        return {
          attemptState: 'succeeded',
          attemptReason: ending.reason,
          job: {
            state: 'queued',
            lane: facts.promoteTo,
            actor: `policy:${rule.name}`,
            reason: `passed ${facts.lane} (${ending.reason}); promoted to ${facts.promoteTo} by policy ${rule.name}`,
          },
        };
      }
      return {
        attemptState: 'succeeded',
        attemptReason: ending.reason,
        job: {
          state: 'awaiting_approval',
          reason: `passed ${facts.lane} (${ending.reason}); awaiting approval to run in ${facts.promoteTo}`,
        },
      };
    }
  }
}
