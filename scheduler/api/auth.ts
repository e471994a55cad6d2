import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken } from '../auth/secrets.js';
import type { Sql } from '../database/connect.js';
import { type Submitter, authenticateToken } from '../store/submitters/submitters.js';
import { sendError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    submitter?: Submitter;
  }
}

/**
 * onRequest hook for submitter routes: no valid bearer token, no access. It runs before the body is
 * parsed or anything is validated, so a caller without a token learns nothing about the API (not
 * even the names of its provers and lanes) from a 400.
 */
export function requireSubmitter(sql: Sql) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const token = bearerToken(request.headers.authorization);
    if (!token) {
      return sendError(reply, 401, 'missing bearer token: send Authorization: Bearer <token>', [
        { field: 'header.authorization', message: 'required' },
      ]);
    }
    const submitter = await authenticateToken(sql, token);
    if (!submitter) {
      return sendError(reply, 401, 'unknown or revoked token', [{ field: 'header.authorization', message: 'not a valid token' }]);
    }
    request.submitter = submitter;
  };
}

export function mayUseLane(submitter: Submitter, lane: string): boolean {
  return submitter.lanes.includes('*') || submitter.lanes.includes(lane);
}

/** Approvers promote intake-passed jobs to trusted lanes; admins may too. */
export function isApprover(submitter: Submitter): boolean {
  return submitter.roles.includes('approver') || isAdmin(submitter);
}

export function isAdmin(submitter: Submitter): boolean {
  return submitter.roles.includes('admin');
}

/** The submitter set by requireSubmitter; a route without that hook is a programming error. */
export function submitterOf(request: FastifyRequest): Submitter {
  if (!request.submitter) throw new Error('route is missing the requireSubmitter hook');
  return request.submitter;
}
