import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The host uids of one attempt's sandboxes: one for the containers that run our programs, one for its build. */
export interface AttemptUids {
  slot: number;
  programs: { uid: number; gid: number };
  build: { uid: number; gid: number };
}

const slotsDir = (stateDir: string) => path.join(stateDir, '.uid-slots');

/**
 * Takes a pair of host uids from `range` that no other attempt in `stateDir` holds, so that no two
 * attempts (nor an attempt's build and its checker) can signal, trace or write for each other.
 * A slot is a directory made with mkdir, atomic across the replicas that share the state
 * directory; it names its attempt and is free again once that attempt's directory is gone.
 */
export async function claimUidSlot(stateDir: string, name: string, range: { first: number; count: number }): Promise<AttemptUids> {
  const slots = Math.floor(range.count / 2);
  await mkdir(slotsDir(stateDir), { recursive: true, mode: 0o700 });
  const start = createHash('sha256').update(name).digest().readUInt32BE(0) % slots;
  for (let i = 0; i < slots; i++) {
    const slot = (start + i) % slots;
    const dir = path.join(slotsDir(stateDir), String(slot));
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = await readFile(path.join(dir, 'attempt'), 'utf8').catch(() => undefined);
      // A slot whose attempt is gone was not released (a crash): take it back. One being made
      // right now has no owner file yet, and is left alone.
      if (
        owner === undefined ||
        (await stat(path.join(stateDir, owner)).then(
          () => true,
          () => false,
        ))
      )
        continue;
      await rm(dir, { recursive: true, force: true });
      i--;
      continue;
    }
    await writeFile(path.join(dir, 'attempt'), name, { mode: 0o600 });
    const programs = range.first + 2 * slot;
    return { slot, programs: { uid: programs, gid: programs }, build: { uid: programs + 1, gid: programs + 1 } };
  }
  throw new Error(`no free sandbox uids: all ${slots} slots of local.sandboxUids are held by attempts`);
}

/** Frees the attempt's slot, if it still holds it. */
export async function releaseUidSlot(stateDir: string, name: string, slot: number): Promise<void> {
  const dir = path.join(slotsDir(stateDir), String(slot));
  const owner = await readFile(path.join(dir, 'attempt'), 'utf8').catch(() => undefined);
  if (owner === name) await rm(dir, { recursive: true, force: true });
}
