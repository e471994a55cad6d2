import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FileSpec } from './git-fixtures.js';

const plugin = path.resolve('test/fixtures/hostile/plugin');

/**
 * The files of the hostile Coq-plugin fixture (test/fixtures/hostile/plugin/README.md), with its
 * `.cmxs` built here by Debian's ocamlopt, the compiler Coq was built with, and the payload the
 * plugin runs when coqc loads it.
 */
export function pluginSource(payload: string): Record<string, FileSpec> {
  const build = mkdtempSync(path.join(tmpdir(), 'proofpod-plugin-'));
  try {
    // Compiled in a directory of its own: ocamlopt leaves its intermediate files beside the source.
    copyFileSync(path.join(plugin, 'evil.ml'), path.join(build, 'evil.ml'));
    execFileSync('ocamlopt', ['-shared', '-o', 'evil.cmxs', 'evil.ml'], { cwd: build, stdio: 'pipe' });
    return {
      'Evil.v': readFileSync(path.join(plugin, 'Evil.v')),
      'PluginTrue.v': readFileSync(path.join(plugin, 'PluginTrue.v')),
      'attack.mjs': readFileSync(path.join(plugin, 'attack.mjs')),
      'evil.cmxs': readFileSync(path.join(build, 'evil.cmxs')),
      'payload.sh': payload,
    };
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

/** A payload of the fixture: `payload.sh` (the full attack, attack.mjs), `leftover.sh`, `plant-links.sh`. */
export const payload = (name: 'payload.sh' | 'leftover.sh' | 'plant-links.sh') => readFileSync(path.join(plugin, name), 'utf8');

/** The payload that worked against a verdict computed next to proof code. */
export const attackPayload = payload('payload.sh');

/** Another fixture's files under test/fixtures/hostile/<name>, by their names in the source. */
export function hostileFiles(name: string, names: Record<string, string>): Record<string, FileSpec> {
  return Object.fromEntries(Object.entries(names).map(([inSource, file]) => [inSource, readFileSync(path.join(plugin, '..', name, file))]));
}
