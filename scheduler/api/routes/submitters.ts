import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import * as z from 'zod';
import type { Config } from '../../config.js';
import type { Sql } from '../../database/connect.js';
import {
  type AuditEntry,
  type SubmitterRecord,
  type TokenRecord,
  createSubmitter,
  getSubmitter,
  listAudit,
  listSubmitters,
  listTokens,
  mintToken,
  revokeToken,
  rotateToken,
  updateSubmitter,
} from '../../store/submitters/manage-submitters.js';
import { isAdmin, requireSubmitter, submitterOf } from '../auth.js';
import { ErrorBodySchema, sendError } from '../errors.js';

const security = [{ bearer: [] }];
const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema };

/** As the submitters table allows: the id a token's jobs are attributed to. */
const SubmitterId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/, 'letters, digits and . _ @ : - (at most 128), starting with a letter or digit');
const SubmitterParams = z.strictObject({ id: SubmitterId });
const TokenParams = z.strictObject({ tokenId: z.uuid('must be a token id (uuid)') });
const Quota = z.number().int().min(1).max(1_000_000).nullable();

const SubmitterViewSchema = z.object({
  id: z.string(),
  trust: z.enum(['untrusted', 'trusted']),
  lanes: z.array(z.string()),
  roles: z.array(z.string()),
  maxQueued: z.number().int().nullable(),
  maxRunning: z.number().int().nullable(),
  createdAt: z.string(),
  activeTokens: z.number().int(),
});
const TokenViewSchema = z.object({
  id: z.string(),
  submitter: z.string(),
  label: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});
const MintedTokenSchema = TokenViewSchema.extend({
  token: z.string().describe('The secret: shown in this answer only, never again'),
});
const AuditViewSchema = z.object({
  id: z.number().int(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  subject: z.string(),
  detail: z.record(z.string(), z.unknown()),
});

const submitterView = (s: SubmitterRecord) => ({ ...s, createdAt: s.createdAt.toISOString() });
const tokenView = (t: TokenRecord) => ({
  id: t.id,
  submitter: t.submitterId,
  label: t.label,
  createdAt: t.createdAt.toISOString(),
  revokedAt: t.revokedAt?.toISOString() ?? null,
});
const auditView = (e: AuditEntry) => ({ ...e, at: e.at.toISOString() });

/**
 * Submitters, their tokens and the audit log of both (docs/api.md, "Submitters and tokens"): for
 * admins only. Every change is written with its audit entry in one transaction; a token's secret
 * is in the answer that mints it and nowhere else.
 */
export const submitterRoutes: FastifyPluginAsyncZod<{ sql: Sql; config: Config }> = async (app, { sql, config }) => {
  app.addHook('onRequest', requireSubmitter(sql));
  // Before validation too: a non-admin learns nothing from a 400.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!isAdmin(submitterOf(request))) return sendError(reply, 403, 'managing submitters and tokens needs a token with the admin role');
  });

  const laneNames = config.lanes.map((l) => l.name);
  const Lanes = z
    .array(z.string().refine((l) => l === '*' || laneNames.includes(l), `must be "*" or a lane: ${laneNames.join(', ')}`))
    .min(1)
    .max(64);
  const Roles = z.array(z.enum(['admin', 'approver'])).max(2);

  const CreateBody = z.strictObject({
    id: SubmitterId,
    trust: z.enum(['untrusted', 'trusted']),
    lanes: Lanes,
    roles: Roles.default([]),
    maxQueued: Quota.default(null),
    maxRunning: Quota.default(null),
  });
  const UpdateBody = z
    .strictObject({ trust: z.enum(['untrusted', 'trusted']), lanes: Lanes, roles: Roles, maxQueued: Quota, maxRunning: Quota })
    .partial()
    .refine((b) => Object.keys(b).length > 0, 'name at least one field to change');

  app.post(
    '/v1/submitters',
    {
      schema: {
        summary: 'Create a submitter (admin)',
        tags: ['submitters'],
        security,
        body: CreateBody,
        response: { 201: SubmitterViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { id, ...fields } = request.body;
      const created = await createSubmitter(sql, submitterOf(request).id, id, fields);
      if (!created) return sendError(reply, 409, `submitter ${id} exists already`, [{ field: 'id', message: 'exists already' }]);
      request.log.info({ submitter: id, trust: fields.trust, lanes: fields.lanes, roles: fields.roles }, 'submitter created');
      return reply.code(201).header('location', `/v1/submitters/${id}`).send(submitterView(created));
    },
  );

  app.get(
    '/v1/submitters',
    {
      schema: {
        summary: 'List submitters (admin)',
        tags: ['submitters'],
        security,
        response: { 200: z.object({ submitters: z.array(SubmitterViewSchema) }), ...errors },
      },
    },
    async () => ({ submitters: (await listSubmitters(sql)).map(submitterView) }),
  );

  app.get(
    '/v1/submitters/:id',
    {
      schema: {
        summary: 'Get a submitter (admin)',
        tags: ['submitters'],
        security,
        params: SubmitterParams,
        response: { 200: SubmitterViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const found = await getSubmitter(sql, request.params.id);
      return found ? submitterView(found) : sendError(reply, 404, `no submitter ${request.params.id}`);
    },
  );

  app.patch(
    '/v1/submitters/:id',
    {
      schema: {
        summary: 'Change a submitter: trust, lanes, roles, quotas (admin)',
        tags: ['submitters'],
        security,
        params: SubmitterParams,
        body: UpdateBody,
        response: { 200: SubmitterViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const change = request.body;
      const updated = await updateSubmitter(sql, submitterOf(request).id, request.params.id, change);
      if (!updated) return sendError(reply, 404, `no submitter ${request.params.id}`);
      request.log.info({ submitter: updated.id, changed: Object.keys(change) }, 'submitter updated');
      return submitterView(updated);
    },
  );

  app.post(
    '/v1/submitters/:id/tokens',
    {
      schema: {
        summary: 'Mint a token for a submitter (admin); the secret is in this answer only',
        tags: ['submitters'],
        security,
        params: SubmitterParams,
        body: z.strictObject({ label: z.string().max(200).default('') }).default({ label: '' }),
        response: { 201: MintedTokenSchema, ...errors },
      },
    },
    async (request, reply) => {
      const minted = await mintToken(sql, submitterOf(request).id, request.params.id, request.body.label);
      if (!minted) return sendError(reply, 404, `no submitter ${request.params.id}`);
      request.log.info({ submitter: request.params.id, tokenId: minted.record.id }, 'token created');
      return reply.code(201).send({ ...tokenView(minted.record), token: minted.token });
    },
  );

  app.get(
    '/v1/submitters/:id/tokens',
    {
      schema: {
        summary: "A submitter's tokens, revoked ones included, without their secrets (admin)",
        tags: ['submitters'],
        security,
        params: SubmitterParams,
        response: { 200: z.object({ tokens: z.array(TokenViewSchema) }), ...errors },
      },
    },
    async (request, reply) => {
      if (!(await getSubmitter(sql, request.params.id))) return sendError(reply, 404, `no submitter ${request.params.id}`);
      return { tokens: (await listTokens(sql, request.params.id)).map(tokenView) };
    },
  );

  const refusal = (reply: FastifyReply, tokenId: string, outcome: 'unknown' | 'revoked' | 'last_admin', at?: Date) =>
    outcome === 'unknown'
      ? sendError(reply, 404, `no token ${tokenId}`)
      : outcome === 'revoked'
        ? sendError(reply, 409, `token ${tokenId} was revoked at ${at?.toISOString()}`)
        : sendError(reply, 409, `token ${tokenId} is the last token with the admin role: mint another admin token first`);

  app.post(
    '/v1/tokens/:tokenId/rotate',
    {
      schema: {
        summary: 'Replace a token by a new one with the same submitter and label (admin); the old one is revoked at once',
        tags: ['submitters'],
        security,
        params: TokenParams,
        response: { 201: MintedTokenSchema, ...errors },
      },
    },
    async (request, reply) => {
      const result = await rotateToken(sql, submitterOf(request).id, request.params.tokenId);
      if (result.outcome !== 'done')
        return refusal(reply, request.params.tokenId, result.outcome, result.outcome === 'revoked' ? result.at : undefined);
      request.log.info({ tokenId: request.params.tokenId, newTokenId: result.value.record.id }, 'token rotated');
      return reply.code(201).send({ ...tokenView(result.value.record), token: result.value.token });
    },
  );

  app.post(
    '/v1/tokens/:tokenId/revoke',
    {
      schema: {
        summary: 'Revoke a token (admin): it answers 401 from then on',
        tags: ['submitters'],
        security,
        params: TokenParams,
        response: { 200: TokenViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const result = await revokeToken(sql, submitterOf(request).id, request.params.tokenId);
      if (result.outcome !== 'done')
        return refusal(reply, request.params.tokenId, result.outcome, result.outcome === 'revoked' ? result.at : undefined);
      request.log.info({ tokenId: request.params.tokenId }, 'token revoked');
      return tokenView(result.value);
    },
  );

  app.get(
    '/v1/audit',
    {
      schema: {
        summary: 'The audit log of submitter and token changes, newest first (admin)',
        tags: ['submitters'],
        security,
        querystring: z.strictObject({
          limit: z.coerce.number().int().min(1).max(500).default(100),
          before: z.coerce.number().int().min(1).optional().describe('Entries before this id (the last id of the previous page)'),
        }),
        response: { 200: z.object({ entries: z.array(AuditViewSchema) }), ...errors },
      },
    },
    async (request) => ({ entries: (await listAudit(sql, { limit: request.query.limit, beforeId: request.query.before })).map(auditView) }),
  );
};
