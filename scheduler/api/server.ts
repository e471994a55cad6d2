import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { type ZodTypeProvider, jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Sql } from '../database/connect.js';
import type { Metrics } from '../metrics.js';
import type { Substrate } from '../substrate/substrate.js';
import { errorHandler, sendError } from './errors.js';
import { refuseNonText } from './text-input.js';
import { evidenceUploadRoutes } from './routes/evidence-upload.js';
import { attestationKeyRoutes } from './routes/attestation-keys.js';
import { healthRoutes } from './routes/health.js';
import { laneRoutes } from './routes/lanes.js';
import { submitterRoutes } from './routes/submitters.js';
import { proverRoutes } from './routes/provers.js';
import { jobRoutes } from './routes/jobs.js';
import { uiRoutes } from './routes/ui.js';

export interface ServerDeps {
  sql: Sql;
  config: Config;
  metrics: Metrics;
  log: Logger;
  substrate?: Substrate;
  latestMigration: number;
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: deps.config.bodyLimitBytes,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.addHook('preValidation', refuseNonText);
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, `no route ${request.method} ${request.url}`));

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'proofpod',
        description: 'Verifies machine-checked proofs from untrusted sources, one sandboxed attempt at a time.',
        version: '0.1.0',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(healthRoutes, {
    sql: deps.sql,
    metrics: deps.metrics,
    substrate: deps.substrate,
    latestMigration: deps.latestMigration,
  });
  await app.register(jobRoutes, { sql: deps.sql, config: deps.config, metrics: deps.metrics, substrate: deps.substrate });
  await app.register(evidenceUploadRoutes, { sql: deps.sql });
  await app.register(laneRoutes, { sql: deps.sql, config: deps.config });
  await app.register(submitterRoutes, { sql: deps.sql, config: deps.config });
  await app.register(proverRoutes, { sql: deps.sql, config: deps.config });
  await app.register(attestationKeyRoutes, { sql: deps.sql });
  await app.register(uiRoutes);
  return app;
}
