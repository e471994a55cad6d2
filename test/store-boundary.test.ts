import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Every TypeScript file under `dir`, relative to the repository root. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

const scheduler = sources('scheduler');
const where = (files: string[], pattern: RegExp) => files.filter((file) => pattern.test(readFileSync(file, 'utf8')));

describe('the store boundary', () => {
  it('no SQL outside scheduler/store/ (no tagged template or unsafe query on a connection)', () => {
    expect(
      where(
        scheduler.filter((f) => !f.startsWith('scheduler/store/')),
        /\b(sql|tx)\s*(<[^>`]*>)?\s*`|\.unsafe\(|\.begin\(/,
      ),
    ).toEqual([]);
  });

  it('every advisory lock is taken in scheduler/store/locks.ts', () => {
    expect(
      where(
        scheduler.filter((f) => f !== 'scheduler/store/locks.ts'),
        /pg_(try_)?advisory/,
      ),
    ).toEqual([]);
  });

  it('NOTIFY channels are named in scheduler/store/notify.ts alone', () => {
    expect(
      where(
        scheduler.filter((f) => f !== 'scheduler/store/notify.ts'),
        /pg_notify|\.listen\(\s*'/,
      ),
    ).toEqual([]);
  });

  it("one call of the store's end-of-attempt write, in finishAttempt", () => {
    const calls = scheduler.flatMap((file) => (readFileSync(file, 'utf8').match(/\bwriteAttemptEnd(<[^>]*>)?\(/g) ?? []).map(() => file));
    // The definition and the one call.
    expect(calls.sort()).toEqual(['scheduler/replica/finish-attempt.ts', 'scheduler/store/attempts/end-attempt.ts']);
  });
});
