import type { FastifyPluginAsync } from 'fastify';
import type { Sql } from '../../database/connect.js';
import { migrationsCurrent } from '../../store/migrate.js';
import { coerceError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';
import type { Substrate } from '../../substrate/substrate.js';

export interface HealthDeps {
  sql: Sql;
  metrics: Metrics;
  substrate?: Substrate;
  latestMigration: number;
}

const CHECK_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    }),
  ]);
}

/** Unauthenticated: probes and Prometheus need no token, and none of these reveals job data. */
export const healthRoutes: FastifyPluginAsync<HealthDeps> = async (app, { sql, metrics, substrate, latestMigration }) => {
  app.get('/livez', { schema: { hide: true } }, async () => ({ status: 'alive' }));

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const checks: Record<string, string> = {};
    let ready = true;
    try {
      const current = await withTimeout(migrationsCurrent(sql, latestMigration), 'postgres');
      checks.postgres = 'ok';
      checks.migrations = current ? 'ok' : `behind: version ${latestMigration} not applied`;
      ready &&= current;
    } catch (error) {
      checks.postgres = `unreachable: ${coerceError(error).message}`;
      ready = false;
    }
    if (substrate) {
      try {
        await withTimeout(substrate.ping(), `substrate ${substrate.kind}`);
        checks.substrate = 'ok';
      } catch (error) {
        checks.substrate = `unreachable: ${coerceError(error).message}`;
        ready = false;
      }
    } else {
      checks.substrate = 'none configured (API only)';
    }
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
};
