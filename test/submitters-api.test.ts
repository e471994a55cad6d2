import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { main as cli } from '../scheduler/cli/main.js';
import { createTestDatabase, createToken } from './support/database.js';
import { call, jobRequest, startInstance } from './support/instance.js';

const db = await createTestDatabase();
let proofpod: Proofpod;
let admin: string;
let alice: string;

beforeAll(async () => {
  proofpod = await startInstance(db.url);
  admin = await createToken(db.sql, { id: 'ops', roles: ['admin'] });
  alice = await createToken(db.sql, { id: 'alice' });
});
afterAll(() => proofpod.stop());

/** Runs the CLI as the admin (or `token`), returning its exit code and what it printed. */
async function proofpodCli(args: string[], token = admin): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await cli(args, { PROOFPOD_URL: proofpod.url, PROOFPOD_TOKEN: token }, (s) => {
    out += s;
  });
  return { code, out };
}

const asJson = <T>(text: string) => JSON.parse(text) as T;
const statusWith = async (token: string) => (await call(proofpod.url, 'GET', '/v1/jobs?limit=1', { token })).status;

describe('submitters and tokens through the CLI', () => {
  it('creates an untrusted submitter and a token, submits with it, rotates it (old one 401), revokes it; all audited', async () => {
    const created = await proofpodCli([
      'submitters',
      'create',
      'fork-bot',
      '--trust',
      'untrusted',
      '--lanes',
      'intake',
      '--max-queued',
      '1',
    ]);
    expect(created.code).toBe(0);
    expect(asJson(created.out)).toMatchObject({
      id: 'fork-bot',
      trust: 'untrusted',
      lanes: ['intake'],
      roles: [],
      maxQueued: 1,
      activeTokens: 0,
    });

    const minted = asJson<{ id: string; token: string; label: string }>(
      (await proofpodCli(['tokens', 'create', 'fork-bot', '--label', 'ci'])).out,
    );
    expect(minted.label).toBe('ci');
    expect(minted.token).toMatch(/^pp_/);

    // The token works, within its submitter's lanes and its quota set over the API.
    const submitted = await call(proofpod.url, 'POST', '/v1/jobs', { token: minted.token, body: jobRequest({ lane: 'intake' }) });
    expect(submitted.status).toBe(201);
    expect(submitted.body.submitter).toBe('fork-bot');
    expect((await call(proofpod.url, 'POST', '/v1/jobs', { token: minted.token, body: jobRequest({ lane: 'verify' }) })).status).toBe(403);
    expect((await call(proofpod.url, 'POST', '/v1/jobs', { token: minted.token, body: jobRequest({ lane: 'intake' }) })).status).toBe(429);

    const rotated = asJson<{ id: string; token: string; label: string }>((await proofpodCli(['tokens', 'rotate', minted.id])).out);
    expect(rotated.id).not.toBe(minted.id);
    expect(rotated.label).toBe('ci');
    expect(await statusWith(minted.token)).toBe(401);
    expect(await statusWith(rotated.token)).toBe(200);

    const listed = asJson<{ tokens: { id: string; revokedAt: string | null }[] }>((await proofpodCli(['tokens', 'list', 'fork-bot'])).out);
    expect(listed.tokens.map((t) => [t.id, t.revokedAt !== null])).toEqual([
      [minted.id, true],
      [rotated.id, false],
    ]);
    expect(JSON.stringify(listed)).not.toContain(rotated.token);

    expect((await proofpodCli(['tokens', 'revoke', rotated.id])).code).toBe(0);
    expect(await statusWith(rotated.token)).toBe(401);

    const audit = await proofpodCli(['audit']);
    expect(audit.code).toBe(0);
    const { entries } = (await call(proofpod.url, 'GET', '/v1/audit', { token: admin })).body as {
      entries: { actor: string; action: string; subject: string; detail: Record<string, unknown> }[];
    };
    const steps = entries.reverse().map((e) => [e.actor, e.action, e.subject]);
    expect(steps).toEqual([
      ['ops', 'submitter.created', 'fork-bot'],
      ['ops', 'token.created', minted.id],
      ['ops', 'token.rotated', minted.id],
      ['ops', 'token.revoked', rotated.id],
    ]);
    for (const [, action, subject] of steps) expect(audit.out).toContain(`${String(action).padEnd(18)} ${subject}`);
    // No secret anywhere in the log.
    for (const secret of [minted.token, rotated.token]) expect(JSON.stringify(entries)).not.toContain(secret);
  });

  it('changes a submitter, and the audit entry says what was before and after', async () => {
    await proofpodCli(['submitters', 'create', 'reviewer', '--trust', 'trusted', '--lanes', 'verify']);
    const updated = await proofpodCli(['submitters', 'update', 'reviewer', '--roles', 'approver', '--lanes', 'verify,audit']);
    expect(asJson(updated.out)).toMatchObject({ id: 'reviewer', roles: ['approver'], lanes: ['verify', 'audit'] });
    const { entries } = (await call(proofpod.url, 'GET', '/v1/audit?limit=1', { token: admin })).body;
    expect(entries[0]).toMatchObject({
      action: 'submitter.updated',
      subject: 'reviewer',
      detail: { before: { roles: [], lanes: ['verify'] }, after: { roles: ['approver'], lanes: ['verify', 'audit'] } },
    });
  });
});

describe('who may manage submitters, and what is refused', () => {
  it('a non-admin gets 403 before anything is validated, and no token at all gets 401', async () => {
    for (const [method, path, body] of [
      ['POST', '/v1/submitters', { id: 'x', trust: 'bogus' }],
      ['GET', '/v1/submitters', undefined],
      ['POST', '/v1/submitters/alice/tokens', { label: 'mine now' }],
      ['POST', '/v1/tokens/not-a-uuid/revoke', undefined],
      ['GET', '/v1/audit?limit=9999', undefined],
    ] as const) {
      expect((await call(proofpod.url, method, path, { token: alice, body })).status, `${method} ${path}`).toBe(403);
      expect((await call(proofpod.url, method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
    const cliRefused = await proofpodCli(['submitters', 'list'], alice).catch((error: Error) => error.message);
    expect(cliRefused).toContain('403');
  });

  it('refuses unknown lanes and roles and an id twice, naming the field; trusted lanes of an untrusted one are promotions only', async () => {
    const post = (body: Record<string, unknown>) => call(proofpod.url, 'POST', '/v1/submitters', { token: admin, body });
    const base = { id: 'new-one', trust: 'untrusted', lanes: ['intake'] };
    for (const [body, field] of [
      [{ ...base, lanes: ['express'] }, 'lanes.0'],
      [{ ...base, roles: ['root'] }, 'roles.0'],
      [{ ...base, id: '../etc' }, 'id'],
      [{ ...base, maxQueued: 0 }, 'maxQueued'],
      [{ ...base, colour: 'blue' }, 'colour'],
    ] as const) {
      const answer = await post(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(
        answer.body.fields.map((f: { field: string }) => f.field),
        JSON.stringify(body),
      ).toContain(field);
    }
    expect((await post(base)).status).toBe(201);
    const again = await post(base);
    expect(again.status).toBe(409);
    expect(again.body.fields[0].field).toBe('id');
    // An untrusted submitter's trusted lanes are where its jobs may be promoted to, never where it submits.
    const patched = await call(proofpod.url, 'PATCH', '/v1/submitters/new-one', { token: admin, body: { lanes: ['intake', 'verify'] } });
    expect(patched.status).toBe(200);
    const minted = (await call(proofpod.url, 'POST', '/v1/submitters/new-one/tokens', { token: admin, body: {} })).body;
    expect((await call(proofpod.url, 'POST', '/v1/jobs', { token: minted.token, body: jobRequest({ lane: 'verify' }) })).status).toBe(403);
    const promotable = await call(proofpod.url, 'POST', '/v1/jobs', {
      token: minted.token,
      body: jobRequest({ lane: 'intake', promoteTo: 'verify' }),
    });
    expect(promotable.status).toBe(201);
    const notPromotable = await call(proofpod.url, 'POST', '/v1/jobs', {
      token: minted.token,
      body: jobRequest({ lane: 'intake', promoteTo: 'audit' }),
    });
    expect(notPromotable.status).toBe(403);
    expect(notPromotable.body.message).toBe('submitter new-one may not be promoted to lane audit; lanes it may be promoted to: verify');
    expect((await call(proofpod.url, 'PATCH', '/v1/submitters/nobody', { token: admin, body: { roles: [] } })).status).toBe(404);
    expect((await call(proofpod.url, 'POST', '/v1/submitters/nobody/tokens', { token: admin, body: {} })).status).toBe(404);
  });

  it('the last admin token cannot be revoked; with a second one it can, and the audit log cannot be rewritten', async () => {
    const { tokens } = (await call(proofpod.url, 'GET', '/v1/submitters/ops/tokens', { token: admin })).body as {
      tokens: { id: string }[];
    };
    const mine = tokens[0]!.id;
    const refused = await call(proofpod.url, 'POST', `/v1/tokens/${mine}/revoke`, { token: admin });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toContain('last token with the admin role');
    const second = (await call(proofpod.url, 'POST', '/v1/submitters/ops/tokens', { token: admin, body: { label: 'spare' } })).body;
    expect((await call(proofpod.url, 'POST', `/v1/tokens/${mine}/revoke`, { token: admin })).status).toBe(200);
    expect(await statusWith(admin)).toBe(401);
    expect(await statusWith(second.token)).toBe(200);
    admin = second.token;
    await expect(db.sql`update audit_log set actor = 'someone else'`).rejects.toThrow(/append-only/);
    await expect(db.sql`delete from audit_log`).rejects.toThrow(/append-only/);
  });
});
