import { mkdir } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildServer } from './api/server.js';
import { adminTokenBanner, bootstrapAdminToken, registerAdminTokenFile } from './auth/bootstrap-admin.js';
import type { Config } from './config.js';
import { type Sql, connect } from './database/connect.js';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './database/embedded.js';
import { migrate, readMigrations } from './store/migrate.js';
import { createReplicaContext } from './replica/context.js';
import { createLogger } from './log.js';
import { type Metrics, createMetrics } from './metrics.js';
import { Replica, newHolderId } from './replica/replica.js';
import { createSubstrate, projectRoot } from './substrate/create.js';
import { loadSigningKey } from './attestation/signing-key.js';
import { registerSigningKey } from './store/attestations/signing-keys.js';
import { prepareStatePaths } from './state-paths.js';
import type { Substrate } from './substrate/substrate.js';

export interface StartOptions {
  log?: Logger;
  /** Overrides the configured substrate (tests pass a fake of the cluster here). */
  substrate?: Substrate;
  /** Where admin token banners go; stdout by default. */
  print?: (text: string) => void;
}

export interface Proofpod {
  url: string;
  sql: Sql;
  config: Config;
  server: FastifyInstance;
  metrics: Metrics;
  replica?: Replica;
  holder: string;
  /** Set on the start that minted it. */
  adminToken?: string;
  /** Graceful: loops stop, leases are handed back, connections close, the embedded Postgres stops. */
  stop(): Promise<void>;
  /** Abrupt: loops stop mid-work and nothing is released, as when the process is killed. */
  crash(): Promise<void>;
}

export async function startProofpod(config: Config, options: StartOptions = {}): Promise<Proofpod> {
  const log = options.log ?? createLogger(config.logLevel);
  await mkdir(config.home, { recursive: true, mode: 0o711 });
  // Decided once, before anything runs as another user: where the Postgres data and the sandboxes' programs are.
  const runsSandboxes = !options.substrate && config.substrate === 'local';
  const paths = await prepareStatePaths(
    { home: config.home, postgres: !config.databaseUrl, sandboxes: runsSandboxes ? { programsRoot: projectRoot() } : undefined },
    log,
  );
  let embedded: EmbeddedDatabase | undefined;
  if (!config.databaseUrl) embedded = await startEmbeddedPostgres(config.home, log, undefined, paths.postgres);
  const databaseUrl = config.databaseUrl ?? embedded!.url;
  const sql = connect(databaseUrl);
  // The pool is ended after the loops and the server (steps are unshifted before it), when no query
  // of ours is left in flight: the grace is for postgres.js, whose connection that lost a query to an
  // outage still counts it as running and makes end() wait for the timeout (porsager/postgres#1097).
  const cleanup: (() => Promise<void>)[] = [() => sql.end({ timeout: 1 }), async () => embedded?.stop()];
  try {
    const migrations = await readMigrations();
    await migrate(sql, log.child({ component: 'migrate' }), migrations);
    const latestMigration = Math.max(0, ...migrations.map((m) => m.version));
    if (config.adminTokenFile) await registerAdminTokenFile(sql, config.adminTokenFile);
    const metrics = createMetrics(
      sql,
      config.lanes.map((l) => l.name),
      config.provers,
    );
    const substrate = options.substrate ?? createSubstrate(config, log, paths.sandboxes);
    if (substrate?.close) cleanup.unshift(() => substrate.close!());
    const server = await buildServer({ sql, config, metrics, log, substrate, latestMigration });
    await server.listen({ host: config.host, port: config.port });
    cleanup.unshift(() => server.close());
    const address = server.server.address();
    if (!address || typeof address === 'string') throw new Error('the API server is not listening on TCP');
    const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

    let adminToken: string | undefined;
    if (config.bootstrapAdminToken ?? !config.databaseUrl) {
      adminToken = await bootstrapAdminToken(sql, config.home);
      if (adminToken) (options.print ?? ((t) => process.stdout.write(t)))(adminTokenBanner(adminToken, url, config.home));
    }

    const holder = newHolderId();
    let replica: Replica | undefined;
    if (substrate) {
      // Only a replica that judges signs; an API-only one registers no key.
      const signingKey = await loadSigningKey(config.home, config.attestation.signingKeyFile);
      await registerSigningKey(sql, signingKey);
      log.info({ keyid: signingKey.keyid, algorithm: signingKey.algorithm }, 'signing verdicts with this key');
      replica = new Replica(
        createReplicaContext({ sql, holder, log: log.child({ holder }), substrate, config, metrics, serverUrl: url, signingKey }),
      );
      await replica.start();
      cleanup.unshift(() => replica!.stop());
    } else {
      log.warn('no substrate configured: jobs are accepted and stay queued until a substrate runs them');
    }
    log.info({ url, substrate: substrate?.kind ?? 'none' }, 'proofpod listening');

    const runAll = async (steps: (() => Promise<void>)[]) => {
      for (const step of steps) await step().catch((error: unknown) => log.error({ err: error }, 'shutdown step failed'));
    };
    return {
      url,
      sql,
      config,
      server,
      metrics,
      replica,
      holder,
      adminToken,
      stop: () => runAll(cleanup),
      crash: async () => {
        replica?.abandon();
        // Drop connections mid-request, as a killed process does, instead of draining them.
        server.server.closeAllConnections();
        await runAll([() => sql.end({ timeout: 0 }), () => server.close(), async () => substrate?.close?.(), async () => embedded?.stop()]);
      },
    };
  } catch (error) {
    for (const step of cleanup) await step().catch(() => {});
    throw error;
  }
}
