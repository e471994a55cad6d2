/**
 * The fetch init container: quarantine fetch of exactly one commit of an untrusted repository into
 * the source volume, and the manifest the reporter binds the evidence to. Nothing from the source
 * is executed: no hooks, filters, helpers or submodules, and git's config is only what we pass.
 *
 * Exit codes: 0 fetched; 1 the source is refused (hostile or invalid; final, not retried);
 * 2 fetch itself failed (its configuration or the node); 3 transient (the remote could not be reached).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, type Dirent, type Stats } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as z from 'zod';
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
  /** Most files (blobs, symlinks included) the tree may have. */
  maxSourceFiles: number;
  /** Most path components any entry of the tree may have. */
  maxSourceDepth: number;
  /** Most bytes the targets may take together. */
  maxTargetBytes: number;
  /** The files the prover will check, relative to the subdirectory: each must be a regular file of the tree. */
  targets: readonly string[];
  allowFileSources: boolean;
  allowSubmodules: boolean;
  /** Where the kept proxy and PATH variables come from (default: process.env). */
  environment?: NodeJS.ProcessEnv;
}

const MODE_FILE = '100644';
const MODE_EXECUTABLE = '100755';
const MODE_SYMLINK = '120000';
const MODE_TREE = '040000';
const MODE_GITLINK = '160000';
const knownModes = new Set([MODE_FILE, MODE_EXECUTABLE, MODE_SYMLINK, MODE_TREE, MODE_GITLINK]);
/** Linux's own limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

export async function quarantineFetch(options: FetchOptions): Promise<Manifest> {
  const { sourceDir, metaDir, url, commit } = options;
  checkCommit(commit);
  checkUrl(url, options.allowFileSources);
  const subdirectory = normaliseSubdirectory(options.subdirectory);
  for (const limit of ['maxSourceBytes', 'maxSourceFiles', 'maxSourceDepth', 'maxTargetBytes'] as const) {
    const value = options[limit];
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${limit} must be a positive integer, got ${value}`);
  }

  await mkdir(sourceDir, { recursive: true });
  if ((await readdir(sourceDir)).length > 0) throw new Error(`source directory ${sourceDir} is not empty`);
  const home = await mkdtemp(path.join(tmpdir(), 'proofpod-fetch-home-'));
  try {
    const git = quarantinedGit({ home, allowFileProtocol: options.allowFileSources, environment: options.environment });
    const run = (args: string[], what: string) => gitOutput(git, sourceDir, args, what);

    // An empty template: the default one ships sample hooks, and a configured one could ship real ones.
    await run(['init', '--quiet', '--template=', '.'], 'git init');
    await fetchCommit(git, options);

    const objectType = (await run(['cat-file', '-t', commit], 'git cat-file')).toString().trim();
    if (objectType !== 'commit') throw new SourceRefused(`${commit} in ${url} is a ${objectType}, not a commit`);

    const tree = await readTree(git, sourceDir, commit);
    const { bytes, files: fileCount, symlinks } = measure(tree, options);
    checkSymlinks(await readSymlinkTargets(git, sourceDir, symlinks));
    if (subdirectory !== null) checkSubdirectory(tree, subdirectory);
    checkTargets(tree, subdirectory, options);

    await neutraliseAttributes(path.join(sourceDir, '.git'));
    await run(['checkout', '--quiet', '--detach', commit], 'git checkout');
    // One call for both; the `--` ends the revisions, so a file named HEAD in the tree changes nothing.
    const [head, treeHash] = (await run(['rev-parse', 'HEAD', 'HEAD^{tree}', '--'], 'git rev-parse')).toString().split('\n');
    if (head !== commit) throw new Error(`HEAD is ${head} after checking out ${commit}`);
    if (!treeHash || !/^[0-9a-f]{40}$/.test(treeHash)) throw new Error(`git rev-parse gave no tree for ${commit}`);
    // The tree read before the checkout: the object store it came from is not written by checking out.
    await verifyWorkTree(git, sourceDir, commit, tree);

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
    await makeFifo(path.join(metaDir, files.checkExit));
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
    const reason =
      scheme === 'file' ? 'file:// sources are not allowed here' : `scheme ${scheme ? `"${scheme}"` : '(none)'} is not allowed`;
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
  if (
    trimmed === '' ||
    normal !== trimmed ||
    normal === '.' ||
    normal.startsWith('/') ||
    normal.split('/').includes('..') ||
    normal.includes('\0')
  ) {
    throw new SourceRefused(
      `subdirectory ${JSON.stringify(subdirectory.slice(0, 200))} must be a plain relative path inside the repository`,
    );
  }
  // The prover is given the subdirectory and targets as arguments: no part may read as an option.
  if (normal.split('/').some((c) => c.startsWith('-'))) {
    throw new SourceRefused(`subdirectory ${JSON.stringify(subdirectory.slice(0, 200))} has a component starting with "-"`);
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
  let result: Awaited<ReturnType<Git>>;
  try {
    result = await git(['fetch', '--quiet', '--depth=1', '--no-tags', '--', url, commit], { cwd: sourceDir, signal: abort.signal });
  } finally {
    clearInterval(watch);
  }
  const fetched = await directoryBytes(gitDir);
  if (tooBig || fetched > maxSourceBytes) {
    throw new SourceRefused(
      `fetched objects of ${url} take more than ${maxSourceBytes} bytes (limit)${tooBig ? '; fetch stopped' : `: ${fetched} bytes`}`,
    );
  }
  if (result.code !== 0) throw classifyFetchFailure(result.stderr, url, commit);
}

/** Tells a source that cannot be fetched (final) from a remote that could not be reached (retry). */
function classifyFetchFailure(stderr: string, url: string, commit: string): Error {
  const detail = lastLine(stderr);
  if (/not our ref|unadvertised object|couldn't find remote ref|no such remote ref/i.test(stderr)) {
    return new SourceRefused(`commit ${commit} not found in ${url}`);
  }
  if (
    /repository '.*' not found|does not appear to be a git repository|could not read (Username|Password)|Authentication failed/i.test(
      stderr,
    )
  ) {
    return new SourceRefused(`repository ${url} not found or not public: ${detail}`);
  }
  if (/fsck|index-pack failed|bad object|invalid object|did not send all necessary objects/i.test(stderr)) {
    return new SourceRefused(`objects from ${url} failed git's checks: ${detail}`);
  }
  const http = /returned error: (\d{3})/.exec(stderr)?.[1];
  if (http?.startsWith('4') && http !== '408' && http !== '429') {
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

/** `git ls-tree` of the whole commit, trees included. */
async function readTree(git: Git, sourceDir: string, commit: string): Promise<TreeEntry[]> {
  return parseTree(await gitOutput(git, sourceDir, ['ls-tree', '-r', '-t', '-z', '--long', commit], 'git ls-tree'));
}

/** Limits, modes and submodules, before anything is written to the work tree. */
function measure(tree: TreeEntry[], options: FetchOptions) {
  const blobs = tree.filter((e) => e.type === 'blob');
  if (blobs.length > options.maxSourceFiles) {
    throw new SourceRefused(`source has ${blobs.length} files, over the limit of ${options.maxSourceFiles} files`);
  }
  const deepest = tree.reduce<TreeEntry | undefined>((d, e) => (d === undefined || depth(e) > depth(d) ? e : d), undefined);
  if (deepest !== undefined && depth(deepest) > options.maxSourceDepth) {
    throw new SourceRefused(
      `path ${shown(deepest.path)} is ${depth(deepest)} components deep, over the limit of ${options.maxSourceDepth}`,
    );
  }
  const bytes = blobs.reduce((sum, e) => sum + (e.size ?? 0), 0);
  if (bytes > options.maxSourceBytes) {
    throw new SourceRefused(`source is ${bytes} bytes in ${blobs.length} files, over the limit of ${options.maxSourceBytes} bytes`);
  }
  // Fail closed: git reads tree modes canonically, and verifyWorkTree knows these five only.
  const odd = tree.find((e) => !knownModes.has(e.mode));
  if (odd !== undefined) throw new SourceRefused(`${shown(odd.path)} has mode ${odd.mode.slice(0, 10)}, which is not a mode git writes`);
  // Only the root .gitmodules is read by git; a nested one is inert content.
  const submodules = tree.filter((e) => e.mode === MODE_GITLINK || e.path === '.gitmodules');
  if (submodules.length > 0 && !options.allowSubmodules) {
    throw new SourceRefused(
      `source has submodules (${submodules
        .map((e) => shown(e.path))
        .slice(0, 5)
        .join(', ')}), which this prover profile does not allow`,
    );
  }
  const symlinks = blobs.filter((e) => e.mode === MODE_SYMLINK);
  return { bytes, files: blobs.length, symlinks };
}

const depth = (entry: TreeEntry) => entry.path.split('/').length;

/** The symlinks' targets (their blobs' content) by path, as latin1 strings. */
async function readSymlinkTargets(git: Git, sourceDir: string, symlinks: TreeEntry[]): Promise<Map<string, string>> {
  const targets = new Map<string, string>();
  if (symlinks.length === 0) return targets;
  const result = await git(['cat-file', '--batch'], { cwd: sourceDir, input: symlinks.map((e) => `${e.object}\n`).join('') });
  if (result.code !== 0) throw new Error(`git cat-file failed: ${lastLine(result.stderr)}`);
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
  return targets;
}

/** Every symlink must resolve inside the work tree, following the tree's other symlinks on the way. */
function checkSymlinks(targets: Map<string, string>): void {
  for (const [link, target] of targets) {
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
    throw new SourceRefused(
      `subdirectory ${subdirectory} is ${entry.mode === MODE_SYMLINK ? 'a symlink' : `a ${entry.type}`}, not a directory`,
    );
  }
}

/**
 * Each target must be a regular file of the tree at `<subdirectory>/<target>`, reached through no
 * symlink: the size checked here and the blob verified after checkout are then what the prover reads.
 */
function checkTargets(tree: TreeEntry[], subdirectory: string | null, options: FetchOptions): void {
  const entries = new Map(tree.map((e) => [e.path, e]));
  const base = subdirectory === null ? [] : subdirectory.split('/');
  const counted = new Set<string>();
  let bytes = 0;
  for (const target of options.targets) {
    const name = JSON.stringify(target.slice(0, 200));
    // `.` and empty components resolve to nothing on the filesystem as well; `..` the API already refuses.
    const components = target.split('/').filter((c) => c !== '' && c !== '.');
    if (components.length === 0 || target.startsWith('/') || target.endsWith('/') || components.includes('..') || target.includes('\0')) {
      throw new SourceRefused(`target ${name} must be a plain relative path to a file`);
    }
    if (components.some((c) => c.startsWith('-'))) throw new SourceRefused(`target ${name} has a component starting with "-"`);
    const full = [...base, ...components];
    for (let i = 1; i < full.length; i++) {
      const through = entries.get(bytesOf(full.slice(0, i).join('/')));
      if (through?.mode === MODE_SYMLINK)
        throw new SourceRefused(`target ${name} is reached through the symlink ${full.slice(0, i).join('/')}`);
    }
    const entry = entries.get(bytesOf(full.join('/')));
    if (entry === undefined)
      throw new SourceRefused(`target ${name} does not exist at this commit${subdirectory === null ? '' : ` in ${subdirectory}`}`);
    if (entry.mode !== MODE_FILE && entry.mode !== MODE_EXECUTABLE) {
      const kind =
        entry.mode === MODE_SYMLINK
          ? 'a symlink'
          : entry.mode === MODE_GITLINK
            ? 'a submodule'
            : entry.type === 'tree'
              ? 'a directory'
              : `mode ${entry.mode}`;
      throw new SourceRefused(`target ${name} is ${kind}, not a file`);
    }
    if (!counted.has(entry.path)) bytes += entry.size ?? 0;
    counted.add(entry.path);
  }
  if (bytes > options.maxTargetBytes) {
    throw new SourceRefused(`targets are ${bytes} bytes in ${counted.size} files, over the limit of ${options.maxTargetBytes} bytes`);
  }
}

/**
 * `$GIT_DIR/info/attributes` beats every .gitattributes of the source, attribute by attribute (macros
 * included), and these are the attributes that change bytes on checkout (gitattributes(5),
 * "Checking-out and checking-in"; `crlf` is the old name of `text`). Unset, each means "as stored".
 * The verification after checkout does not rely on this; it keeps honest sources from being refused.
 */
export async function neutraliseAttributes(gitDir: string): Promise<void> {
  await mkdir(path.join(gitDir, 'info'), { recursive: true });
  await writeFile(path.join(gitDir, 'info', 'attributes'), '* -text -eol -crlf -ident -filter -working-tree-encoding\n', { mode: 0o644 });
}

/** Files hashed at once: enough to keep the disk busy, few enough to bound open files and buffers. */
const HASH_CONCURRENCY = 8;

/**
 * The work tree at `sourceDir` must be exactly the tree of `commit`, as git stores it: each regular
 * file's blob hash computed here from its bytes, each symlink's target, the executable bit, and no
 * entry more or less (`.git` aside). This is what lets the manifest's tree hash stand for the files
 * the prover reads, whatever git did on checkout. Nothing is followed: symlinks are read, not opened.
 */
export async function verifyWorkTree(git: Git, sourceDir: string, commit: string, read?: TreeEntry[]): Promise<void> {
  const tree = read ?? (await readTree(git, sourceDir, commit));
  const expected = new Map(tree.map((e) => [e.path, e]));
  const links = await readSymlinkTargets(
    git,
    sourceDir,
    tree.filter((e) => e.mode === MODE_SYMLINK),
  );
  const root = Buffer.from(sourceDir);
  const onDisk = (relative: string) => Buffer.concat([root, Buffer.from(`/${relative}`, 'latin1')]);
  const differences: string[] = [];
  const differ = (relative: string, what: string) => differences.push(`${shown(relative)}: ${what}`);
  const seen = new Set<string>();
  const toHash: { entry: TreeEntry; stats: Stats }[] = [];

  const walk = async (directory: string): Promise<void> => {
    for (const raw of await readdir(onDisk(directory), { encoding: 'buffer' })) {
      const name = raw.toString('latin1');
      if (directory === '' && name === '.git') continue;
      const relative = directory === '' ? name : `${directory}/${name}`;
      const stats = await lstat(onDisk(relative));
      const entry = expected.get(relative);
      seen.add(relative);
      if (entry === undefined) {
        differ(relative, `a ${kindOf(stats)} that is not in the commit`);
        continue;
      }
      const wanted = entry.mode === MODE_SYMLINK ? 'symlink' : entry.type === 'blob' ? 'file' : 'directory';
      if (kindOf(stats) !== wanted) {
        differ(relative, `a ${kindOf(stats)} where the commit has a ${wanted}`);
      } else if (entry.mode === MODE_TREE) {
        await walk(relative);
      } else if (entry.mode === MODE_GITLINK) {
        // Submodules are never fetched: git leaves an empty directory.
        if ((await readdir(onDisk(relative))).length > 0) differ(relative, 'a submodule directory that is not empty');
      } else if (entry.mode === MODE_SYMLINK) {
        const target = (await readlink(onDisk(relative), { encoding: 'buffer' })).toString('latin1');
        const committed = links.get(relative) ?? '';
        if (target !== committed) differ(relative, `symlink to ${shown(target)} where the commit has ${shown(committed)}`);
      } else if (isExecutable(stats) !== (entry.mode === MODE_EXECUTABLE)) {
        differ(relative, `${isExecutable(stats) ? 'executable' : 'not executable'} where the commit has mode ${entry.mode}`);
      } else if (stats.size !== entry.size) {
        differ(relative, `${stats.size} bytes where the commit's blob has ${entry.size}`);
      } else {
        toHash.push({ entry, stats });
      }
    }
  };
  await walk('');

  const hashNext = async (): Promise<void> => {
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    for (let next = toHash.pop(); next !== undefined; next = toHash.pop()) {
      const hash = await blobHash(onDisk(next.entry.path), next.entry.path, next.stats, buffer);
      if (hash !== next.entry.object) differ(next.entry.path, `content hashes to ${hash} where the commit has ${next.entry.object}`);
    }
  };
  await Promise.all(Array.from({ length: HASH_CONCURRENCY }, hashNext));

  for (const entry of tree) if (!seen.has(entry.path)) differ(entry.path, `missing from the work tree (a ${entry.type} in the commit)`);
  if (differences.length > 0) {
    differences.sort();
    const more = differences.length > 3 ? `; and ${differences.length - 3} more` : '';
    const paths = `${differences.length} path${differences.length === 1 ? '' : 's'}`;
    throw new SourceRefused(`checked-out files differ from commit ${commit} at ${paths}: ${differences.slice(0, 3).join('; ')}${more}`);
  }
}

function kindOf(stats: Stats): string {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFIFO()) return 'FIFO';
  if (stats.isSocket()) return 'socket';
  return 'device';
}

/** As git reads it back: any execute bit. */
const isExecutable = (stats: Stats) => (stats.mode & 0o111) !== 0;

/**
 * Git's object id of the file's bytes as a blob, `sha1("blob <size>\0" + content)`, with no filter.
 * Opened without following a symlink and checked to be the file just inspected.
 */
async function blobHash(file: Buffer, relative: string, inspected: Stats, buffer: Buffer): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || stats.ino !== inspected.ino || stats.dev !== inspected.dev)
      throw new Error(`${shown(relative)} changed while it was verified`);
    const hash = createHash('sha1').update(`blob ${stats.size}\0`);
    for (let read = -1; read !== 0; ) {
      ({ bytesRead: read } = await handle.read(buffer, 0, buffer.length, null));
      hash.update(buffer.subarray(0, read));
    }
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

async function gitOutput(git: Git, cwd: string, args: string[], what: string): Promise<Buffer> {
  const result = await git(args, { cwd });
  if (result.code !== 0) throw new Error(`${what} failed: ${lastLine(result.stderr)}`);
  return result.stdout;
}

async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  let entries: Dirent[];
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch {
    return 0; // Vanished while git renamed temporary files.
  }
  for (const entry of entries) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) total += await directoryBytes(full);
    else
      total += await lstat(full).then(
        (s) => s.size,
        () => 0,
      );
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
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return oneLine(lines.at(-1) ?? 'no message');
}

function oneLine(text: string): string {
  return text
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .trim()
    .slice(0, 1000);
}

/** A positive integer variable; `fallback` when it is absent or empty, if there is one. */
function positiveInteger(environment: NodeJS.ProcessEnv, name: string, fallback?: number): number {
  if (fallback !== undefined && (environment[name] ?? '') === '') return fallback;
  const value = Number(environment[name]);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(environment[name])}`);
  return value;
}

function flag(environment: NodeJS.ProcessEnv, name: string): boolean {
  const value = environment[name] ?? '';
  if (value === 'true') return true;
  if (value === 'false' || value === '') return false;
  throw new Error(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

/** The same list the prover and reporter are given. */
function targetsOf(environment: NodeJS.ProcessEnv): string[] {
  let value: unknown;
  try {
    value = JSON.parse(environment[env.targets] || 'null');
  } catch {
    // Reported below with the variable's text.
  }
  // Empty for a project build that checks every file of its project (the check reads which).
  const parsed = z.array(z.string().min(1)).safeParse(value);
  if (!parsed.success)
    throw new Error(`${env.targets} must be a JSON array of paths, got ${JSON.stringify((environment[env.targets] ?? '').slice(0, 200))}`);
  return parsed.data;
}

/** Limits used when the pod spec does not set them. */
const defaultLimits = { maxSourceFiles: 100_000, maxSourceDepth: 64 } as const;

/** Reads the fetch container's environment (see contract/pod.ts), runs the fetch, returns the exit code. */
export async function main(environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  // The build container, another uid, reads the checkout.
  process.umask(0o022);
  try {
    const maxSourceBytes = positiveInteger(environment, env.maxSourceBytes);
    const manifest = await quarantineFetch({
      sourceDir: mountPath('source', environment),
      metaDir: mountPath('meta', environment),
      url: environment[env.sourceUrl] ?? '',
      commit: environment[env.commit] ?? '',
      subdirectory: environment[env.subdirectory] || null,
      maxSourceBytes,
      maxSourceFiles: positiveInteger(environment, env.maxSourceFiles, defaultLimits.maxSourceFiles),
      maxSourceDepth: positiveInteger(environment, env.maxSourceDepth, defaultLimits.maxSourceDepth),
      maxTargetBytes: positiveInteger(environment, env.maxTargetBytes, maxSourceBytes),
      targets: targetsOf(environment),
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
