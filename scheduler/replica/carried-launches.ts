/**
 * Which of the dispatching attempts this replica holds some stage of it is carrying on: handed to
 * the launch pool by a dispatch cycle (until its launch ends), or being resumed (resume-launch.ts).
 * A dispatching attempt held here that no stage carries is stranded: its launch could not record
 * how it went (Postgres lost between the create and its record), or a claim committed whose answer
 * never came back. Its lease is renewed by this replica's heartbeat, so the reaper would never see
 * it expire; the watcher carries it on instead.
 *
 * A claim's commit is visible to the watcher's next read a moment before the dispatch cycle that
 * made it hands it over, so an attempt counts as stranded only once it has gone uncarried for
 * `graceMs`; carrying one twice would still be safe (a second create is refused as a duplicate and
 * adopted), only wasteful.
 */
export class CarriedLaunches {
  private readonly carried = new Map<string, number>();
  /** Held dispatching attempts seen uncarried, and since when. */
  private readonly uncarriedSince = new Map<string, number>();

  constructor(
    private readonly graceMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Marks `attemptId` carried until the returned function is called (once per hold; holds nest). */
  hold(attemptId: string): () => void {
    this.carried.set(attemptId, (this.carried.get(attemptId) ?? 0) + 1);
    this.uncarriedSince.delete(attemptId);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.carried.get(attemptId) ?? 1) - 1;
      if (left > 0) this.carried.set(attemptId, left);
      else this.carried.delete(attemptId);
    };
  }

  /**
   * Of `dispatching` (every dispatching attempt this replica holds now), those no stage has carried
   * for `graceMs`: the watcher's to carry on. Forgets attempts no longer among them.
   */
  stranded(dispatching: readonly string[]): string[] {
    const now = this.now();
    const held = new Set(dispatching);
    for (const id of this.uncarriedSince.keys()) if (!held.has(id)) this.uncarriedSince.delete(id);
    const stranded: string[] = [];
    for (const id of held) {
      if (this.carried.has(id)) continue;
      const since = this.uncarriedSince.get(id);
      if (since === undefined) this.uncarriedSince.set(id, now);
      else if (now - since >= this.graceMs) stranded.push(id);
    }
    return stranded;
  }
}
