import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Evidence } from '../contract/evidence.js';
import { ProverProfileSchema } from '../contract/profile.js';
import type { Proofpod } from '../scheduler/app.js';
import type { AttemptLaunch } from '../scheduler/substrate/substrate.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FAKE_IMAGE_DIGEST, defaultProfile } from './support/evidence.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance, waitFor } from './support/instance.js';

/**
 * A holder of a leaked upload credential uploads, for a job, passing evidence of something else:
 * another commit, other targets, another profile, audit or allow-list. The scheduler's judge binds the
 * evidence to what it dispatched, so each ends `error` naming both values. The cluster is a FAKE
 * (test/support/fake-cluster.ts): it runs nothing and plays the reporter, here a forging one.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'binding' });
const pinned = ProverProfileSchema.parse({
  ...defaultProfile('smt-z3'),
  name: 'z3-pinned',
  pins: { imageDigest: `sha256:${'7'.repeat(64)}` },
});
const forgeries: Record<string, (launch: AttemptLaunch, honest: Evidence) => Evidence> = {};
const cluster = new FakeCluster({
  forge: (launch, honest) => (forgeries[launch.jobId] ?? ((_l, e) => e))(launch, honest),
});
let proofpod: Proofpod;

beforeAll(async () => {
  proofpod = await startInstance(
    db.url,
    { ...fastLoops, provers: [...['coq', 'smt-z3'].map(defaultProfile), pinned] },
    { substrate: cluster },
  );
});
afterAll(async () => {
  await proofpod.stop();
  cluster.shutdown();
});

async function judged(forge: ((launch: AttemptLaunch, honest: Evidence) => Evidence) | undefined, body = jobRequest()) {
  const submitted = await call(proofpod.url, 'POST', '/v1/jobs', { token, body });
  expect(submitted.status).toBe(201);
  const id = submitted.body.id as string;
  if (forge) forgeries[id] = forge;
  let job: { state: string; stateReason: string } = { state: '', stateReason: '' };
  await waitFor(`job ${id} to end`, async () => {
    job = (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body;
    return ['verified', 'rejected', 'error', 'timed_out'].includes(job.state);
  });
  return job;
}

describe('evidence bound to the job', () => {
  it('honest evidence of the dispatched job is verified', async () => {
    expect((await judged(undefined)).state).toBe('verified');
  });

  it.each<[string, (launch: AttemptLaunch, honest: Evidence) => Evidence, string]>([
    [
      'another commit',
      (_l, e) => ({ ...e, source: { ...e.source, commit: 'f'.repeat(40) } }),
      `commit mismatch: evidence says "${'f'.repeat(40)}", dispatched "0123456789abcdef0123456789abcdef01234567"`,
    ],
    [
      'another source',
      (_l, e) => ({ ...e, source: { ...e.source, url: 'https://example.org/easy.git' } }),
      'source URL mismatch: evidence says "https://example.org/easy.git", dispatched "https://example.org/proofs.git"',
    ],
    [
      'other targets',
      (_l, e) => ({ ...e, targets: ['Easy.v'], results: [{ ...e.results[0]!, path: 'Easy.v' }] }),
      'targets mismatch: evidence says ["Easy.v"], dispatched ["Main.v"]',
    ],
    [
      'another profile',
      (_l, e) => ({ ...e, profile: { ...e.profile, name: 'smt-z3' } }),
      'profile name mismatch: evidence says "smt-z3", dispatched "coq"',
    ],
    [
      'another audit',
      (_l, e) => ({ ...e, profile: { ...e.profile, audit: null } }),
      'profile audit mismatch: evidence says null, dispatched {"command":null,"parser":"coqchk"}',
    ],
    [
      'another allow-list',
      (_l, e) => ({ ...e, audit: { allowedAxioms: ['Coq.Logic.Classical_Prop.classic'], findings: [] } }),
      'allowed axioms mismatch: evidence says ["Coq.Logic.Classical_Prop.classic"], dispatched []',
    ],
    [
      'another check command',
      (_l, e) => ({ ...e, profile: { ...e.profile, check: ['true'] } }),
      'profile check mismatch: evidence says ["true"], dispatched [',
    ],
  ])('passing evidence naming %s ends error with both values', async (_name, forge, reason) => {
    const job = await judged(forge);
    expect(job.state).toBe('error');
    expect(job.stateReason.startsWith(reason), job.stateReason).toBe(true);
  });

  it('a pinned image digest that differs from the observed one ends error naming both', async () => {
    const job = await judged(undefined, jobRequest({ prover: 'z3-pinned', targets: ['a.smt2'] }));
    expect(job).toEqual(
      expect.objectContaining({
        state: 'error',
        stateReason: `image digest mismatch: the check container ran ${FAKE_IMAGE_DIGEST}, the profile pins ${pinned.pins.imageDigest}`,
      }),
    );
  });
});
