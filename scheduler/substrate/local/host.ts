/**
 * The host side of the local substrate: processes (their identity, liveness, ends, groups) and files
 * (bounded logs, termination messages, trees the sandbox uid wrote). Nothing here knows about pods.
 */
import type { ChildProcess } from 'node:child_process';
import { constants, accessSync, createWriteStream } from 'node:fs';
import { chmod, lstat, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';

type Ending = { code: number | null; signal: NodeJS.Signals | null } | { error: Error };

/**
 * Waits for the process and its output. An unsandboxed command's leftover processes are killed with
 * its process group, as a PID namespace would take them; one that escaped the group cannot hold the
 * attempt open longer than a grace period.
 */
export function waitForEnd(child: ChildProcess, killLeftovers: boolean): Promise<Ending> {
  return new Promise((resolve) => {
    child.once('error', (error) => {
      if (child.pid === undefined) resolve({ error });
    });
    child.once('exit', (code, signal) => {
      if (killLeftovers) killGroup(child);
      const timer = setTimeout(() => {
        for (const stream of child.stdio) stream?.destroy();
      }, 2000);
      child.once('close', () => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
  });
}

/** SIGKILL to the process group; for a sandbox, --die-with-parent takes the sandbox down with bubblewrap. */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Exited already.
  }
}

export function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? osConstants.signals[signal] : 0;
}

/** Container logs are capped as the kubelet caps them, so output cannot fill the disk. */
const maxLogBytes = 10 * 1024 * 1024;

export class CappedLog {
  private readonly stream;
  private written = 0;

  constructor(readonly file: string) {
    this.stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
    this.stream.on('error', () => {});
  }

  write(chunk: Buffer): void {
    if (this.written >= maxLogBytes) return;
    const room = maxLogBytes - this.written;
    this.written += chunk.length;
    this.stream.write(chunk.length <= room ? chunk : chunk.subarray(0, room));
    if (this.written >= maxLogBytes) this.stream.write(`\n[log truncated at ${maxLogBytes} bytes]\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }
}

/** Kubernetes keeps the first 4096 bytes of the termination message. */
export async function readTerminationMessage(file: string): Promise<string> {
  return (await readHead(file, 4096)).trim();
}

async function readHead(file: string, bytes: number): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (!handle) return '';
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The last non-empty line of a log, from its last 4 KiB. */
export async function lastLogLine(file: string): Promise<string | undefined> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 4096);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const lines = buffer
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    return lines.at(-1);
  } finally {
    await handle.close();
  }
}

/** A process, told apart from a later one that reuses its pid by its start time. */
export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat; empty where /proc is not available. */
  startTime: string;
}

export async function processIdentity(pid: number): Promise<ProcessIdentity> {
  return { pid, startTime: (await procStat(pid))?.startTime ?? '' };
}

/** State and start time from /proc/<pid>/stat; undefined when there is no such process (or no /proc). */
async function procStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: count fields from the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** Whether the process still runs: a zombie (Z) or dead (X) one has ended even if nobody reaped it. */
export async function isAlive(identity: ProcessIdentity): Promise<boolean> {
  if (identity.startTime) {
    const current = await procStat(identity.pid);
    return current !== undefined && current.startTime === identity.startTime && current.state !== 'Z' && current.state !== 'X';
  }
  try {
    process.kill(identity.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The first directory on the way to `target` (itself included) that `ids` may not search. */
export async function unsearchableAncestor(target: string, ids: { uid: number; gid: number }): Promise<string | undefined> {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = `/${parts.slice(0, i).join('/')}`;
    const s = await stat(dir).catch(() => undefined);
    if (!s) return undefined;
    const bit = s.uid === ids.uid ? 0o100 : s.gid === ids.gid ? 0o010 : 0o001;
    if ((s.mode & bit) === 0) return dir;
  }
  return undefined;
}

/** rm -rf that also clears directories a container left without write permission. */
export async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw error;
    await makeWritable(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  const s = await lstat(dir).catch(() => undefined);
  if (!s?.isDirectory()) return;
  await chmod(dir, 0o700).catch(() => {});
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) await makeWritable(path.join(dir, entry.name));
  }
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findOnPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, '/usr/bin', '/bin']) {
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
