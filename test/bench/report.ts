import { cpus, totalmem } from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Replaces the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in docs/benchmarks.md. */
export async function writeSection(name: string, text: string): Promise<void> {
  const file = path.resolve('docs/benchmarks.md');
  const doc = await readFile(file, 'utf8');
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < 0) throw new Error(`${file} has no ${start} … ${end} section`);
  await writeFile(file, `${doc.slice(0, from + start.length)}\n${text}\n${doc.slice(to)}`);
}

/** "2 × AMD EPYC, 24 GiB, Node v20…": the machine a figure was measured on. */
export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/**
 * Runs a benchmark's `main` when its module is the program node was started with (`node
 * dist/test/bench/x.js`), not when a test imports it for its tiny run; a failure exits 1.
 */
export function runAsMain(moduleUrl: string, main: () => Promise<void>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
