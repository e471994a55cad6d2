import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
export const chartDir = path.join(root, 'chart');

/**
 * helm as smoke/tools/build.sh builds it (keyed by the hash of smoke/tools/go.sum), or `HELM`, or
 * the one on PATH; undefined when there is none.
 */
export function findHelm(): string | undefined {
  return process.env.HELM ?? findTool('helm');
}

/** A tool smoke/tools/build.sh builds, else the one on PATH. */
export function findTool(name: 'helm' | 'actionlint' | 'cosign'): string | undefined {
  const cache = process.env.PROOFPOD_CLUSTER_CACHE ?? path.join(os.homedir(), '.cache', 'proofpod');
  const key = createHash('sha256')
    .update(readFileSync(path.join(root, 'smoke', 'tools', 'go.sum')))
    .digest('hex')
    .slice(0, 16);
  const built = path.join(cache, 'tools', key, name);
  if (existsSync(built)) return built;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** `helm template` with the given --set values; rejects with helm's stderr when rendering fails. */
export async function renderChart(helm: string, sets: string[], namespace = 'proofpod'): Promise<Manifest[]> {
  try {
    const { stdout } = await run(helm, ['template', 'pp', chartDir, '--namespace', namespace, ...sets.flatMap((s) => ['--set', s])], {
      maxBuffer: 16 << 20,
    });
    return parseAllDocuments(stdout)
      .map((d) => d.toJS() as Manifest | null)
      .filter((m): m is Manifest => m !== null);
  } catch (error) {
    throw new Error((error as { stderr?: string }).stderr || String(error));
  }
}

export async function helmLint(helm: string, sets: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(helm, ['lint', '--strict', chartDir, ...sets.flatMap((s) => ['--set', s])]);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
