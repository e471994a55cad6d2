import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import type { AttemptLaunch } from '../scheduler/substrate/substrate.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance, waitFor } from './support/instance.js';

/**
 * Every path that ends an attempt goes through finishAttempt (or, for a cancel, the same metric and
 * log line): a verdict, a promotion, a failed launch, a lease that expired with the attempt gone,
 * evidence that never came, a cancel. Each is checked for the job state it leaves, the
 * `proofpod_attempts_ended_total` counter and the `attempt ended` log line. Against a FAKE cluster.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'ender' });
const bot = await createToken(db.sql, { id: 'bot', trust: 'untrusted', lanes: ['intake'] });
const lines: { msg?: string; state?: string; reason?: string; jobId?: string }[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });

/** A fake cluster whose first create fails, as an API server that refuses one. */
class FailingOnce extends FakeCluster {
  failed = false;
  override async start(launch: AttemptLaunch): Promise<void> {
    if (!this.failed) {
      this.failed = true;
      throw new Error('the API server refused the create');
    }
    return super.start(launch);
  }
}

const running: { proofpod: Proofpod; cluster: FakeCluster }[] = [];
/** Stops the instance of the test before: one scheduler at a time claims from the shared database. */
async function stopRunning(): Promise<void> {
  for (const r of running.splice(0)) {
    r.cluster.shutdown();
    await r.proofpod.stop();
  }
}
afterAll(stopRunning);

async function start(cluster: FakeCluster, overrides: Record<string, unknown> = {}) {
  await stopRunning();
  const proofpod = await startInstance(db.url, { ...fastLoops, logLevel: 'info', ...overrides }, { substrate: cluster, log });
  running.push({ proofpod, cluster });
  return proofpod;
}

async function ended(proofpod: Proofpod, lane: string, state: string): Promise<number> {
  const text = (await call<string>(proofpod.url, 'GET', '/metrics')).body;
  const found = new RegExp(`^proofpod_attempts_ended_total\\{lane="${lane}",prover="coq",state="${state}"\\} (\\d+)$`, 'm').exec(text);
  return found ? Number(found[1]) : 0;
}

async function submitted(proofpod: Proofpod, body = jobRequest(), as = token): Promise<string> {
  const response = await call(proofpod.url, 'POST', '/v1/jobs', { token: as, body });
  expect(response.status).toBe(201);
  return response.body.id as string;
}

const stateOf = async (proofpod: Proofpod, id: string, as = token) =>
  (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token: as })).body as { state: string; lane: string; stateReason: string };
const loggedEnd = (state: string, reason: RegExp) =>
  lines.some((l) => l.msg === 'attempt ended' && l.state === state && reason.test(l.reason ?? ''));

describe('ending an attempt, by every path (FAKE cluster)', () => {
  it('a verdict; a promotion by policy', async () => {
    const proofpod = await start(new FakeCluster({ runMs: 20 }), {
      promotion: [{ name: 'bots', from: 'intake', to: 'verify', submitters: ['bot'] }],
    });
    const id = await submitted(proofpod);
    await waitFor('the verdict', async () => (await stateOf(proofpod, id)).state === 'verified');
    expect(await ended(proofpod, 'verify', 'verified')).toBe(1);
    expect(loggedEnd('verified', /^verified: 1 target\(s\) passed$/)).toBe(true);

    const promoted = await submitted(proofpod, jobRequest({ lane: 'intake', promoteTo: 'verify' }), bot);
    await waitFor('the promoted verdict', async () => (await stateOf(proofpod, promoted, bot)).state === 'verified');
    expect(await stateOf(proofpod, promoted, bot)).toMatchObject({ lane: 'verify' });
    expect(await ended(proofpod, 'intake', 'queued')).toBe(1);
    expect(loggedEnd('queued', /^verified: 1 target\(s\) passed$/)).toBe(true);
    expect(await ended(proofpod, 'verify', 'verified')).toBe(2);
  });

  it('a cancel of a running attempt', async () => {
    const proofpod = await start(new FakeCluster({ runMs: 60_000 }));
    const id = await submitted(proofpod);
    await waitFor('the attempt to run', async () => (await stateOf(proofpod, id)).state === 'running');
    expect((await call(proofpod.url, 'POST', `/v1/jobs/${id}/cancel`, { token, body: { reason: 'not needed' } })).status).toBe(200);
    expect(await ended(proofpod, 'verify', 'cancelled')).toBe(1);
    expect(loggedEnd('cancelled', /^cancelled by ender: not needed$/)).toBe(true);
  });

  it('a failed launch is retried', async () => {
    const proofpod = await start(new FailingOnce({ runMs: 20 }));
    const id = await submitted(proofpod);
    await waitFor('the verdict after a retry', async () => (await stateOf(proofpod, id)).state === 'verified');
    expect(await ended(proofpod, 'verify', 'queued')).toBe(1);
    expect(loggedEnd('queued', /^could not start attempt: the API server refused the create$/)).toBe(true);
  });

  it('evidence that never came: an error once the grace window has passed', async () => {
    const proofpod = await start(new FakeCluster({ runMs: 10, upload: false }), {
      reaper: { intervalSeconds: 0.3, evidenceGraceSeconds: 1 },
    });
    const id = await submitted(proofpod);
    await waitFor('the error', async () => (await stateOf(proofpod, id)).state === 'error', 15_000);
    expect(await ended(proofpod, 'verify', 'error')).toBe(1);
    expect(loggedEnd('error', /^no evidence: the attempt finished at .* nothing was uploaded within 1s$/)).toBe(true);
  });

  it('a lease that expired with its attempt gone from the substrate: retried by the reaper', async () => {
    const cluster = new FakeCluster({ runMs: 60_000 });
    const proofpod = await start(cluster, { reaper: { intervalSeconds: 0.3, evidenceGraceSeconds: 60 } });
    const id = await submitted(proofpod);
    await waitFor('the attempt to run', async () => (await stateOf(proofpod, id)).state === 'running');
    // Another holder's lease, expired, over an attempt the substrate no longer has.
    await db.sql`update claims set holder = 'gone-replica', expires_at = now() - interval '1 second' where attempt_id in (select id from attempts where job_id = ${id})`;
    await cluster.stop(cluster.created[0]!);
    await waitFor('a second attempt', async () => cluster.created.length === 2, 10_000);
    expect(await ended(proofpod, 'verify', 'queued')).toBe(1);
    expect(loggedEnd('queued', /^lease of gone-replica expired and the attempt is gone from the substrate$/)).toBe(true);
    await call(proofpod.url, 'POST', `/v1/jobs/${id}/cancel`, { token });
  });
});
