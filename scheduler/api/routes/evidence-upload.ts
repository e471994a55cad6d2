import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import * as z from 'zod';
import { bearerToken, hashSecret } from '../../auth/secrets.js';
import { canonicalJson, sha256 } from '../../../contract/canonical-json.js';
import type { Sql } from '../../database/connect.js';
import { EvidenceSchema } from '../../../contract/evidence.js';
import { storeEvidence } from '../../store/evidence/store-evidence.js';
import { isKnownUploadCredential } from '../../store/evidence/upload-credentials.js';
import { ErrorBodySchema, sendError } from '../errors.js';

export const MAX_EVIDENCE_BYTES = 256 * 1024;

/**
 * The only way a result enters proofpod: the reporter's upload, with the per-attempt credential.
 * Storing evidence decides nothing yet; the holder's judge stage cross-checks it against what the
 * substrate observed.
 */
export const evidenceUploadRoutes: FastifyPluginAsyncZod<{ sql: Sql }> = async (app, { sql }) => {
  // Before the body is parsed or validated: without a credential ever minted, nothing about the body is answered.
  app.addHook('onRequest', async (request, reply) => {
    const credential = bearerToken(request.headers.authorization);
    if (!credential) return sendError(reply, 401, 'missing upload credential', [{ field: 'header.authorization', message: 'required' }]);
    if (!(await isKnownUploadCredential(sql, hashSecret(credential))))
      return sendError(reply, 401, 'unknown upload credential', [{ field: 'header.authorization', message: 'not an upload credential' }]);
  });
  app.post(
    '/v1/attempts/:attemptId/evidence',
    {
      bodyLimit: MAX_EVIDENCE_BYTES,
      schema: {
        summary: 'Upload the evidence of an attempt (reporter only, with its upload credential)',
        tags: ['evidence'],
        security: [{ bearer: [] }],
        params: z.strictObject({ attemptId: z.uuid('must be an attempt id (uuid)') }),
        body: EvidenceSchema,
        response: {
          202: z.object({ accepted: z.literal(true), digest: z.string() }),
          400: ErrorBodySchema,
          401: ErrorBodySchema,
          403: ErrorBodySchema,
          409: ErrorBodySchema,
          413: ErrorBodySchema,
          422: ErrorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const credential = bearerToken(request.headers.authorization);
      if (!credential) return sendError(reply, 401, 'missing upload credential', [{ field: 'header.authorization', message: 'required' }]);
      const digest = `sha256:${sha256(canonicalJson(request.body)).toString('hex')}`;
      const result = await storeEvidence(sql, {
        credentialHash: hashSecret(credential),
        attemptId: request.params.attemptId,
        claims: { jobId: request.body.jobId, attemptNo: request.body.attemptNo },
        body: request.body,
        digest,
      });
      const log = request.log.child({ attemptId: request.params.attemptId, jobId: request.body.jobId, attempt: request.body.attemptNo });
      switch (result.outcome) {
        case 'stored':
          log.info({ digest, outcome: request.body.outcome }, 'evidence accepted');
          return reply.code(202).send({ accepted: true, digest });
        case 'unknown_credential':
          log.warn('evidence upload with an unknown credential refused');
          return sendError(reply, 401, 'unknown upload credential');
        case 'other_attempt':
          log.warn('evidence upload with another attempt credential refused');
          return sendError(reply, 403, 'this credential belongs to another attempt');
        case 'expired':
          return sendError(reply, 403, 'upload credential expired with the attempt deadline');
        case 'revoked':
          return sendError(reply, 409, 'upload credential revoked: the attempt has ended');
        case 'used':
          return sendError(reply, 409, 'evidence for this attempt was uploaded already');
        case 'mismatch':
          return sendError(reply, 422, result.detail, [{ field: 'jobId', message: 'does not match the credential' }]);
      }
    },
  );
};
