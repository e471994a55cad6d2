import { createHash } from 'node:crypto';
import { type Evidence, dispatchedProfile } from '../../contract/evidence.js';
import { type ProverProfile, ProverProfileSchema, profileForLane } from '../../contract/profile.js';
import { defaultProverProfiles } from '../../scheduler/prover-profiles.js';
import type { AttemptLaunch } from '../../scheduler/substrate/substrate.js';

export const FAKE_IMAGE_DIGEST = `sha256:${createHash('sha256').update('fake-prover-image').digest('hex')}`;
export const FAKE_BINARY_DIGEST = `sha256:${createHash('sha256').update('fake-prover-binary').digest('hex')}`;

/** A default profile by name, as the scheduler's configuration holds it. */
export function defaultProfile(name: string): ProverProfile {
  const input = defaultProverProfiles.find((p) => p.name === name);
  if (!input) throw new Error(`no default prover profile ${name}`);
  return ProverProfileSchema.parse(input);
}

/** A default profile as an attempt in a lane without a second checker (the default lanes intake and verify) runs it. */
export function laneProfile(name: string, lane = { secondChecker: false }): ProverProfile {
  return profileForLane(defaultProfile(name), lane);
}

/** Evidence as a reporter would build it for `launch` under `profile` (default: the default profile of its prover); every field present. */
export function evidenceFor(
  launch: Pick<AttemptLaunch, 'jobId' | 'attemptNo' | 'source' | 'prover' | 'targets'>,
  overrides: Partial<Evidence> = {},
  profile: ProverProfile = laneProfile(launch.prover),
): Evidence {
  const log = 'all targets checked\n';
  const now = new Date();
  return {
    schemaVersion: 3,
    jobId: launch.jobId,
    attemptNo: launch.attemptNo,
    source: { url: launch.source.url, commit: launch.source.commit, treeHash: 'a'.repeat(40), subdirectory: launch.source.subdirectory },
    targets: launch.targets,
    profile: dispatchedProfile(profile),
    check: {
      version: 'fake-checker 1.0',
      secondVersion: profile.check.second ? 'fake-second-checker 1.0' : null,
      projectFile: null,
      libraries: [],
      binaryDigests: Object.fromEntries(
        [profile.check.command, profile.check.second?.command].flatMap((c) => (c ? [[c[0]!, FAKE_BINARY_DIGEST]] : [])),
      ),
      exitCode: 0,
      startedAt: new Date(now.getTime() - 10).toISOString(),
      finishedAt: now.toISOString(),
      durationMs: 10,
    },
    logs: { digest: `sha256:${createHash('sha256').update(log).digest('hex')}`, bytes: log.length, excerpt: log, truncated: false },
    results: launch.targets.map((path) => {
      const run = { result: 'pass' as const, exitCode: 0, durationMs: 10, reason: null, proofDigest: null };
      return { path, ...run, second: profile.check.second ? run : null };
    }),
    audit: { allowedAxioms: [], findings: [] },
    goals: [],
    outcome: 'pass',
    error: null,
    ...overrides,
  };
}
