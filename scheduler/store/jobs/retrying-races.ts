/**
 * The job was claimed between reading its lease and locking its row: the lease exists now but was
 * not locked first. The caller's transaction rolls back and runs again; locking the lease after the
 * job instead could deadlock with a fenced write, which locks them the other way round.
 */
export class ClaimedMeanwhileError extends Error {
  override readonly name = 'ClaimedMeanwhileError';
}

/** Runs `work` (a whole transaction) again while it loses the race above; a few tries are plenty. */
export async function retryingRaces<T>(work: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof ClaimedMeanwhileError) || tries >= 5) throw error;
    }
  }
}
