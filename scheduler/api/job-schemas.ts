import * as z from 'zod';
import { GoalSchema } from '../../contract/evidence.js';
import { attemptStates, jobStates } from '../job-states.js';

const relativePath = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\0'), {
    message: 'must be a relative path inside the source, without ".."',
  })
  // Targets and the subdirectory become arguments of the prover: a component such as `-load-vernac-source`
  // would be read as one of its options.
  .refine((p) => !p.split('/').some((c) => c.startsWith('-')), { message: 'no path component may start with "-"' });

/** The most the targets of one job may take together, as the JSON list the pod's environment carries. */
export const MAX_TARGETS_BYTES = 32 * 1024;

/** The submission body; prover and lane are checked against the configured names. */
export function submitJobBody(provers: readonly string[], lanes: readonly string[]) {
  return z.strictObject({
    source: z.strictObject({
      url: z.string().min(1).max(2048).describe('Git repository URL of the untrusted source'),
      commit: z.string().regex(/^[0-9a-f]{40}$/, 'must be 40 lowercase hex characters (a full commit SHA)'),
      subdirectory: relativePath.optional().describe('Directory inside the repository to verify in'),
    }),
    prover: z.enum(provers as [string, ...string[]]).describe('Prover profile name'),
    targets: z
      .array(relativePath)
      .max(1000)
      // The list reaches each container in one environment variable, which Linux bounds at 128 KiB
      // (MAX_ARG_STRLEN): past it the sandbox cannot start at all (E2BIG).
      .refine((targets) => Buffer.byteLength(JSON.stringify(targets)) <= MAX_TARGETS_BYTES, {
        message: `together at most ${MAX_TARGETS_BYTES / 1024} KiB (as the JSON list the pod gets)`,
      })
      .default([])
      .describe('Files to check, relative to the subdirectory; for a prover with project builds, omitted: every file the project lists'),
    goals: z
      .array(GoalSchema)
      .max(100)
      .default([])
      .describe('Theorems the checked files must prove, each with its statement (elaborated with the standard library only)'),
    lane: z.enum(lanes as [string, ...string[]]),
    priority: z.number().int().min(-1000).max(1000).default(0),
    labels: z
      .record(z.string().regex(/^[a-zA-Z0-9][-a-zA-Z0-9_./]{0,62}$/, 'label keys are 1-63 of [a-zA-Z0-9-_./]'), z.string().max(256))
      .refine((labels) => Object.keys(labels).length <= 32, 'at most 32 labels')
      .default({}),
    idempotencyKey: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe('Retries with the same key and body return the same job; another body under the key is a 409'),
    promoteTo: z
      .enum(lanes as [string, ...string[]])
      .optional()
      .describe('A trusted lane to run in once the job has passed its untrusted lane, after approval or by policy'),
    concurrency: z
      .strictObject({
        group: z.string().min(1).max(200).describe("Jobs of one submitter's group supersede each other"),
        cancelInProgress: z.boolean().default(false).describe('Also cancel the job of the group in flight'),
      })
      .optional(),
  });
}
export type SubmitJobBody = z.infer<ReturnType<typeof submitJobBody>>;

export const AttemptViewSchema = z.object({
  attemptNo: z.number().int(),
  name: z.string(),
  state: z.enum(attemptStates),
  stateReason: z.string(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  deadlineAt: z.string(),
  finishedAt: z.string().nullable(),
  /** The check container's exit code and image digest, as the substrate reported them. */
  observedExitCode: z.number().int().nullable(),
  observedImageDigest: z.string().nullable(),
  /** The build container's, for profiles with a build step. */
  observedBuild: z.object({ exitCode: z.number().int().nullable(), imageDigest: z.string().nullable() }).nullable(),
});

export const JobViewSchema = z.object({
  id: z.uuid(),
  state: z.enum(jobStates),
  stateReason: z.string(),
  submitter: z.string(),
  source: z.object({ url: z.string(), commit: z.string(), subdirectory: z.string().nullable() }),
  prover: z.string(),
  targets: z.array(z.string()),
  goals: z.array(z.object({ name: z.string(), statement: z.string() })),
  lane: z.string(),
  priority: z.number().int(),
  labels: z.record(z.string(), z.string()),
  idempotencyKey: z.string().nullable(),
  promoteTo: z.string().nullable(),
  concurrency: z.object({ group: z.string(), cancelInProgress: z.boolean() }).nullable(),
  supersededBy: z.uuid().nullable(),
  /** Submitted by the scheduler to see whether an unhealthy prover profile works again (docs/operations.md, "Prover health"). */
  canary: z.boolean(),
  attemptsMade: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
  attempts: z.array(AttemptViewSchema).optional(),
});
export type JobView = z.infer<typeof JobViewSchema>;

const commaList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).filter(Boolean));

export const ListJobsQuery = z.strictObject({
  state: commaList
    .pipe(z.array(z.enum(jobStates)))
    .optional()
    .describe('Comma-separated states'),
  lane: z.string().max(64).optional(),
  prover: z.string().max(64).optional(),
  label: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .pipe(z.array(z.string().regex(/^[^=]+=.*$/, 'must be key=value')).max(32))
    .optional()
    .describe('key=value; repeat for several'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,40}$/, 'not a cursor returned by this API')
    .optional(),
});

export const JobListSchema = z.object({ jobs: z.array(JobViewSchema), nextCursor: z.string().nullable() });

export const EventViewSchema = z.object({
  attemptNo: z.number().int().nullable(),
  at: z.string(),
  actor: z.string(),
  from: z.string().nullable(),
  to: z.string(),
  reason: z.string(),
});

export const JobIdParams = z.strictObject({ id: z.uuid('must be a job id (uuid)') });

export const LogsQuery = z.strictObject({
  attempt: z.coerce.number().int().min(1).max(1000).optional().describe('The attempt number; default: the latest'),
  container: z.enum(['fetch', 'build', 'check', 'reporter']).default('check').describe('Default: check, the prover log'),
  follow: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true')
    .describe('true: stream the log until the attempt has ended'),
});

/** The longest a GET of one job waits for it to change: below the idle timeouts of common proxies. */
export const MAX_WAIT_SECONDS = 30;

export const GetJobQuery = z.strictObject({
  waitSeconds: z.coerce
    .number()
    .min(0)
    .max(MAX_WAIT_SECONDS)
    .default(0)
    .describe(
      `Wait up to this many seconds (at most ${MAX_WAIT_SECONDS}) while the job is in flight and its state is \`whileState\`; 0 answers at once`,
    ),
  whileState: z
    .enum(jobStates)
    .optional()
    .describe('The state last seen: the wait ends as soon as the job has another one (default: its state when the request arrives)'),
});

export function encodeCursor(seq: number): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): number | undefined {
  const match = Buffer.from(cursor, 'base64url')
    .toString('utf8')
    .match(/^seq:(\d{1,15})$/);
  return match ? Number(match[1]) : undefined;
}
