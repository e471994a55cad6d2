import { liveAttemptNames } from '../store/attempts/reaper-scans.js';
import type { ReplicaContext } from './context.js';

/** Substrate objects of ours with no attempt in flight: deleted. */
export async function deleteOrphans(ctx: ReplicaContext, log: ReplicaContext['log']): Promise<void> {
  // List first, then ask the database: an attempt is recorded before it is created, so anything
  // listed whose attempt is not in flight by the time we ask really is an orphan. That holds however
  // old the listing is: an object listed that is gone meanwhile is a stop of nothing, and one created
  // since it was taken waits for the next sweep.
  const present = await ctx.substrate.list();
  if (present.length === 0) return;
  const live = await liveAttemptNames(
    ctx.sql,
    present.map((o) => o.name),
  );
  for (const object of present) {
    if (live.has(object.name)) continue;
    await ctx.substrate.stop(object.name);
    log.info({ name: object.name, phase: object.status.phase }, 'deleted substrate object with no attempt in flight');
  }
}
