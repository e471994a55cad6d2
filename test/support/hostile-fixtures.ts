import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
    execFileSync('ocamlopt', ['-shared', '-o', path.join(build, 'evil.cmxs'), path.join(plugin, 'evil.ml')], { cwd: build, stdio: 'pipe' });
    return {
      'Evil.v': readFileSync(path.join(plugin, 'Evil.v')),
      'attack.mjs': readFileSync(path.join(plugin, 'attack.mjs')),
      'evil.cmxs': readFileSync(path.join(build, 'evil.cmxs')),
      'payload.sh': payload,
    };
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

/** The payload that worked against a verdict computed next to proof code (attack.mjs). */
export const attackPayload = 'node --experimental-websocket ./attack.mjs 2>&1\n';
