import { z } from 'zod';

const sha256 = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex>');
const timestamp = z.iso.datetime({ offset: true });

/**
 * The reporter's evidence (SPEC §8), shared by the reporter that builds it and the scheduler that
 * accepts it. Every field is required: a value the reporter could not observe is sent as null where
 * the schema allows it, never left out, so a missing field is an error and never a default.
 */
export const EvidenceSchema = z.strictObject({
  schemaVersion: z.literal(1),
  jobId: z.uuid(),
  attemptNo: z.number().int().min(1),
  source: z.strictObject({
    url: z.string().min(1).max(2048),
    commit: z.string().regex(/^[0-9a-f]{40}$/, 'must be 40 lowercase hex characters'),
    treeHash: z.string().regex(/^[0-9a-f]{40}$/, 'must be 40 lowercase hex characters'),
    subdirectory: z.string().max(1024).nullable(),
  }),
  prover: z.strictObject({
    profile: z.string().min(1).max(64),
    version: z.string().min(1).max(2000),
    imageDigest: sha256,
    command: z.array(z.string().max(4096)).min(1).max(256),
    exitCode: z.number().int(),
    startedAt: timestamp,
    finishedAt: timestamp,
    durationMs: z.number().int().min(0),
  }),
  logs: z.strictObject({
    digest: sha256,
    bytes: z.number().int().min(0),
    excerpt: z.string().max(16 * 1024),
    truncated: z.boolean(),
  }),
  targets: z
    .array(
      z.strictObject({
        path: z.string().min(1).max(1024),
        result: z.enum(['pass', 'fail', 'error']),
        exitCode: z.number().int().nullable(),
        durationMs: z.number().int().min(0),
      }),
    )
    .min(1)
    .max(1000),
  audit: z.strictObject({
    command: z.array(z.string().max(4096)).min(1).max(256).nullable(),
    exitCode: z.number().int().nullable(),
    findings: z
      .array(
        z.strictObject({
          kind: z.enum(['axiom', 'admitted', 'other']),
          name: z.string().min(1).max(1024),
          target: z.string().max(1024).nullable(),
        }),
      )
      .max(10_000),
  }),
  /** The reporter's reading of the prover's result under the profile's rules. */
  outcome: z.enum(['pass', 'fail', 'error']),
  /** Why the outcome is `error` (e.g. the prover produced nothing before the deadline); else null. */
  error: z.string().max(4000).nullable(),
});
export type Evidence = z.infer<typeof EvidenceSchema>;
