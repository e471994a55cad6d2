import { z } from 'zod';

export const sha256Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex>');
const timestamp = z.iso.datetime({ offset: true });
const command = z.array(z.string().max(4096)).min(1).max(256);

export const TargetResultSchema = z.strictObject({
  path: z.string().min(1).max(1024),
  result: z.enum(['pass', 'fail', 'error']),
  exitCode: z.number().int().nullable(),
  durationMs: z.number().int().min(0),
  /** Why a target did not pass (the pass rule it broke); null when it passed. */
  reason: z.string().max(1000).nullable(),
});

export const FindingSchema = z.strictObject({
  kind: z.enum(['axiom', 'admitted', 'other']),
  name: z.string().min(1).max(1024),
  target: z.string().max(1024).nullable(),
});

export const LogSummarySchema = z.strictObject({
  /** Digest of the full log, computed by the prover wrapper from the stream itself. */
  digest: sha256Digest,
  bytes: z.number().int().min(0),
  /** Head and tail of the log, at most 16 KiB. */
  excerpt: z.string().max(16 * 1024),
  truncated: z.boolean(),
});

/**
 * The reporter's evidence (SPEC §8), shared by the reporter that builds it and the scheduler that
 * accepts it. Every field is required: what the reporter could not observe is an explicit null
 * (only allowed with outcome `error`), never a missing field and never a default.
 */
export const EvidenceSchema = z
  .strictObject({
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
      version: z.string().min(1).max(2000).nullable(),
      /** SHA-256 of the prover executable that ran (the check command's program). */
      binaryDigest: sha256Digest.nullable(),
      command: command,
      /** The prover container's exit code, as its wrapper exited. */
      exitCode: z.number().int().nullable(),
      startedAt: timestamp.nullable(),
      finishedAt: timestamp.nullable(),
      durationMs: z.number().int().min(0).nullable(),
    }),
    logs: LogSummarySchema.nullable(),
    targets: z.array(TargetResultSchema).max(1000),
    audit: z.strictObject({
      command: command.nullable(),
      findings: z.array(FindingSchema).max(10_000),
      policy: z.enum(['reject', 'allow']).nullable(),
    }),
    /** The prover wrapper's reading of the result under the profile's rules. */
    outcome: z.enum(['pass', 'fail', 'error']),
    /** Why the outcome is `error` (e.g. the prover produced nothing before the deadline); else null. */
    error: z.string().max(4000).nullable(),
  })
  .superRefine((evidence, ctx) => {
    if (evidence.outcome === 'error') return;
    const required: [string, unknown][] = [
      ['prover.version', evidence.prover.version],
      ['prover.binaryDigest', evidence.prover.binaryDigest],
      ['prover.exitCode', evidence.prover.exitCode],
      ['prover.startedAt', evidence.prover.startedAt],
      ['prover.finishedAt', evidence.prover.finishedAt],
      ['prover.durationMs', evidence.prover.durationMs],
      ['logs', evidence.logs],
    ];
    for (const [field, value] of required) {
      if (value === null) ctx.addIssue({ code: 'custom', path: field.split('.'), message: `required for outcome ${evidence.outcome}` });
    }
    if (evidence.targets.length === 0) ctx.addIssue({ code: 'custom', path: ['targets'], message: `required for outcome ${evidence.outcome}` });
  });
export type Evidence = z.infer<typeof EvidenceSchema>;
