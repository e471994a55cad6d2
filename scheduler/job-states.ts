/** Job lifecycle (docs/architecture.md, "Objects and states"). `awaiting_approval` belongs to lanes and approval policy. */
export const jobStates = [
  'queued',
  'awaiting_approval',
  'dispatching',
  'running',
  'verified',
  'rejected',
  'error',
  'timed_out',
  'cancelled',
] as const;
export type JobState = (typeof jobStates)[number];

export const finalJobStates: ReadonlySet<JobState> = new Set(['verified', 'rejected', 'error', 'timed_out', 'cancelled']);
/** States of a job (and of an attempt) in flight: it holds a lease and a substrate object. */
export const inFlightStates = ['dispatching', 'running'] as const satisfies readonly JobState[];
/** States of a job that waits to be dispatched. */
export const waitingStates = ['queued', 'awaiting_approval'] as const satisfies readonly JobState[];

export function isFinalJobState(state: JobState): boolean {
  return finalJobStates.has(state);
}

export const attemptStates = ['dispatching', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type AttemptState = (typeof attemptStates)[number];

/** How an attempt ends, and the job state it leaves behind. */
export type AttemptEnding =
  | { kind: 'verdict'; jobState: 'verified' | 'rejected'; reason: string }
  | { kind: 'error'; jobState: 'error' | 'timed_out'; reason: string }
  /**
   * An infrastructure failure: retried while the lane's retry limit allows. `ofProfile`: the
   * prover profile's own image or containers failed, which counts against its health.
   */
  | { kind: 'infrastructure'; reason: string; ofProfile?: boolean };
