import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProofRepo, type ScenarioFigures, proofRepo, runChaosScenario } from './bench/chaos.js';
import { RestartablePostgres } from './support/restartable-postgres.js';

/**
 * The tiny run of `npm run chaos` (docs/reliability.md), so the harness cannot rot: 20 jobs through
 * two replica processes while one is killed with SIGKILL and started again, then 20 more while
 * Postgres is stopped and started; nothing lost, nothing twice, every job final. Asserts what
 * happened, never how fast.
 */
let work: string;
let postgres: RestartablePostgres;
let repo: ProofRepo;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'proofpod-chaos-test-'));
  // The sandboxes run as other uids: they read the repository and the state under here.
  chmodSync(work, 0o755);
  postgres = await RestartablePostgres.start(path.join(work, 'postgres'), pino({ level: 'silent' }));
  repo = proofRepo(path.join(work, 'proofs'));
});
afterAll(async () => {
  await postgres?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const tiny = () => ({
  postgres,
  work,
  repo,
  jobs: 20,
  replicas: 2,
  ratePerSecond: 4,
  concurrency: 3,
  // Uids of this file's own: test files run at once, each with a local substrate of its own.
  sandboxUids: { first: 720_000, count: 2_000 },
  drainSeconds: 60,
  claims: { ttlSeconds: 2, heartbeatSeconds: 0.5 },
});

function expectNothingLostOrDoubled(f: ScenarioFigures): void {
  expect(f.submitted).toBe(20);
  expect(f.inDatabase).toBe(20);
  expect(f.lost.absent).toEqual([]);
  expect(f.stuck).toEqual([]);
  expect(f.twoVerdicts).toEqual([]);
  expect(f.overlapping).toEqual([]);
  expect(Object.values(f.states).reduce((a, b) => a + b, 0)).toBe(20);
  expect(f.unexpectedExits).toBe(0);
}

describe('the chaos run, tiny', () => {
  it('kill -9 of a replica mid-load: every job final, none lost or doubled, every lease it held taken over', async () => {
    const f = await runChaosScenario({ ...tiny(), scenario: 'kill', killEverySeconds: 2, restartAfterSeconds: 0.5 });
    expectNothingLostOrDoubled(f);
    expect(f.faults.filter((x) => x.kind === 'replica killed').length).toBeGreaterThan(0);
    expect(f.takeovers.killedLeasesTakenOver).toBe(f.takeovers.killedLeases);
  }, 90_000);

  it('Postgres stopped and started mid-load: every job final, none lost or doubled', async () => {
    const f = await runChaosScenario({ ...tiny(), scenario: 'postgres', outages: 1, downSeconds: 2 });
    expectNothingLostOrDoubled(f);
    expect(f.faults.map((x) => x.kind)).toEqual(['postgres restarted']);
  }, 90_000);
});
