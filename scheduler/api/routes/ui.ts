import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { projectRoot } from '../../substrate/create.js';
import { sendError } from '../errors.js';

/**
 * The dashboard's static files (docs/operations.md, "Dashboard"), built by `npm run build:ui` into
 * dist/ui. They are public: the page shows nothing of the estate until the user signs in with a
 * token, and every datum comes from the REST API with that token. A fixed list of files, no path
 * taken from the request, so nothing else on disk can be reached through /ui.
 */
const files: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/**
 * No inline script or style can run, nothing loads from elsewhere, and the page cannot be framed:
 * API strings are rendered as text, and this is the second line should one ever not be.
 */
export const dashboardCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const uiRoutes: FastifyPluginAsync<{ directory?: string }> = async (app, options) => {
  const directory = options.directory ?? path.join(projectRoot(), 'dist', 'ui');
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', dashboardCsp);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cache-control', 'no-cache');
  });
  for (const [url, { file, type }] of Object.entries(files)) {
    app.get(url, { schema: { hide: true } }, async (_request, reply) => {
      let body: Buffer;
      try {
        body = await readFile(path.join(directory, file));
      } catch {
        return sendError(reply, 404, `the dashboard is not built: ${path.join(directory, file)} is missing (npm run build)`);
      }
      return reply.type(type).send(body);
    });
  }
  app.get('/ui/*', { schema: { hide: true } }, async (request, reply) => sendError(reply, 404, `no dashboard file ${request.url}`));
};
