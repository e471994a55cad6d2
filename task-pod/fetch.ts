/**
 * The fetch init container: quarantine fetch of exactly one commit of an untrusted repository into
 * the source volume, and the manifest the reporter binds the evidence to. Nothing from the source
 * is executed: no hooks, filters, helpers or submodules, and git's config is only what we pass.
 *
 * Exit codes: 0 fetched; 1 the source is refused (hostile or invalid; final, not retried);
 * 2 fetch itself failed (its configuration or the node); 3 transient (the remote could not be reached).
 */
import { spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { env, files, mountPath } from '../contract/pod.js';
import { coerceError } from '../contract/errors.js';
import { type Git, quarantinedGit } from './git.js';
import { type Manifest, ManifestSchema } from './manifest.js';

export const exitCodes = { fetched: 0, refused: 1, failed: 2, transient: 3 } as const;

/** The source is hostile or invalid: retrying cannot help. */
export class SourceRefused extends Error {
  override readonly name = 'SourceRefused';
}

/** The remote could not be reached; another attempt may succeed. */
export class TransientFetchError extends Error {
  override readonly name = 'TransientFetchError';
}

export interface FetchOptions {
  sourceDir: string;
  metaDir: string;
  url: string;
  commit: string;
  /** Relative to the repository root; null for the whole repository. */
  subdirectory: string | null;
  /** Limit for the checked-out files and, separately, for the fetched objects in `.git`. */
  maxSourceBytes: number;
  allowFileSources: boolean;
  allowSubmodules: boolean;
  /** Where the kept proxy and PATH variables come from (default: process.env). */
  environment?: NodeJS.ProcessEnv;
}

const MODE_SYMLINK = '120000';
const MODE_GITLINK = '160000';
/** Linux's own limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

export async function quarantineFetch(options: FetchOptions): Promise<Manifest> {
  const { sourceDir, metaDir, url, commit, maxSourceBytes } = options;
  checkCommit(commit);
  checkUrl(url, options.allowFileSources);
  const subdirectory = normaliseSubdirectory(options.subdirectory);
  if (!Number.isSafeInteger(maxSourceBytes) || maxSourceBytes <= 0) {
    throw new Error(`maxSourceBytes must be a positive integer, got ${maxSourceBytes}`);
  }

  await mkdir(sourceDir, { recursive: true });
  if ((await readdir(sourceDir)).length > 0) throw new Error(`source directory ${sourceDir} is not empty`);
  const home = await mkdtemp(path.join(tmpdir(), 'proofpod-fetch-home-'));
  try {
    const git = quarantinedGit({ home, allowFileProtocol: options.allowFileSources, environment: options.environment });
    const run = async (args: string[], what: string) => {
      const result = await git(args, { cwd: sourceDir });
      if (result.code !== 0) throw new Error(`${what} failed: ${lastLine(result.stderr)}`);
      return result.stdout;
    };

    // An empty template: the default one ships sample hooks, and a configured one could ship real ones.
    await run(['init', '--quiet', '--template=', '.'], 'git init');
    await fetchCommit(git, options);

    const objectType = (await run(['cat-file', '-t', commit], 'git cat-file')).toString().trim();
    if (objectType !== 'commit') throw new SourceRefused(`${commit} in ${url} is a ${objectType}, not a commit`);

    const tree = parseTree(await run(['ls-tree', '-r', '-t', '-z', '--long', commit], 'git ls-tree'));
    const { bytes, files: fileCount, symlinks } = measure(tree, options);
    await checkSymlinks(git, sourceDir, symlinks);
    if (subdirectory !== null) checkSubdirectory(tree, subdirectory);

    await run(['checkout', '--quiet', '--detach', commit], 'git checkout');
    const head = (await run(['rev-parse', '--verify', 'HEAD'], 'git rev-parse')).toString().trim();
    if (head !== commit) throw new Error(`HEAD is ${head} after checking out ${commit}`);
    const treeHash = (await run(['rev-parse', '--verify', 'HEAD^{tree}'], 'git rev-parse')).toString().trim();

    const manifest = ManifestSchema.parse({
      url,
      commit,
      treeHash,
      subdirectory,
      bytes,
      files: fileCount,
      fetchedAt: new Date().toISOString(),
    } satisfies Manifest);
    await mkdir(metaDir, { recursive: true });
    await makeFifo(path.join(metaDir, files.proverExit));
    await writeAtomically(path.join(metaDir, files.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

function checkCommit(commit: string): void {
  if (!/^[0-9a-f]{40}$/.test(commit)) {
    throw new SourceRefused(`commit must be a full 40-character lowercase hex SHA-1, got ${JSON.stringify(commit.slice(0, 100))}`);
  }
}

/**
 * https always, file:// only when allowed. The raw prefix is checked as well as the parsed scheme so
 * that git, which parses URLs its own way, sees the same scheme; characters outside RFC 3986 are
 * refused for the same reason. Credentials in the URL are refused: they would be sent by git and
 * recorded in the manifest.
 */
function checkUrl(url: string, allowFileSources: boolean): void {
  // Messages go to the termination log: never repeat credentials, even in a refused URL.
  const shown = JSON.stringify(url.slice(0, 200).replace(/\/\/[^/@]*@/, '//…@'));
  const allowed = allowFileSources ? ['https://', 'file://'] : ['https://'];
  const prefix = allowed.find((p) => url.startsWith(p));
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // Refused below: not a URL (scp-like host:path, a bare path, ext::…).
  }
  if (prefix === undefined || parsed?.protocol !== prefix.slice(0, -2)) {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1];
    const reason = scheme === 'file' ? 'file:// sources are not allowed here' : `scheme ${scheme ? `"${scheme}"` : '(none)'} is not allowed`;
    throw new SourceRefused(`source URL ${shown} refused: ${reason}; use ${allowed.join(' or ')}`);
  }
  if (!/^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/.test(url)) {
    throw new SourceRefused(`source URL ${shown} has characters not allowed in a URL`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new SourceRefused(`source URL refused: it carries credentials (user@ or user:password@); only public sources are fetched`);
  }
  if (prefix === 'https://' && parsed.hostname === '') throw new SourceRefused(`source URL ${shown} has no host`);
  if (prefix === 'file://' && parsed.hostname !== '') throw new SourceRefused(`source URL ${shown}: file:// URLs must not name a host`);
}

/** A relative, normalised path inside the repository, or null. */
function normaliseSubdirectory(subdirectory: string | null): string | null {
  if (subdirectory === null || subdirectory === '') return null;
  const trimmed = subdirectory.replace(/\/+$/, '');
  const normal = path.posix.normalize(trimmed);
  if (trimmed === '' || normal !== trimmed || normal === '.' || normal.startsWith('/') || normal.split('/').includes('..') || normal.includes('\0')) {
    throw new SourceRefused(`subdirectory ${JSON.stringify(subdirectory.slice(0, 200))} must be a plain relative path inside the repository`);
  }
  return normal;
}

/**
 * `git fetch` of the one commit, shallow, with no tags. Git has no size limit for fetch, so the
 * growth of `.git` is watched and the fetch killed once it passes the limit; the final size is checked
 * again afterwards.
 */
async function fetchCommit(git: Git, options: FetchOptions): Promise<void> {
  const { sourceDir, url, commit, maxSourceBytes } = options;
  const gitDir = path.join(sourceDir, '.git');
  const abort = new AbortController();
  let tooBig = false;
  let measuring = false;
  const watch = setInterval(() => {
    if (measuring) return; // A large .git takes a while to walk; do not pile up walks.
    measuring = true;
    void directoryBytes(gitDir).then((size) => {
      measuring = false;
      if (size > maxSourceBytes && !abort.signal.aborted) {
        tooBig = true;
        abort.abort();
      }
    });
  }, 200);
  let result;
  try {
    result = await git(['fetch', '--quiet', '--depth=1', '--no-tags', '--', url, commit], { cwd: sourceDir, signal: abort.signal });
  } finally {
    clearInterval(watch);
  }
  const fetched = await directoryBytes(gitDir);
  if (tooBig || fetched > maxSourceBytes) {
    throw new SourceRefused(`fetched objects of ${url} take more than ${maxSourceBytes} bytes (limit)${tooBig ? '; fetch stopped' : `: ${fetched} bytes`}`);
  }
  if (result.code !== 0) throw classifyFetchFailure(result.stderr, url, commit);
}

/** Tells a source that cannot be fetched (final) from a remote that could not be reached (retry). */
function classifyFetchFailure(stderr: string, url: string, commit: string): Error {
  const detail = lastLine(stderr);
  if (/not our ref|unadvertised object|couldn't find remote ref|no such remote ref/i.test(stderr)) {
    return new SourceRefused(`commit ${commit} not found in ${url}`);
  }
  if (/repository '.*' not found|does not appear to be a git repository|could not read (Username|Password)|Authentication failed/i.test(stderr)) {
    return new SourceRefused(`repository ${url} not found or not public: ${detail}`);
  }
  if (/fsck|index-pack failed|bad object|invalid object|did not send all necessary objects/i.test(stderr)) {
    return new SourceRefused(`objects from ${url} failed git's checks: ${detail}`);
  }
  const http = /returned error: (\d{3})/.exec(stderr)?.[1];
  if (http !== undefined && http.startsWith('4') && http !== '408' && http !== '429') {
    return new SourceRefused(`${url} refused the fetch (HTTP ${http}): ${detail}`);
  }
  if (url.startsWith('https://')) return new TransientFetchError(`could not fetch ${commit} from ${url}: ${detail}`);
  return new Error(`git fetch from ${url} failed: ${detail}`);
}

interface TreeEntry {
  mode: string;
  type: string;
  object: string;
  /** Blob size; null for trees and gitlinks. */
  size: number | null;
  path: string;
}

/**
 * Paths and symlink targets are kept as latin1 strings, one character per byte: names need not be
 * UTF-8, and decoding them as UTF-8 would map distinct invalid names to the same string.
 */
const bytesOf = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
const shown = (name: string) => Buffer.from(name, 'latin1').toString('utf8').slice(0, 200);

/** `git ls-tree -r -t -z --long`: `<mode> <type> <object> <size>\t<path>\0`. */
function parseTree(output: Buffer): TreeEntry[] {
  return output
    .toString('latin1')
    .split('\0')
    .filter((record) => record !== '')
    .map((record) => {
      const tab = record.indexOf('\t');
      const [mode = '', type = '', object = '', size = '-'] = record.slice(0, tab).trim().split(/ +/);
      return { mode, type, object, size: size === '-' ? null : Number(size), path: record.slice(tab + 1) };
    });
}

/** Size limit and submodules, before anything is written to the work tree. */
function measure(tree: TreeEntry[], options: FetchOptions) {
  const blobs = tree.filter((e) => e.type === 'blob');
  const bytes = blobs.reduce((sum, e) => sum + (e.size ?? 0), 0);
  if (bytes > options.maxSourceBytes) {
    throw new SourceRefused(`source is ${bytes} bytes in ${blobs.length} files, over the limit of ${options.maxSourceBytes} bytes`);
  }
  // Only the root .gitmodules is read by git; a nested one is inert content.
  const submodules = tree.filter((e) => e.mode === MODE_GITLINK || e.path === '.gitmodules');
  if (submodules.length > 0 && !options.allowSubmodules) {
    throw new SourceRefused(`source has submodules (${submodules.map((e) => shown(e.path)).slice(0, 5).join(', ')}), which this prover profile does not allow`);
  }
  const symlinks = blobs.filter((e) => e.mode === MODE_SYMLINK);
  return { bytes, files: blobs.length, symlinks };
}

/** Every symlink must resolve inside the work tree, following the tree's other symlinks on the way. */
async function checkSymlinks(git: Git, sourceDir: string, symlinks: TreeEntry[]): Promise<void> {
  if (symlinks.length === 0) return;
  const result = await git(['cat-file', '--batch'], { cwd: sourceDir, input: symlinks.map((e) => `${e.object}\n`).join('') });
  if (result.code !== 0) throw new Error(`git cat-file failed: ${lastLine(result.stderr)}`);
  const targets = new Map<string, string>();
  let offset = 0;
  for (const link of symlinks) {
    // Each object is `<oid> blob <size>\n<content>\n`.
    const headerEnd = result.stdout.indexOf(0x0a, offset);
    const [object, type, sizeText] = result.stdout.toString('utf8', offset, headerEnd).split(' ');
    if (object !== link.object || type !== 'blob') throw new Error(`git cat-file gave ${object} ${type} for symlink ${shown(link.path)}`);
    const size = Number(sizeText);
    targets.set(link.path, result.stdout.toString('latin1', headerEnd + 1, headerEnd + 1 + size));
    offset = headerEnd + 1 + size + 1;
  }
  for (const { path: link } of symlinks) {
    const target = targets.get(link) ?? '';
    const problem = symlinkProblem(link, target, targets);
    if (problem) throw new SourceRefused(`symlink ${shown(link)} -> ${shown(target)} refused: ${problem}`);
  }
}

/**
 * Resolves a link's target component by component as the kernel would, with the tree's symlinks as
 * the only links. Normalising the target string alone is not enough: `a -> d/l/../..` looks inside
 * but leaves the tree when `d/l -> ..`.
 */
function symlinkProblem(link: string, target: string, links: Map<string, string>): string | null {
  const at = link.split('/').slice(0, -1);
  const pending: string[] = [];
  const follow = (t: string): string | null => {
    if (t === '' || t.includes('\0')) return 'the target is empty or invalid';
    // The kernel's PATH_MAX; also keeps a crafted target from costing more than a moment here.
    if (t.length >= 4096) return 'the target is too long';
    if (t.startsWith('/')) return 'the target is an absolute path';
    pending.unshift(...t.split('/'));
    return null;
  };
  let problem = follow(target);
  let hops = 0;
  while (problem === null && pending.length > 0) {
    const component = pending.shift()!;
    if (component === '' || component === '.') continue;
    if (component === '..') {
      if (at.length === 0) return 'it resolves outside the source tree';
      at.pop();
      continue;
    }
    at.push(component);
    // Inside the tree but not the source: .git is git's, and only written by git.
    if (at.length === 1 && component === '.git') return 'it points into .git';
    const next = links.get(at.join('/'));
    if (next === undefined) continue;
    if (++hops > MAX_SYMLINK_HOPS) return 'too many levels of symlinks';
    at.pop();
    problem = follow(next);
  }
  return problem;
}

function checkSubdirectory(tree: TreeEntry[], subdirectory: string): void {
  const entry = tree.find((e) => e.path === bytesOf(subdirectory));
  if (entry === undefined) throw new SourceRefused(`subdirectory ${subdirectory} does not exist at this commit`);
  if (entry.type !== 'tree') {
    throw new SourceRefused(`subdirectory ${subdirectory} is ${entry.mode === MODE_SYMLINK ? 'a symlink' : `a ${entry.type}`}, not a directory`);
  }
}

async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch {
    return 0; // Vanished while git renamed temporary files.
  }
  for (const entry of entries) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) total += await directoryBytes(full);
    else total += await lstat(full).then((s) => s.size, () => 0);
  }
  return total;
}

/** Node has no mkfifo; the coreutils program does it without a shell. */
async function makeFifo(fifo: string): Promise<void> {
  await rm(fifo, { force: true });
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('mkfifo', ['-m', '0644', fifo], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`mkfifo ${fifo} exited with ${code}`);
}

async function writeAtomically(file: string, content: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode: 0o644 });
  await rename(temporary, file);
}

/** The last non-empty line of git's stderr, one line and bounded (it can carry the remote's text). */
function lastLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return oneLine(lines.at(-1) ?? 'no message');
}

function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim().slice(0, 1000);
}

function positiveInteger(environment: NodeJS.ProcessEnv, name: string): number {
  const value = Number(environment[name]);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(environment[name])}`);
  return value;
}

function flag(environment: NodeJS.ProcessEnv, name: string): boolean {
  const value = environment[name] ?? '';
  if (value === 'true') return true;
  if (value === 'false' || value === '') return false;
  throw new Error(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

/** Reads the fetch container's environment (see contract.ts), runs the fetch, returns the exit code. */
export async function main(environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const manifest = await quarantineFetch({
      sourceDir: mountPath('source', environment),
      metaDir: mountPath('meta', environment),
      url: environment[env.sourceUrl] ?? '',
      commit: environment[env.commit] ?? '',
      subdirectory: environment[env.subdirectory] || null,
      maxSourceBytes: positiveInteger(environment, env.maxSourceBytes),
      allowFileSources: flag(environment, env.allowFileSources),
      allowSubmodules: flag(environment, env.allowSubmodules),
      environment,
    });
    process.stdout.write(`fetched ${manifest.commit} (tree ${manifest.treeHash}): ${manifest.files} files, ${manifest.bytes} bytes\n`);
    return exitCodes.fetched;
  } catch (thrown) {
    const error = coerceError(thrown);
    const [code, message] =
      error instanceof SourceRefused
        ? [exitCodes.refused, error.message]
        : error instanceof TransientFetchError
          ? [exitCodes.transient, error.message]
          : [exitCodes.failed, `fetch failed: ${error.message}`];
    const line = oneLine(message);
    process.stderr.write(`${line}\n`);
    // Kubernetes shows this file as the container's termination message: the reason the scheduler reports.
    await writeFile(environment.PROOFPOD_TERMINATION_LOG || '/dev/termination-log', line).catch(() => {});
    return code;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exit(await main());
}
