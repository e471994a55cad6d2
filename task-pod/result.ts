import * as z from 'zod';
import {
  AllowedAxiomsSchema,
  FindingSchema,
  GoalResultSchema,
  LogSummarySchema,
  TargetResultSchema,
  sha256Digest,
} from '../contract/evidence.js';

/** What the check wrapper leaves in the results volume (`result.json`), for the reporter. */
export const CheckResultSchema = z.strictObject({
  profile: z.string(),
  /** Null only with outcome `error`, when the checker could not even be found or asked. */
  version: z.string().min(1).nullable(),
  /** The second checker's; null when the lane requires none, or with outcome `error` before it was asked. */
  secondVersion: z.string().min(1).nullable(),
  binaryDigests: z.record(z.string(), sha256Digest),
  libraries: z.array(z.strictObject({ name: z.string(), package: z.string(), version: z.string(), digest: sha256Digest })),
  exitCode: z.number().int(),
  startedAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }),
  durationMs: z.number().int().min(0),
  results: z.array(TargetResultSchema),
  findings: z.array(FindingSchema),
  /** The project file the check read its logical names from (e.g. `_CoqProject`); null without one. */
  projectFile: z.string().nullable(),
  /** One per goal of the job. */
  goals: z.array(GoalResultSchema),
  /** The lane's allow-list the findings were judged under. */
  allowedAxioms: AllowedAxiomsSchema,
  log: LogSummarySchema,
  outcome: z.enum(['pass', 'fail', 'error']),
  error: z.string().nullable(),
});
export type CheckResult = z.infer<typeof CheckResultSchema>;
