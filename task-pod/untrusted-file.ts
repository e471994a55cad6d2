/**
 * Reading files that a container we do not trust could have planted (the build's artifacts, or the
 * results volume a checker over hostile input could write): never through a link, regular files
 * only, bounded in size and time. Errors name the file and the rule it broke, never its content,
 * which may be anything — a credential included, had a link pointed at one.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

export class UntrustedFileError extends Error {
  override readonly name = 'UntrustedFileError';
}

export interface ReadLimits {
  maxBytes: number;
  /** Give up after this long (a file on a stuck filesystem must not hold the attempt). */
  timeoutMs?: number;
  /** Read only the first `maxBytes` of a larger file instead of refusing it. */
  truncate?: boolean;
}

/**
 * Opens `file` for reading without following a link at its last component and without blocking
 * on a FIFO, and checks it is a regular file. The caller closes the handle.
 */
export async function openRegular(file: string, label = file): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new UntrustedFileError(`${label} is a symbolic link`);
    if (code === 'ENOENT') throw new UntrustedFileError(`${label} is missing`);
    throw new UntrustedFileError(`${label} cannot be opened (${code ?? 'error'})`);
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new UntrustedFileError(`${label} is not a regular file`);
  }
  return { handle, size: stat.size };
}

/** The content of a planted file, within `limits`. */
export async function readUntrusted(file: string, limits: ReadLimits, label = file): Promise<{ content: Buffer; truncated: boolean }> {
  const { handle, size } = await openRegular(file, label);
  try {
    if (size > limits.maxBytes && !limits.truncate) throw new UntrustedFileError(`${label} is larger than ${limits.maxBytes} bytes`);
    const buffer = Buffer.alloc(Math.min(size, limits.maxBytes));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new UntrustedFileError(`${label} could not be read within ${limits.timeoutMs} ms`)),
        limits.timeoutMs ?? 10_000,
      );
    });
    try {
      let offset = 0;
      while (offset < buffer.length) {
        const { bytesRead } = await Promise.race([handle.read(buffer, offset, buffer.length - offset, offset), timeout]);
        if (bytesRead === 0) break;
        offset += bytesRead;
      }
      return { content: buffer.subarray(0, offset), truncated: size > limits.maxBytes };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await handle.close();
  }
}
