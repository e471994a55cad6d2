import type { Queryable } from '../database/connect.js';
import { inFlightStates, waitingStates } from '../job-states.js';

const list = (states: readonly string[]) => `(${states.map((s) => `'${s}'`).join(', ')})`;

/**
 * `in (…)` lists of job and attempt states as SQL text from the one TypeScript definition
 * (job-states.ts), not as parameters: the partial indexes on in-flight rows (attempts_live,
 * jobs_in_flight_by_submitter) are defined with this predicate, and the planner matches an index
 * predicate against literals only.
 */
export const inFlight = (sql: Queryable) => sql.unsafe(list(inFlightStates));
/** Waiting to be dispatched. */
export const waiting = (sql: Queryable) => sql.unsafe(list(waitingStates));
/** Not final: waiting or in flight. */
export const open = (sql: Queryable) => sql.unsafe(list([...waitingStates, ...inFlightStates]));
