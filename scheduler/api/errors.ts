import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import * as z from 'zod';
import { PgCode } from '../errors.js';

/** The body of every 4xx/5xx answer: `fields` names what was wrong, where a field was. */
export const ErrorBodySchema = z.object({
  statusCode: z.number().int(),
  error: z.string(),
  message: z.string(),
  fields: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

const reasons: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function errorBody(statusCode: number, message: string, fields?: ErrorBody['fields']): ErrorBody {
  return { statusCode, error: reasons[statusCode] ?? 'Error', message, ...(fields ? { fields } : {}) };
}

export function sendError(reply: FastifyReply, statusCode: number, message: string, fields?: ErrorBody['fields']) {
  return reply.code(statusCode).send(errorBody(statusCode, message, fields));
}

/** Turns request validation issues into `{ field, message }`, with the field as a dotted path. */
export function validationFields(
  error: Omit<FastifyError, 'validation'> & {
    validation: { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> }[];
  },
  context: string | undefined,
): NonNullable<ErrorBody['fields']> {
  return error.validation.flatMap((issue) => {
    const base = issue.instancePath.split('/').filter(Boolean).join('.');
    const prefix = context && context !== 'body' ? `${context}.` : '';
    if (issue.keyword === 'unrecognized_keys' && Array.isArray(issue.params.keys)) {
      return issue.params.keys.map((key) => ({
        field: `${prefix}${base ? `${base}.` : ''}${String(key)}`,
        message: 'unknown field',
      }));
    }
    return [{ field: `${prefix}${base}` || context || 'body', message: issue.message ?? 'invalid' }];
  });
}

/**
 * Codes of an error that says the database is out of reach or going down (a restart, a failover):
 * the connection refused, reset or lost (node's and postgres.js's codes), SQLSTATE class 08 and the
 * shutdown codes of class 57P. Such a request may well succeed in a moment.
 */
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  PgCode.adminShutdown,
  PgCode.crashShutdown,
  PgCode.cannotConnectNow,
]);
const databaseUnavailable = (code: unknown) => typeof code === 'string' && (unavailableCodes.has(code) || /^08[0-9A-Z]{3}$/.test(code));
/** Seconds a client is asked to wait before it tries again while the database is unavailable. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const fields = validationFields(error, error.validationContext);
    const summary = fields.map((f) => `${f.field}: ${f.message}`).join('; ');
    return sendError(reply, 400, `invalid request: ${summary}`, fields);
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendError(reply, 413, `request body is larger than the limit of ${request.routeOptions.bodyLimit ?? 'the server'} bytes`);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return sendError(reply, 400, `body is not valid JSON: ${error.message}`, [{ field: 'body', message: 'not valid JSON' }]);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendError(reply, 415, 'send the body as application/json');
  }
  if (error instanceof SyntaxError) {
    return sendError(reply, 400, `body is not valid JSON: ${error.message}`, [{ field: 'body', message: 'not valid JSON' }]);
  }
  // Postgres refusing a value (class 22, data exception: a character it cannot store, a number out
  // of range, …) is bad input that got past the schemas: a 400, never a 500.
  const sqlState = (error as { code?: unknown }).code;
  if (typeof sqlState === 'string' && /^22[0-9A-Z]{3}$/.test(sqlState)) {
    request.log.warn({ err: error }, 'the database refused a value of the request');
    return sendError(reply, 400, `invalid request: the database refused a value (${(error as Error).message})`);
  }
  // The database out of reach is no bug of ours: a 503 the client may retry (a submission with its
  // idempotency key, so that a retry is never a second job), not a 500. /readyz says so too.
  if (databaseUnavailable(sqlState)) {
    request.log.warn({ err: error }, 'the database is unavailable');
    return sendError(
      reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_SECONDS)),
      503,
      `the database is unavailable (${String(sqlState)}): try again in a few seconds`,
    );
  }
  const status = error.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err: error }, 'request failed');
    return sendError(reply, status, 'internal error; the scheduler log has the details');
  }
  return sendError(reply, status, error.message);
}
