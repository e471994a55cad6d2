import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import * as z from 'zod';
import type { Config } from '../../config.js';
import type { Sql } from '../../database/connect.js';
import { laneStats } from '../../store/lanes/lane-stats.js';
import { requireSubmitter, submitterOf } from '../auth.js';
import { usableLanes } from '../../policy/admission.js';
import { ErrorBodySchema } from '../errors.js';

const LaneViewSchema = z.object({
  name: z.string(),
  trust: z.enum(['untrusted', 'trusted']),
  concurrency: z.number().int(),
  maxDeadlineSeconds: z.number().int(),
  retryLimit: z.number().int(),
  /** Whether the calling token may submit to it. */
  usable: z.boolean(),
  queued: z.number().int(),
  awaitingApproval: z.number().int(),
  running: z.number().int(),
  oldestWaitingSeconds: z.number().nullable(),
  dispatchLatency: z.object({ p50Seconds: z.number(), p95Seconds: z.number(), attempts: z.number().int() }).nullable(),
});

export const laneRoutes: FastifyPluginAsyncZod<{ sql: Sql; config: Config }> = async (app, { sql, config }) => {
  app.addHook('onRequest', requireSubmitter(sql));
  app.get(
    '/v1/lanes',
    {
      schema: {
        summary: 'Every lane with its trust, cap and what it holds now: depth, running, oldest wait, dispatch latency (last 15 minutes)',
        tags: ['lanes'],
        security: [{ bearer: [] }],
        response: { 200: z.object({ lanes: z.array(LaneViewSchema) }), 401: ErrorBodySchema },
      },
    },
    async (request) => {
      const usable = new Set(usableLanes(submitterOf(request), config.lanes));
      const stats = new Map(
        (
          await laneStats(
            sql,
            config.lanes.map((l) => l.name),
          )
        ).map((s) => [s.lane, s]),
      );
      return {
        lanes: config.lanes.map((lane) => {
          const s = stats.get(lane.name)!;
          return {
            name: lane.name,
            trust: lane.trust,
            concurrency: lane.concurrency,
            maxDeadlineSeconds: lane.maxDeadlineSeconds,
            retryLimit: lane.retryLimit,
            usable: usable.has(lane.name),
            queued: s.queued,
            awaitingApproval: s.awaitingApproval,
            running: s.running,
            oldestWaitingSeconds: s.oldestWaitingSeconds,
            dispatchLatency: s.dispatchLatency,
          };
        }),
      };
    },
  );
};
