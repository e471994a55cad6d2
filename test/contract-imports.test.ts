import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The task and prover images hold the task-pod programs, each bundled with what it imports from
 * contract/ and task-pod/ (Dockerfile, `task` stage), so nothing there may import the scheduler: a
 * program that did would carry scheduler code into the pods where proofs are checked.
 */
const sources = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
const imports = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);

describe('what the task images hold', () => {
  it.each(['contract', 'task-pod'])('%s/ imports only node:, zod and contract/ or task-pod/ files', (dir) => {
    const files = sources(dir);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      for (const target of imports(file)) {
        if (target.startsWith('node:') || target === 'zod') continue;
        const resolved = path.relative('.', path.resolve(path.dirname(file), target));
        expect(resolved.split(path.sep)[0], `${file} imports ${target}`).toMatch(/^(contract|task-pod)$/);
        if (dir === 'contract') expect(resolved.split(path.sep)[0], `${file} imports ${target}`).toBe('contract');
      }
    }
  });
});
