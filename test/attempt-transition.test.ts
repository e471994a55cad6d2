import { describe, expect, it } from 'vitest';
import type { AttemptEnding } from '../scheduler/job-states.js';
import type { PromotionRule } from '../scheduler/lanes.js';
import { type AttemptTransition, type EndingFacts, attemptTransition } from '../scheduler/policy/attempt-transition.js';

const facts: EndingFacts = { attemptsInLane: 1, lane: 'intake', promoteTo: null, submitterId: 'fork' };
const promoting = { ...facts, promoteTo: 'verify' };
const rules: PromotionRule[] = [{ name: 'bots', from: 'intake', to: 'verify', submitters: ['bot'] }];
const policy = { retryLimit: 2, promotion: rules };
const verified: AttemptEnding = { kind: 'verdict', jobState: 'verified', reason: 'verified: 1 target(s) passed' };
const lost: AttemptEnding = { kind: 'infrastructure', reason: 'node lost' };

describe('attemptTransition: where an ending attempt leaves its job', () => {
  it.each<[string, AttemptEnding, EndingFacts, Omit<AttemptTransition, 'attemptReason'>]>([
    [
      'a verdict is final',
      verified,
      facts,
      { attemptState: 'succeeded', job: { state: 'verified', reason: 'verified: 1 target(s) passed' } },
    ],
    [
      'a rejection is final',
      { kind: 'verdict', jobState: 'rejected', reason: 'rejected: A.v' },
      promoting,
      { attemptState: 'succeeded', job: { state: 'rejected', reason: 'rejected: A.v' } },
    ],
    [
      'an error is final',
      { kind: 'error', jobState: 'error', reason: 'source refused' },
      facts,
      { attemptState: 'failed', job: { state: 'error', reason: 'source refused' } },
    ],
    [
      'a timeout is final',
      { kind: 'error', jobState: 'timed_out', reason: 'deadline passed' },
      facts,
      { attemptState: 'failed', job: { state: 'timed_out', reason: 'deadline passed' } },
    ],
    [
      'an infrastructure failure within the retry limit is retried',
      lost,
      { ...facts, attemptsInLane: 2 },
      { attemptState: 'failed', job: { state: 'queued', reason: 'retrying after attempt 2: node lost' } },
    ],
    [
      'past the retry limit it gives up',
      lost,
      { ...facts, attemptsInLane: 3 },
      { attemptState: 'failed', job: { state: 'error', reason: 'gave up after 3 attempts: node lost' } },
    ],
    [
      'verified with promoteTo and a rule for its submitter: promoted',
      verified,
      { ...promoting, submitterId: 'bot' },
      {
        attemptState: 'succeeded',
        job: {
          state: 'queued',
          lane: 'verify',
          actor: 'policy:bots',
          reason: 'passed intake (verified: 1 target(s) passed); promoted to verify by policy bots',
        },
      },
    ],
    [
      'verified with promoteTo and no rule: awaiting approval',
      verified,
      promoting,
      {
        attemptState: 'succeeded',
        job: { state: 'awaiting_approval', reason: 'passed intake (verified: 1 target(s) passed); awaiting approval to run in verify' },
      },
    ],
    [
      'verified in the lane it asked to be promoted to: final',
      verified,
      { ...promoting, lane: 'verify' },
      { attemptState: 'succeeded', job: { state: 'verified', reason: 'verified: 1 target(s) passed' } },
    ],
  ])('%s', (_name, ending, given, expected) => {
    const { attemptReason, ...transition } = attemptTransition(ending, given, policy);
    expect(transition).toEqual(expected);
    // The attempt keeps its ending's own reason; the job's says what became of it.
    expect(attemptReason).toBe(ending.reason);
  });

  it('a rule for every submitter promotes anyone', () => {
    expect(
      attemptTransition(verified, promoting, { retryLimit: 0, promotion: [{ name: 'all', from: 'intake', to: 'verify' }] }).job,
    ).toMatchObject({ state: 'queued', lane: 'verify', actor: 'policy:all' });
  });
});
