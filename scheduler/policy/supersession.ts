import { type JobState, inFlightStates, waitingStates } from '../job-states.js';

/**
 * Which older jobs of a submitter's concurrency group a new submission supersedes (cancels), by
 * state: those still waiting; with `cancelInProgress`, those in flight too (their attempts are
 * stopped). A job that has ended is never touched.
 */
export function supersededStates(concurrency: { cancelInProgress: boolean }): JobState[] {
  return concurrency.cancelInProgress ? [...waitingStates, ...inFlightStates] : [...waitingStates];
}
