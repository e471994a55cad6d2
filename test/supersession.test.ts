import { describe, expect, it } from 'vitest';
import { finalJobStates, jobStates } from '../scheduler/job-states.js';
import { supersededStates } from '../scheduler/policy/supersession.js';

describe('supersession: which older jobs of a concurrency group a new one cancels', () => {
  it.each([
    [false, ['queued', 'awaiting_approval']],
    [true, ['queued', 'awaiting_approval', 'dispatching', 'running']],
  ])('cancelInProgress %s → %j', (cancelInProgress, states) => {
    expect(supersededStates({ cancelInProgress })).toEqual(states);
  });

  it('never a job that has ended, and every state is either final or supersedable with cancelInProgress', () => {
    const all = supersededStates({ cancelInProgress: true });
    expect(all.filter((s) => finalJobStates.has(s))).toEqual([]);
    expect([...all, ...finalJobStates].sort()).toEqual([...jobStates].sort());
  });
});
