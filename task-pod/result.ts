import { z } from 'zod';
import { FindingSchema, LogSummarySchema, TargetResultSchema, sha256Digest } from '../contract/evidence.js';

/** What the prover wrapper leaves in the results volume (`result.json`), for the reporter. */
export const ProverResultSchema = z.strictObject({
  profile: z.string(),
  /** Null only with outcome `error`, when the prover could not even be found or asked. */
  version: z.string().min(1).nullable(),
  binaryDigest: sha256Digest.nullable(),
  /** The check command as configured, before `{target}` is filled in. */
  command: z.array(z.string()).min(1),
  exitCode: z.number().int(),
  startedAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }),
  durationMs: z.number().int().min(0),
  targets: z.array(TargetResultSchema),
  audit: z.strictObject({
    command: z.array(z.string()).min(1).nullable(),
    findings: z.array(FindingSchema),
    policy: z.enum(['reject', 'allow']).nullable(),
  }),
  log: LogSummarySchema,
  outcome: z.enum(['pass', 'fail', 'error']),
  error: z.string().nullable(),
});
export type ProverResult = z.infer<typeof ProverResultSchema>;

/** The wrapper's exit code for each outcome; the scheduler compares it with what it observed. */
export const outcomeExitCode = { pass: 0, fail: 1, error: 2 } as const;
