import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { ConfigError, coerceError } from './errors.js';
import { LaneSchema, PromotionRuleSchema, QuotasSchema, defaultLanes } from './lanes.js';
import { ProverProfileSchema, defaultProverProfiles } from './prover-profiles.js';

const positiveSeconds = z
  .number()
  .positive()
  .max(24 * 3600);

export const ConfigSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Where the embedded Postgres, the admin token and local state live. */
    home: z.string().min(1).default('./.proofpod'),
    /** An external Postgres; without it proofpod runs an embedded one under `home`. */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    /** The base URL task pods use to reach this scheduler (evidence uploads). */
    publicUrl: z.url().optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Largest accepted request body; larger ones are answered 413. */
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    /** Mint and print an admin token on first start. Defaults to on only with the embedded Postgres. */
    bootstrapAdminToken: z.boolean().optional(),
    /**
     * A file holding an admin token the operator chose (the chart mounts it from a Secret). Its hash
     * is registered at every start, so the token works without reading anything from the logs.
     */
    adminTokenFile: z.string().min(1).optional(),
    /** Signed verdicts (docs/security.md, "Signed verdicts"). */
    attestation: z
      .strictObject({
        /**
         * The PEM private key (ECDSA P-256 or Ed25519) final verdicts are signed with; the chart
         * mounts it from a Secret. Unset: `<home>/attestation-signing-key.pem`, generated on first start.
         */
        signingKeyFile: z.string().min(1).optional(),
      })
      .default({}),
    /** What runs attempts. `none` keeps jobs queued (API only); `local` runs them in sandboxes here. */
    substrate: z.enum(['none', 'local', 'kubernetes']).default('local'),
    /** Settings of every attempt's pod, whichever substrate runs it. */
    pod: z
      .strictObject({
        release: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$/, 'must be a DNS label of at most 53 characters')
          .default('proofpod'),
        /** Image with Node.js, git and the task-pod programs (fetch and reporter). */
        taskImage: z.string().min(1).default('proofpod/task:latest'),
        taskServiceAccount: z.string().min(1).default('proofpod-task'),
        maxSourceBytes: z
          .number()
          .int()
          .min(1024)
          .default(256 * 1024 * 1024),
        /** Most files a source tree may have, and most components a path in it may have. */
        maxSourceFiles: z.number().int().min(1).default(100_000),
        maxSourceDepth: z.number().int().min(1).max(1000).default(64),
        /** Most bytes the targets of one job may take together. */
        maxTargetBytes: z
          .number()
          .int()
          .min(1)
          .default(64 * 1024 * 1024),
        /** Size limit of the volume the build writes (a Kubernetes quantity). */
        artifactsSizeLimit: z
          .string()
          .regex(/^[0-9]+([kMGTPE]i?)?$/, 'must be a Kubernetes quantity such as 4Gi')
          .default('4Gi'),
        /** Allow file:// sources (local quick start and tests only). */
        allowFileSources: z.boolean().default(false),
        /** Seconds before the deadline the reporter keeps to upload an error report. */
        reportMarginSeconds: z.number().int().min(5).max(600).default(30),
        /** The uid of the containers that run our programs (fetch, check, reporter). */
        runAsUser: z.number().int().min(1).default(65532),
        /** The uid of the build container, which runs proof code: never the same as runAsUser. */
        buildRunAsUser: z.number().int().min(1).default(65533),
        /** Of every task container; unset leaves Kubernetes' default. */
        imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
      })
      .prefault({})
      .refine((pod) => pod.buildRunAsUser !== pod.runAsUser, {
        message: 'must differ from runAsUser: proof code must not share a uid with our programs',
        path: ['buildRunAsUser'],
      }),
    /** The Kubernetes substrate: one batch/v1 Job per attempt. */
    kubernetes: z
      .strictObject({
        /** A kubeconfig file; without it, the in-cluster service account (or the default kubeconfig). */
        kubeconfig: z.string().optional(),
        namespace: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name')
          .default('default'),
        /**
         * The long-lived object of the release every Job is owned by (never a scheduler pod, so a
         * replica restart kills nothing). Without a uid the scheduler reads it from the object, in its
         * namespace, once (the chart's Role grants `get` on that one object, nothing more).
         */
        owner: z
          .strictObject({
            apiVersion: z.string().min(1),
            kind: z.string().min(1),
            name: z.string().min(1),
            uid: z.string().min(1).optional(),
          })
          .optional(),
        /** How long an image may fail to pull before the attempt is an infrastructure error. */
        imagePullGraceSeconds: z.number().int().min(0).default(60),
        /** How long a pod may stay Pending, from its creation, before the attempt is an error. */
        pendingLimitSeconds: z.number().int().min(10).default(600),
        ttlSecondsAfterFinished: z.number().int().min(0).default(600),
        /**
         * A client-side token bucket over the scheduler's API requests (not its two watches). Unset:
         * none; the requests in flight are bounded by `dispatch.launchConcurrency` instead, which is
         * what the API server's priority and fairness limits too (docs/operations.md).
         */
        client: z
          .strictObject({
            qps: z.number().positive().max(10_000).optional(),
            /** Requests let through at once before `qps` paces them; default: `dispatch.launchConcurrency`. */
            burst: z.number().int().min(1).max(10_000).optional(),
          })
          .prefault({})
          .refine((client) => client.burst === undefined || client.qps !== undefined, {
            message: 'burst needs qps: without a rate there is no bucket to burst from',
            path: ['burst'],
          }),
      })
      .prefault({}),
    /** The local substrate: sandboxes on this machine. */
    local: z
      .strictObject({
        /** Run untrusted work without bubblewrap. Only for machines that run nothing else of value. */
        unsafeNoSandbox: z.boolean().default(false),
        /** Image name → host paths bound read-only at the same place in the sandbox. */
        images: z.record(z.string(), z.strictObject({ paths: z.array(z.string().startsWith('/')).min(1) })).optional(),
        /**
         * Host uids sandboxes run as when proofpod runs as root: each attempt takes two of its own,
         * one for the containers that run our programs and one for the build, so no two attempts
         * and no build and checker share a uid.
         */
        sandboxUids: z
          .strictObject({
            first: z.number().int().min(1000).max(4_000_000_000).default(200_000),
            count: z.number().int().min(2).max(1_000_000).default(65_536),
          })
          .prefault({}),
        /**
         * Limits of each build and check process, where the lane sets none: memory (bytes of data),
         * processes per attempt uid (enforced when proofpod runs as root, where that uid is the
         * attempt's alone), largest file written, and CPU seconds.
         */
        limits: z
          .strictObject({
            memoryBytes: z
              .number()
              .int()
              .min(64 * 1024 * 1024)
              .default(8 * 1024 * 1024 * 1024),
            processes: z.number().int().min(8).max(1_000_000).default(512),
            fileSizeBytes: z
              .number()
              .int()
              .min(1024 * 1024)
              .default(2 * 1024 * 1024 * 1024),
            cpuSeconds: z.number().int().min(1).optional(),
          })
          .prefault({}),
      })
      .prefault({}),
    claims: z
      .strictObject({
        ttlSeconds: positiveSeconds.default(30),
        heartbeatSeconds: positiveSeconds.default(10),
      })
      .default({ ttlSeconds: 30, heartbeatSeconds: 10 })
      .refine((c) => c.heartbeatSeconds * 2 <= c.ttlSeconds, {
        message: 'heartbeatSeconds must be at most half of ttlSeconds, or leases lapse between renewals',
        path: ['heartbeatSeconds'],
      }),
    dispatch: z
      .strictObject({
        intervalSeconds: positiveSeconds.default(1),
        batchSize: z.number().int().min(1).max(1000).default(50),
        /**
         * Creates in the substrate one replica has in flight at once. Its launch pool holds three
         * launches (credential, create, mark running) per create across dispatch cycles, and a cycle
         * claims no more than there is room for. On Kubernetes also the connections kept open to the
         * API server (docs/operations.md, "The Kubernetes API").
         */
        launchConcurrency: z.number().int().min(1).max(256).default(16),
      })
      .prefault({}),
    reaper: z
      .strictObject({
        intervalSeconds: positiveSeconds.default(5),
        /** How long a finished attempt may wait for its evidence before it is an error. */
        evidenceGraceSeconds: positiveSeconds.default(60),
      })
      .default({ intervalSeconds: 5, evidenceGraceSeconds: 60 }),
    lanes: z
      .array(LaneSchema)
      .min(1)
      .default(defaultLanes)
      .refine((lanes) => new Set(lanes.map((l) => l.name)).size === lanes.length, 'lane names must be unique'),
    /** Policy rules that promote an intake-passed job to a trusted lane without an approver. */
    promotion: z.array(PromotionRuleSchema).default([]),
    quotas: QuotasSchema.prefault({}),
    fairness: z
      .strictObject({
        /** How fast a submitter's recent dispatches stop counting against it inside a lane. */
        usageHalfLifeSeconds: z
          .number()
          .positive()
          .max(7 * 24 * 3600)
          .default(600),
      })
      .prefault({}),
    provers: z
      .array(ProverProfileSchema)
      .min(1)
      .prefault(defaultProverProfiles)
      .refine((ps) => new Set(ps.map((p) => p.name)).size === ps.length, 'prover names must be unique'),
    /**
     * Prover health (docs/operations.md, "Prover health"): failures of a profile's own image or
     * containers in a row make it unhealthy, and its jobs wait instead of burning attempts until a
     * verdict (a canary job's, where one is configured) shows it works again.
     */
    proverHealth: z
      .strictObject({
        /** Failures of the profile in a row (image pull, container config or start) that make it unhealthy. */
        failureThreshold: z.number().int().min(1).max(1000).default(3),
        /** How often the reaper submits a canary of an unhealthy profile, at most. */
        canaryIntervalSeconds: positiveSeconds.default(60),
        /** A known-good proof per prover, run to see whether an unhealthy profile works again. */
        canaries: z
          .record(
            z.string(),
            z.strictObject({
              source: z.strictObject({
                url: z.string().min(1).max(2048),
                commit: z.string().regex(/^[0-9a-f]{40}$/, 'must be 40 lowercase hex characters (a full commit SHA)'),
                subdirectory: z.string().min(1).max(1024).optional(),
              }),
              targets: z.array(z.string().min(1).max(1024)).max(100).default([]),
              lane: z.string().min(1),
            }),
          )
          .default({}),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    for (const [prover, canary] of Object.entries(config.proverHealth.canaries)) {
      if (!config.provers.some((p) => p.name === prover))
        ctx.addIssue({ code: 'custom', path: ['proverHealth', 'canaries', prover], message: `${prover} is not a prover` });
      if (!config.lanes.some((l) => l.name === canary.lane))
        ctx.addIssue({ code: 'custom', path: ['proverHealth', 'canaries', prover, 'lane'], message: `${canary.lane} is not a lane` });
    }
    const trustOf = new Map(config.lanes.map((l) => [l.name, l.trust]));
    config.promotion.forEach((rule, i) => {
      if (trustOf.get(rule.from) !== 'untrusted') {
        ctx.addIssue({
          code: 'custom',
          path: ['promotion', i, 'from'],
          message: `must name an untrusted lane (${rule.from} is ${trustOf.get(rule.from) ?? 'not a lane'})`,
        });
      }
      if (trustOf.get(rule.to) !== 'trusted') {
        ctx.addIssue({
          code: 'custom',
          path: ['promotion', i, 'to'],
          message: `must name a trusted lane (${rule.to} is ${trustOf.get(rule.to) ?? 'not a lane'})`,
        });
      }
    });
  });

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Environment variables and the config key each one sets. */
const envKeys = {
  HOST: 'host',
  PORT: 'port',
  PROOFPOD_HOME: 'home',
  DATABASE_URL: 'databaseUrl',
  PROOFPOD_PUBLIC_URL: 'publicUrl',
  LOG_LEVEL: 'logLevel',
  PROOFPOD_SUBSTRATE: 'substrate',
  PROOFPOD_ADMIN_TOKEN_FILE: 'adminTokenFile',
} as const;
/** Environment variables that set a nested key. */
const nestedEnvKeys = {
  PROOFPOD_ALLOW_FILE_SOURCES: ['pod', 'allowFileSources'],
  PROOFPOD_NAMESPACE: ['kubernetes', 'namespace'],
  KUBECONFIG: ['kubernetes', 'kubeconfig'],
  PROOFPOD_ATTESTATION_KEY_FILE: ['attestation', 'signingKeyFile'],
} as const;
const numericEnvKeys = new Set(['port']);

/**
 * Builds the configuration from an optional file (`PROOFPOD_CONFIG`, YAML or JSON) overlaid by
 * environment variables. Throws a ConfigError naming every bad key and where it came from.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigInput = {}): Config {
  const sources = new Map<string, string>();
  let raw: Record<string, unknown> = {};
  const file = env.PROOFPOD_CONFIG;
  if (file) {
    raw = readConfigFile(file);
    for (const key of Object.keys(raw)) sources.set(key, `config file ${file}`);
  }
  for (const [name, key] of Object.entries(envKeys)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    raw[key] = numericEnvKeys.has(key) && /^\d+$/.test(value) ? Number(value) : value;
    sources.set(key, `environment variable ${name}`);
  }
  for (const [name, [section, key]] of Object.entries(nestedEnvKeys)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const current = (raw[section] ?? {}) as Record<string, unknown>;
    raw[section] = { ...current, [key]: value === 'true' ? true : value === 'false' ? false : value };
    sources.set(section, `environment variable ${name}`);
  }
  for (const key of Object.keys(overrides)) sources.set(key, 'overrides');
  return parseConfig({ ...raw, ...overrides }, sources);
}

export function parseConfig(raw: unknown, sources = new Map<string, string>()): Config {
  const result = ConfigSchema.safeParse(raw);
  if (result.success) {
    return { ...result.data, home: path.resolve(result.data.home) };
  }
  const lines = result.error.issues.map((issue) => {
    const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
    const source = sources.get(String(issue.path[0] ?? ''));
    return `  ${key}: ${issue.message}${source ? ` (from ${source})` : ''}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${file} (PROOFPOD_CONFIG): ${coerceError(error).message}`, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${file} is not valid YAML or JSON: ${coerceError(error).message}`, {
      cause: error,
    });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file} must hold a mapping of keys to values`);
  }
  return parsed as Record<string, unknown>;
}
