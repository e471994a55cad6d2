import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import * as z from 'zod';
import type { Config } from '../../config.js';
import type { Sql } from '../../database/connect.js';
import { holdsBack, proverHealth } from '../../store/provers/prover-health.js';
import { requireSubmitter } from '../auth.js';
import { ErrorBodySchema } from '../errors.js';

const ProverViewSchema = z.object({
  name: z.string(),
  description: z.string(),
  image: z.string(),
  healthy: z.boolean(),
  /** Failures of the profile's own image or containers in a row (a verdict resets it). */
  consecutiveFailures: z.number().int(),
  unhealthySince: z.string().nullable(),
  lastFailure: z.string().nullable(),
  lastFailureAt: z.string().nullable(),
  /** When a verdict last reset its failures or made it healthy again. */
  restoredAt: z.string().nullable(),
  /** Whether a canary (a known-good proof) is configured to restore it when unhealthy. */
  canary: z.boolean(),
});

/** Every prover profile with its health (docs/operations.md, "Prover health"). */
export const proverRoutes: FastifyPluginAsyncZod<{ sql: Sql; config: Config }> = async (app, { sql, config }) => {
  app.addHook('onRequest', requireSubmitter(sql));
  app.get(
    '/v1/provers',
    {
      schema: {
        summary: 'Every prover profile: its image and its health (unhealthy profiles have their jobs wait)',
        tags: ['provers'],
        security: [{ bearer: [] }],
        response: { 200: z.object({ provers: z.array(ProverViewSchema) }), 401: ErrorBodySchema },
      },
    },
    async () => {
      const health = new Map((await proverHealth(sql)).map((h) => [h.prover, h]));
      const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;
      return {
        provers: config.provers.map((p) => {
          const h = health.get(p.name);
          return {
            name: p.name,
            description: p.description,
            image: p.image,
            healthy: !holdsBack(h, p.image),
            consecutiveFailures: h?.consecutiveFailures ?? 0,
            unhealthySince: iso(h?.unhealthySince),
            lastFailure: h?.lastFailure ?? null,
            lastFailureAt: iso(h?.lastFailureAt),
            restoredAt: iso(h?.restoredAt),
            canary: Object.hasOwn(config.proverHealth.canaries, p.name),
          };
        }),
      };
    },
  );
};
