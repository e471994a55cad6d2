import type { FastifyReply, FastifyRequest } from 'fastify';
import { notText } from '../../contract/text.js';
import { sendError } from './errors.js';

/** The path of the first key or string value under `value` that is not text, or undefined. */
export function firstNonText(value: unknown, at: string[] = []): string[] | undefined {
  if (typeof value === 'string') return notText.test(value) ? at : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = firstNonText(item, [...at, String(i)]);
      if (found) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (notText.test(key)) return [...at, key.replace(notText, '\uFFFD')];
      const found = firstNonText(item, [...at, key]);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * preValidation hook of every route: a NUL or a lone surrogate anywhere in the path parameters,
 * the query or the body is a 400 naming where, before any schema or handler (which would pass it
 * on to Postgres: "invalid byte sequence 0x00"). It runs after authentication (onRequest).
 */
export async function refuseNonText(request: FastifyRequest, reply: FastifyReply) {
  for (const [part, prefix] of [
    [request.params, 'params'],
    [request.query, 'querystring'],
    [request.body, ''],
  ] as const) {
    const found = firstNonText(part);
    if (!found) continue;
    const field = [prefix, ...found].filter(Boolean).join('.') || 'body';
    const message = 'must be text: no NUL character and no unpaired UTF-16 surrogate';
    return sendError(reply, 400, `invalid request: ${field}: ${message}`, [{ field, message }]);
  }
}
