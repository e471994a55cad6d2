import { createHash } from 'node:crypto';
import type { Evidence } from '../../contract/evidence.js';
import type { AttemptLaunch } from '../../scheduler/substrate/substrate.js';

export const FAKE_IMAGE_DIGEST = `sha256:${createHash('sha256').update('fake-prover-image').digest('hex')}`;
const FAKE_BINARY_DIGEST = `sha256:${createHash('sha256').update('fake-prover-binary').digest('hex')}`;

/** Evidence as a reporter would build it for `launch`; every field present. */
export function evidenceFor(launch: Pick<AttemptLaunch, 'jobId' | 'attemptNo' | 'source' | 'prover' | 'targets'>, overrides: Partial<Evidence> = {}): Evidence {
  const log = 'all targets checked\n';
  const now = new Date();
  return {
    schemaVersion: 1,
    jobId: launch.jobId,
    attemptNo: launch.attemptNo,
    source: { url: launch.source.url, commit: launch.source.commit, treeHash: 'a'.repeat(40), subdirectory: launch.source.subdirectory },
    prover: {
      profile: launch.prover,
      version: 'fake-prover 1.0',
      binaryDigest: FAKE_BINARY_DIGEST,
      command: ['fake-prover', ...launch.targets],
      exitCode: 0,
      startedAt: new Date(now.getTime() - 10).toISOString(),
      finishedAt: now.toISOString(),
      durationMs: 10,
    },
    logs: { digest: `sha256:${createHash('sha256').update(log).digest('hex')}`, bytes: log.length, excerpt: log, truncated: false },
    targets: launch.targets.map((path) => ({ path, result: 'pass' as const, exitCode: 0, durationMs: 10, reason: null })),
    audit: { command: null, findings: [], policy: null },
    outcome: 'pass',
    error: null,
    ...overrides,
  };
}
