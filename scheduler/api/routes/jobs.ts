import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import * as z from 'zod';
import { canonicalJson, sha256 } from '../../../contract/canonical-json.js';
import type { Config } from '../../config.js';
import type { Sql } from '../../database/connect.js';
import type { Metrics } from '../../metrics.js';
import { approveJob } from '../../store/jobs/approve-job.js';
import { cancelJob } from '../../store/jobs/cancel-job.js';
import { getAttempts, getEvents, getJob } from '../../store/jobs/get-job.js';
import { listJobs } from '../../store/jobs/list-jobs.js';
import { getEvidence } from '../../store/evidence/get-evidence.js';
import { getAttestation } from '../../store/attestations/attestations.js';
import { EnvelopeSchema } from '../../attestation/dsse.js';
import { SigstoreBundleSchema, sigstoreBundle } from '../../attestation/sigstore-bundle.js';
import { submitJob } from '../../store/jobs/submit-job.js';
import type { JobRow } from '../../store/rows.js';
import type { Substrate } from '../../substrate/substrate.js';
import { quotaFor } from '../../lanes.js';
import { isAdmin, isApprover, requireSubmitter, submitterOf } from '../auth.js';
import { admissionRefusal } from '../../policy/admission.js';
import { ErrorBodySchema, sendError } from '../errors.js';
import {
  EventViewSchema,
  JobIdParams,
  JobListSchema,
  GetJobQuery,
  JobViewSchema,
  LogsQuery,
  ListJobsQuery,
  decodeCursor,
  encodeCursor,
  submitJobBody,
} from '../job-schemas.js';
import { toEventView, toJobView } from '../views.js';
import { recordAttemptEnded, recordJobEnded } from '../../replica/finish-attempt.js';
import { isFinalJobState } from '../../job-states.js';
import { JobChangeWaits } from '../job-change-waits.js';
import { keptLog } from '../../store/attempts/attempt-logs.js';
import { KEPT_LOG_BYTES } from '../../replica/keep-logs.js';

export interface JobRoutesDeps {
  sql: Sql;
  config: Config;
  metrics: Metrics;
  substrate?: Substrate;
}

const security = [{ bearer: [] }];
const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema };

export const jobRoutes: FastifyPluginAsyncZod<JobRoutesDeps> = async (app, { sql, config, metrics, substrate }) => {
  app.addHook('onRequest', requireSubmitter(sql));
  const waits = new JobChangeWaits(sql);
  // Before the server stops taking connections: a waiting request answers now instead of holding the close.
  app.addHook('preClose', () => waits.close());
  const body = submitJobBody(
    config.provers.map((p) => p.name),
    config.lanes.map((l) => l.name),
  );

  /**
   * A job the caller may see: its own, or any for an admin, or any for an approver (who reviews
   * jobs of others before promoting them) unless `action` says it is about to change it. Others
   * answer 404, not 403.
   */
  const visibleJob = async (id: string, submitter: ReturnType<typeof submitterOf>, action = false): Promise<JobRow | undefined> => {
    const job = await getJob(sql, id);
    return job && (isAdmin(submitter) || (!action && isApprover(submitter)) || job.submitterId === submitter.id) ? job : undefined;
  };

  app.post(
    '/v1/jobs',
    {
      schema: {
        summary: 'Submit a verification job',
        tags: ['jobs'],
        security,
        body,
        response: { 200: JobViewSchema, 201: JobViewSchema, ...errors, 409: ErrorBodySchema, 413: ErrorBodySchema, 429: ErrorBodySchema },
      },
    },
    async (request, reply) => {
      const submitter = submitterOf(request);
      const input = request.body;
      const profile = config.provers.find((p) => p.name === input.prover);
      const refusal = admissionRefusal(input, {
        submitter,
        lanes: config.lanes,
        profile,
        substrateKind: substrate?.kind,
        promotion: config.promotion,
      });
      if (refusal) return sendError(reply, refusal.status, refusal.message, [{ field: refusal.field, message: refusal.fieldMessage }]);
      const { idempotencyKey, ...request_ } = input;
      const configured = quotaFor(config.quotas, submitter.id);
      const quota = { ...configured, maxQueued: submitter.maxQueued ?? configured.maxQueued };
      const result = await submitJob(
        sql,
        {
          submitterId: submitter.id,
          sourceUrl: input.source.url,
          commitSha: input.source.commit,
          subdirectory: input.source.subdirectory ?? null,
          prover: input.prover,
          targets: input.targets,
          goals: input.goals,
          lane: input.lane,
          priority: input.priority,
          labels: input.labels,
          idempotencyKey: idempotencyKey ?? null,
          requestHash: sha256(canonicalJson(request_)),
          promoteTo: input.promoteTo ?? null,
          concurrency: input.concurrency ?? null,
        },
        quota,
      );
      switch (result.outcome) {
        case 'quota':
          return sendError(
            reply.header('retry-after', String(config.quotas.retryAfterSeconds)),
            429,
            `submitter ${submitter.id} has ${result.waiting} jobs waiting, its quota is ${quota.maxQueued}: try again when some have been dispatched`,
            [{ field: 'submitter', message: `quota of ${quota.maxQueued} waiting jobs reached` }],
          );
        case 'created':
          metrics.submitted.inc({ lane: input.lane, prover: input.prover });
          request.log.info(
            { jobId: result.job.id, lane: input.lane, prover: input.prover, superseded: result.superseded },
            'job submitted',
          );
          for (const ended of result.endedWaiting) recordJobEnded(metrics, ended, 'cancelled');
          for (const stopped of result.stopAttempts) {
            recordAttemptEnded(metrics, request.log, stopped, 'cancelled', stopped.reason);
            // Best effort, as for a cancel: the reaper deletes what this does not.
            await substrate
              ?.stop(stopped.name)
              .catch((error: unknown) =>
                request.log.warn({ err: error, name: stopped.name }, 'stopping a superseded attempt failed; the reaper will retry'),
              );
          }
          return reply.code(201).header('location', `/v1/jobs/${result.job.id}`).send(toJobView(result.job));
        case 'existing':
          return reply.code(200).header('location', `/v1/jobs/${result.job.id}`).send(toJobView(result.job));
        case 'conflict':
          return sendError(reply, 409, `idempotency key ${idempotencyKey} was used for job ${result.job.id} with a different request`, [
            { field: 'idempotencyKey', message: 'already used with a different request' },
          ]);
      }
    },
  );

  app.get(
    '/v1/jobs/:id',
    {
      schema: {
        summary: 'Get a job with its attempts',
        tags: ['jobs'],
        security,
        params: JobIdParams,
        querystring: GetJobQuery,
        response: { 200: JobViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { waitSeconds, whileState } = request.query;
      const deadline = Date.now() + waitSeconds * 1000;
      // Registered before the job is read: a change between the read and the wait still wakes it.
      let wait = waitSeconds > 0 ? await waits.next(request.params.id, waitSeconds * 1000) : undefined;
      try {
        let job = await visibleJob(request.params.id, submitterOf(request));
        if (!job) return sendError(reply, 404, `no job ${request.params.id}`);
        const waitedFor = whileState ?? job.state;
        while (wait && !isFinalJobState(job.state) && job.state === waitedFor && (await wait.changed)) {
          wait = await waits.next(job.id, deadline - Date.now());
          job = (await getJob(sql, job.id)) ?? job;
        }
        if (waits.closing) reply.header('connection', 'close');
        return toJobView(job, await getAttempts(sql, job.id));
      } finally {
        wait?.cancel();
      }
    },
  );

  app.get(
    '/v1/jobs',
    {
      schema: {
        summary: 'List jobs, newest first',
        tags: ['jobs'],
        security,
        querystring: ListJobsQuery,
        response: { 200: JobListSchema, ...errors },
      },
    },
    async (request, reply) => {
      const submitter = submitterOf(request);
      const query = request.query;
      const beforeSeq = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      if (query.cursor !== undefined && beforeSeq === undefined) {
        return sendError(reply, 400, 'cursor is not one this API returned', [{ field: 'querystring.cursor', message: 'invalid cursor' }]);
      }
      const labels = Object.fromEntries(
        (query.label ?? []).map((pair) => {
          const at = pair.indexOf('=');
          return [pair.slice(0, at), pair.slice(at + 1)];
        }),
      );
      const page = await listJobs(sql, {
        states: query.state,
        lane: query.lane,
        prover: query.prover,
        labels,
        submitterId: isApprover(submitter) ? undefined : submitter.id,
        beforeSeq,
        limit: query.limit,
      });
      return {
        jobs: page.jobs.map((job) => toJobView(job)),
        nextCursor: page.nextSeq === undefined ? null : encodeCursor(page.nextSeq),
      };
    },
  );

  app.post(
    '/v1/jobs/:id/cancel',
    {
      schema: {
        summary: 'Cancel a job; an attempt in flight is stopped',
        tags: ['jobs'],
        security,
        params: JobIdParams,
        body: z.strictObject({ reason: z.string().max(500).optional() }).nullish(),
        response: { 200: JobViewSchema, ...errors, 409: ErrorBodySchema },
      },
    },
    async (request, reply) => {
      const submitter = submitterOf(request);
      const job = await visibleJob(request.params.id, submitter, true);
      if (!job) return sendError(reply, 404, `no job ${request.params.id}`);
      const reason = `cancelled by ${submitter.id}${request.body?.reason ? `: ${request.body.reason}` : ''}`;
      const result = await cancelJob(sql, job.id, submitter.id, reason);
      if (result.outcome === 'not_found') return sendError(reply, 404, `no job ${job.id}`);
      if (result.outcome === 'final') {
        return sendError(reply, 409, `job ${job.id} already ended in state ${result.job.state}`);
      }
      const stopped = result.stopAttempt;
      if (stopped) recordAttemptEnded(metrics, request.log.child({ jobId: job.id }), stopped, 'cancelled', stopped.reason);
      else recordJobEnded(metrics, result.job, 'cancelled');
      if (stopped && substrate) {
        // Best effort: should this fail, the reaper deletes the orphan on its next sweep.
        await substrate.stop(stopped.name).catch((error: unknown) => {
          request.log.warn(
            { err: error, jobId: job.id, name: stopped.name },
            'stopping the cancelled attempt failed; the reaper will retry',
          );
        });
      }
      return toJobView(result.job, await getAttempts(sql, job.id));
    },
  );

  app.post(
    '/v1/jobs/:id/approve',
    {
      schema: {
        summary: 'Approve a job that passed intake to run in the trusted lane it asked for (approver role)',
        tags: ['jobs'],
        security,
        params: JobIdParams,
        body: z.strictObject({ note: z.string().max(500).optional() }).nullish(),
        response: { 200: JobViewSchema, ...errors, 409: ErrorBodySchema },
      },
    },
    async (request, reply) => {
      const submitter = submitterOf(request);
      if (!isApprover(submitter)) {
        return sendError(reply, 403, `approving needs the approver role; ${submitter.id} has ${submitter.roles.join(', ') || 'no roles'}`, [
          { field: 'header.authorization', message: 'token without the approver role' },
        ]);
      }
      const result = await approveJob(sql, request.params.id, submitter.id, request.body?.note);
      if (result.outcome === 'not_found') return sendError(reply, 404, `no job ${request.params.id}`);
      if (result.outcome === 'own_job') {
        return sendError(reply, 403, `${submitter.id} submitted job ${result.job.id}: nobody approves their own job`, [
          { field: 'header.authorization', message: "the job's own submitter" },
        ]);
      }
      if (result.outcome === 'not_waiting') {
        return sendError(reply, 409, `job ${result.job.id} is ${result.job.state}, not awaiting approval`);
      }
      request.log.info({ jobId: result.job.id, lane: result.job.lane, approver: submitter.id }, 'job approved');
      return toJobView(result.job);
    },
  );

  app.get(
    '/v1/jobs/:id/evidence',
    {
      schema: {
        summary: 'Evidence uploaded for each attempt of a job',
        tags: ['jobs'],
        security,
        params: JobIdParams,
        response: {
          200: z.object({
            jobId: z.uuid(),
            evidence: z.array(z.object({ attemptNo: z.number().int(), digest: z.string(), receivedAt: z.string(), body: z.unknown() })),
          }),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const job = await visibleJob(request.params.id, submitterOf(request));
      if (!job) return sendError(reply, 404, `no job ${request.params.id}`);
      const records = await getEvidence(sql, job.id);
      return {
        jobId: job.id,
        evidence: records.map((r) => ({ attemptNo: r.attemptNo, digest: r.digest, receivedAt: r.receivedAt.toISOString(), body: r.body })),
      };
    },
  );

  app.get(
    '/v1/jobs/:id/attestation',
    {
      schema: {
        summary: "The job's signed verdict: a DSSE envelope of an in-toto Statement (verified and rejected jobs only)",
        description:
          'Verify it offline with `proofpod verify --key KEY.pem --commit SHA FILE` or `cosign verify-blob-attestation`; the keys are listed at /.well-known/proofpod/attestation-keys.',
        tags: ['jobs'],
        security,
        params: JobIdParams,
        querystring: z.strictObject({
          format: z
            .enum(['envelope', 'bundle'])
            .default('envelope')
            .describe('`bundle`: a Sigstore bundle carrying the envelope, the form cosign checks a git commit subject in'),
        }),
        response: { 200: z.union([EnvelopeSchema, SigstoreBundleSchema]), ...errors },
      },
    },
    async (request, reply) => {
      const job = await visibleJob(request.params.id, submitterOf(request));
      if (!job) return sendError(reply, 404, `no job ${request.params.id}`);
      const attestation = await getAttestation(sql, job.id);
      if (!attestation) {
        const why = isFinalJobState(job.state) ? `it ended ${job.state}` : `it is ${job.state}`;
        return sendError(reply, 404, `job ${job.id} has no attestation: ${why}, and only verified and rejected verdicts are signed`);
      }
      return request.query.format === 'bundle' ? sigstoreBundle(attestation.envelope, attestation.keyid) : attestation.envelope;
    },
  );

  app.get(
    '/v1/jobs/:id/events',
    {
      schema: {
        summary: 'Every state change of a job and its attempts: who, when, from, to, why',
        tags: ['jobs'],
        security,
        params: JobIdParams,
        response: { 200: z.object({ jobId: z.uuid(), events: z.array(EventViewSchema) }), ...errors },
      },
    },
    async (request, reply) => {
      const job = await visibleJob(request.params.id, submitterOf(request));
      if (!job) return sendError(reply, 404, `no job ${request.params.id}`);
      return { jobId: job.id, events: (await getEvents(sql, job.id)).map(toEventView) };
    },
  );

  app.get(
    '/v1/jobs/:id/logs',
    {
      schema: {
        summary:
          "One container's log of an attempt, as text: kept once the pod ended, live while it runs; follow=true streams it to the attempt's end",
        tags: ['jobs'],
        security,
        params: JobIdParams,
        querystring: LogsQuery,
        produces: ['text/plain'],
        response: { 200: z.string(), ...errors },
      },
    },
    async (request, reply) => {
      const job = await visibleJob(request.params.id, submitterOf(request));
      if (!job) return sendError(reply, 404, `no job ${request.params.id}`);
      const { container, follow } = request.query;
      const attempts = await getAttempts(sql, job.id);
      const attempt = request.query.attempt === undefined ? attempts.at(-1) : attempts.find((a) => a.attemptNo === request.query.attempt);
      if (!attempt)
        return sendError(
          reply,
          404,
          `job ${job.id} has no attempt${request.query.attempt === undefined ? '' : ` ${request.query.attempt}`}`,
        );
      const inFlight = (state: string) => state === 'dispatching' || state === 'running';
      const read = async (attemptState: string) =>
        (await keptLog(sql, attempt.id, container)) ??
        (inFlight(attemptState) ? await substrate?.readLog?.(attempt.name, container, KEPT_LOG_BYTES) : undefined);
      // Proof code writes these logs: text for the client to show as text, never to render.
      // Set only on the text answers: an error keeps its JSON.
      const asText = () =>
        reply
          .header('x-content-type-options', 'nosniff')
          .header('x-proofpod-attempt', String(attempt.attemptNo))
          .type('text/plain; charset=utf-8');
      if (!follow) {
        const log = await read(attempt.state);
        if (!log)
          return sendError(reply, 404, `no log of container ${container} for attempt ${attempt.attemptNo} (not started, or not kept)`);
        asText();
        const digest = 'digest' in log ? log.digest : undefined;
        if (digest) reply.header('x-proofpod-log-digest', digest);
        // A Buffer or a stream goes out as it is (fastify serializes neither); the schema documents text.
        return reply.header('x-proofpod-log-truncated', String(log.truncated)).send(log.content as unknown as string);
      }
      // Streams what is new every half second, or at once when the job changes, until the attempt has ended.
      const stream = async function* () {
        let sent = 0;
        for (;;) {
          const wait = await waits.next(job.id, 500);
          const [now] = (await getAttempts(sql, job.id)).filter((a) => a.id === attempt.id);
          const ended = !now || !inFlight(now.state);
          const log = await read(now?.state ?? 'failed');
          if (log && log.content.length > sent) {
            yield log.content.subarray(sent);
            sent = log.content.length;
          }
          if (ended || waits.closing) {
            wait.cancel();
            if (log?.truncated) yield `\n[the log goes on past ${KEPT_LOG_BYTES} bytes; only those are kept and streamed]\n`;
            return;
          }
          await wait.changed;
        }
      };
      asText();
      return reply.send(Readable.from(stream()) as unknown as string);
    },
  );
};
