import { constants } from 'node:fs';
import { mkdir, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UntrustedFileError, openRegular } from './untrusted-file.js';

export interface StageLimits {
  maxFiles: number;
  maxBytes: number;
  maxDepth: number;
}

/**
 * Copies the build outputs the checker reads — the files under `tree` whose relative path matches
 * `pattern` — into `destination`, a directory of the check container's own. The build is untrusted:
 * a matching entry that is a link, a FIFO, a device or a directory is refused, directories are
 * entered only when they are real ones, and count, size and depth are bounded. The checker then
 * reads only regular files that nothing but this wrapper wrote. Returns the relative paths staged.
 */
export async function stageArtifacts(tree: string, pattern: RegExp, destination: string, limits: StageLimits): Promise<string[]> {
  const staged: string[] = [];
  let bytes = 0;
  const walk = async (relative: string, depth: number): Promise<void> => {
    if (depth > limits.maxDepth)
      throw new UntrustedFileError(`build output ${relative} is nested deeper than ${limits.maxDepth} directories`);
    const entries = await readdir(path.join(tree, relative), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        await walk(child, depth + 1);
        continue;
      }
      if (!pattern.test(child)) continue;
      if (!entry.isFile()) throw new UntrustedFileError(`build output ${child} is not a regular file`);
      if (staged.length >= limits.maxFiles) throw new UntrustedFileError(`the build left more than ${limits.maxFiles} files to check`);
      const { handle, size } = await openRegular(path.join(tree, child), `build output ${child}`);
      try {
        bytes += size;
        if (bytes > limits.maxBytes) throw new UntrustedFileError(`the build's outputs to check take more than ${limits.maxBytes} bytes`);
        await mkdir(path.dirname(path.join(destination, child)), { recursive: true });
        const out = await open(path.join(destination, child), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o444);
        await pipeline(handle.createReadStream({ autoClose: false, end: Math.max(0, size - 1), start: 0 }), out.createWriteStream());
      } finally {
        await handle.close();
      }
      staged.push(child);
    }
  };
  await mkdir(destination, { recursive: true });
  await walk('', 0);
  return staged;
}
