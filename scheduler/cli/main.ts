#!/usr/bin/env node
/**
 * proofpod's command line, a client of the REST API:
 *   proofpod submit --repo URL --commit SHA --prover coq --target A.v [--wait]
 *   proofpod get|events|evidence|cancel|approve JOB_ID · proofpod list [--state S] · proofpod lanes
 *   proofpod submitters … · proofpod tokens … · proofpod audit   (an admin token)
 *   proofpod logs JOB_ID [--follow] · proofpod attestation JOB_ID [--bundle]
 *   proofpod verify --key PUB.pem --commit SHA FILE   (offline: no scheduler, no token)
 * Reads PROOFPOD_URL (default http://127.0.0.1:8080) and PROOFPOD_TOKEN (default: the local admin token).
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { coerceError } from '../errors.js';
import { finalJobStates, type JobState } from '../job-states.js';
import { MAX_WAIT_SECONDS } from '../api/job-schemas.js';
import { ApiClient, resolveToken, streamText } from './client.js';
import { verifyCommand } from './verify.js';

interface JobView {
  id: string;
  state: JobState;
  stateReason: string;
  lane: string;
  prover: string;
  attempts?: {
    attemptNo: number;
    state: string;
    stateReason: string;
    observedExitCode: number | null;
    observedImageDigest: string | null;
  }[];
}

const usage = `usage:
  proofpod submit --repo URL --commit SHA --prover NAME --target PATH [--target PATH…]
                  [--subdir DIR] [--lane LANE] [--priority N] [--label K=V…] [--idempotency-key KEY]
                  [--promote-to LANE] [--group NAME [--cancel-in-progress]] [--wait] [--timeout SECONDS]
  proofpod get JOB_ID | events JOB_ID | evidence JOB_ID | cancel JOB_ID
  proofpod approve JOB_ID [--note TEXT]      (a token with the approver role)
  proofpod list [--state STATE] [--lane LANE] [--limit N]
  proofpod lanes
  proofpod submitters create ID --trust untrusted|trusted --lanes L1,L2 [--roles admin,approver]
                                [--max-queued N] [--max-running N]          (an admin token, as below)
  proofpod submitters list | show ID | update ID [--trust T] [--lanes …] [--roles …] [--max-queued N] [--max-running N]
  proofpod tokens create SUBMITTER [--label TEXT] | list SUBMITTER | rotate TOKEN_ID | revoke TOKEN_ID
                                (create and rotate print the new secret once: keep it)
  proofpod audit [--limit N]
  proofpod logs JOB_ID [--attempt N] [--container fetch|build|check|reporter] [--follow]
                                (--follow: until the attempt ends, then the job's verdict)
  proofpod attestation JOB_ID [--bundle]    (the signed verdict: a DSSE envelope as JSON, or
                                a Sigstore bundle carrying it, for cosign)
  proofpod verify --key PUBLIC_KEY.pem --commit SHA [--tree SHA] [--expect verified|rejected]
                  [--accept-axioms A,B] ATTESTATION.json
                                (offline; exit 0 when it holds, 1 with the reason when not)
environment: PROOFPOD_URL (default http://127.0.0.1:8080), PROOFPOD_TOKEN (default: $PROOFPOD_HOME/admin-token)`;

/** Exit codes of `submit --wait`: 0 verified, 1 rejected, 2 any other end, 3 still running at the timeout. */
export const verdictExitCode = (state: JobState): number => (state === 'verified' ? 0 : state === 'rejected' ? 1 : 2);

export async function main(
  argv: string[],
  environment: NodeJS.ProcessEnv = process.env,
  out: (s: string) => void = (s) => void process.stdout.write(s),
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      repo: { type: 'string' },
      commit: { type: 'string' },
      subdir: { type: 'string' },
      prover: { type: 'string' },
      target: { type: 'string', multiple: true },
      lane: { type: 'string' },
      priority: { type: 'string' },
      label: { type: 'string', multiple: true },
      'idempotency-key': { type: 'string' },
      'promote-to': { type: 'string' },
      group: { type: 'string' },
      'cancel-in-progress': { type: 'boolean', default: false },
      note: { type: 'string' },
      wait: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '3600' },
      state: { type: 'string' },
      limit: { type: 'string' },
      trust: { type: 'string' },
      lanes: { type: 'string' },
      roles: { type: 'string' },
      'max-queued': { type: 'string' },
      'max-running': { type: 'string' },
      attempt: { type: 'string' },
      container: { type: 'string' },
      follow: { type: 'boolean', default: false },
      key: { type: 'string' },
      bundle: { type: 'boolean', default: false },
      tree: { type: 'string' },
      expect: { type: 'string' },
      'accept-axioms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, id, argument] = positionals;
  if (values.help || !command) {
    out(`${usage}\n`);
    return values.help ? 0 : 64;
  }
  // Offline: needs neither a scheduler nor a token.
  if (command === 'verify') return verifyCommand(id, values, out);
  const client = new ApiClient((environment.PROOFPOD_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, ''), resolveToken(environment));
  const print = (value: unknown) => out(`${JSON.stringify(value, null, 2)}\n`);
  const needId = () => pathArgument(id, `${command} needs a job id`);
  switch (command) {
    case 'submit': {
      const missing = (['repo', 'commit', 'prover', 'target'] as const).filter((k) => values[k] === undefined);
      if (missing.length) throw new Error(`submit needs --${missing.join(', --')}\n${usage}`);
      const job = await client.request<JobView>('POST', '/v1/jobs', {
        source: { url: values.repo, commit: values.commit, ...(values.subdir ? { subdirectory: values.subdir } : {}) },
        prover: values.prover,
        targets: values.target,
        lane: values.lane ?? 'verify',
        ...(values.priority ? { priority: Number(values.priority) } : {}),
        ...(values.label
          ? { labels: Object.fromEntries(values.label.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) }
          : {}),
        ...(values['idempotency-key'] ? { idempotencyKey: values['idempotency-key'] } : {}),
        ...(values['promote-to'] ? { promoteTo: values['promote-to'] } : {}),
        ...(values.group ? { concurrency: { group: values.group, cancelInProgress: values['cancel-in-progress'] } } : {}),
      });
      out(`submitted ${job.id} (${job.prover} in lane ${job.lane})\n`);
      if (!values.wait) return 0;
      return waitForVerdict(client, job.id, Number(values.timeout) * 1000, out);
    }
    case 'get':
      print(await client.request('GET', `/v1/jobs/${needId()}`));
      return 0;
    case 'events':
      print(await client.request('GET', `/v1/jobs/${needId()}/events`));
      return 0;
    case 'evidence':
      print(await client.request('GET', `/v1/jobs/${needId()}/evidence`));
      return 0;
    case 'attestation':
      out(`${JSON.stringify(await client.request('GET', `/v1/jobs/${needId()}/attestation${values.bundle ? '?format=bundle' : ''}`))}\n`);
      return 0;
    case 'cancel':
      print(await client.request('POST', `/v1/jobs/${needId()}/cancel`));
      return 0;
    case 'approve':
      print(await client.request('POST', `/v1/jobs/${needId()}/approve`, values.note ? { note: values.note } : undefined));
      return 0;
    case 'lanes': {
      const { lanes } = await client.request<{
        lanes: {
          name: string;
          trust: string;
          concurrency: number;
          queued: number;
          awaitingApproval: number;
          running: number;
          oldestWaitingSeconds: number | null;
        }[];
      }>('GET', '/v1/lanes');
      out('lane      trust      running/cap  queued  awaiting  oldest wait\n');
      for (const l of lanes) {
        const wait = l.oldestWaitingSeconds === null ? '-' : `${Math.round(l.oldestWaitingSeconds)} s`;
        out(
          `${l.name.padEnd(9)} ${l.trust.padEnd(10)} ${`${l.running}/${l.concurrency}`.padEnd(12)} ${String(l.queued).padEnd(7)} ${String(l.awaitingApproval).padEnd(9)} ${wait}\n`,
        );
      }
      return 0;
    }
    case 'list': {
      const query = new URLSearchParams();
      if (values.state) query.set('state', values.state);
      if (values.lane) query.set('lane', values.lane);
      if (values.limit) query.set('limit', values.limit);
      const page = await client.request<{ jobs: JobView[] }>('GET', `/v1/jobs?${query}`);
      for (const job of page.jobs)
        out(`${job.id}  ${job.state.padEnd(10)} ${job.prover.padEnd(9)} ${job.lane.padEnd(8)} ${job.stateReason}\n`);
      return 0;
    }
    case 'logs': {
      const query = new URLSearchParams();
      if (values.attempt) query.set('attempt', values.attempt);
      if (values.container) query.set('container', values.container);
      if (values.follow) query.set('follow', 'true');
      await streamText(client, `/v1/jobs/${needId()}/logs?${query}`, out);
      if (!values.follow) return 0;
      // The attempt has ended: its job's verdict, once the job has one (a retry may still follow).
      return waitForVerdict(client, needId(), Number(values.timeout) * 1000, out);
    }
    case 'submitters':
      return submitters(client, id, argument, values, print);
    case 'tokens':
      return tokens(client, id, argument, values, print);
    case 'audit': {
      const { entries } = await client.request<{
        entries: { id: number; at: string; actor: string; action: string; subject: string; detail: unknown }[];
      }>('GET', `/v1/audit?limit=${encodeURIComponent(values.limit ?? '100')}`);
      for (const e of entries) out(`${e.at}  ${e.actor.padEnd(12)} ${e.action.padEnd(18)} ${e.subject}  ${JSON.stringify(e.detail)}\n`);
      return 0;
    }
    default:
      throw new Error(`unknown command ${command}\n${usage}`);
  }
}

/** A positional argument as a path segment of a route; `missing` says what the command lacks. */
function pathArgument(value: string | undefined, missing: string): string {
  if (!value) throw new Error(`${missing}\n${usage}`);
  return encodeURIComponent(value);
}

interface ManagementOptions {
  trust?: string;
  lanes?: string;
  roles?: string;
  'max-queued'?: string;
  'max-running'?: string;
  label?: string[];
}

const list = (value: string | undefined) => value?.split(',').filter(Boolean);
const quota = (value: string | undefined) => (value === undefined ? undefined : value === 'none' ? null : Number(value));

/** The fields given on the command line, as the API names them; the API validates them. */
function submitterFields(values: ManagementOptions): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    trust: values.trust,
    lanes: list(values.lanes),
    roles: list(values.roles),
    maxQueued: quota(values['max-queued']),
    maxRunning: quota(values['max-running']),
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

async function submitters(
  client: ApiClient,
  action: string | undefined,
  id: string | undefined,
  values: ManagementOptions,
  print: (value: unknown) => void,
): Promise<number> {
  const needId = () => pathArgument(id, `submitters ${action} needs a submitter id`);
  switch (action) {
    case 'create':
      needId();
      print(await client.request('POST', '/v1/submitters', { id, ...submitterFields(values) }));
      return 0;
    case 'list':
      print(await client.request('GET', '/v1/submitters'));
      return 0;
    case 'show':
      print(await client.request('GET', `/v1/submitters/${needId()}`));
      return 0;
    case 'update':
      print(await client.request('PATCH', `/v1/submitters/${needId()}`, submitterFields(values)));
      return 0;
    default:
      throw new Error(`submitters needs create, list, show or update\n${usage}`);
  }
}

async function tokens(
  client: ApiClient,
  action: string | undefined,
  id: string | undefined,
  values: ManagementOptions,
  print: (value: unknown) => void,
): Promise<number> {
  const needId = (what: string) => pathArgument(id, `tokens ${action} needs a ${what}`);
  switch (action) {
    case 'create':
      print(await client.request('POST', `/v1/submitters/${needId('submitter id')}/tokens`, { label: values.label?.join(',') ?? '' }));
      return 0;
    case 'list':
      print(await client.request('GET', `/v1/submitters/${needId('submitter id')}/tokens`));
      return 0;
    case 'rotate':
      print(await client.request('POST', `/v1/tokens/${needId('token id')}/rotate`));
      return 0;
    case 'revoke':
      print(await client.request('POST', `/v1/tokens/${needId('token id')}/revoke`));
      return 0;
    default:
      throw new Error(`tokens needs create, list, rotate or revoke\n${usage}`);
  }
}

/** Prints each state change until the job ends, then the verdict and its reason. */
async function waitForVerdict(client: ApiClient, id: string, timeoutMs: number, out: (s: string) => void): Promise<number> {
  const until = Date.now() + timeoutMs;
  let last = '';
  let state: string | undefined;
  for (;;) {
    // The scheduler answers as soon as the state moves on from the one seen (docs/api.md, "Waiting for a job").
    const waitSeconds = Math.min(MAX_WAIT_SECONDS, Math.max(1, Math.ceil((until - Date.now()) / 1000)));
    const query = state === undefined ? '' : `?waitSeconds=${waitSeconds}&whileState=${state}`;
    const job = await client.request<JobView>('GET', `/v1/jobs/${id}${query}`);
    state = job.state;
    const attempt = job.attempts?.at(-1);
    const line = `${job.state}${attempt ? ` (attempt ${attempt.attemptNo}: ${attempt.state})` : ''}`;
    if (line !== last) out(`  ${new Date().toISOString().slice(11, 19)}  ${line}\n`);
    last = line;
    if (finalJobStates.has(job.state)) {
      out(`${job.state.toUpperCase()}: ${job.stateReason}\n`);
      if (attempt?.observedExitCode !== null && attempt?.observedExitCode !== undefined) {
        out(`  check exit code ${attempt.observedExitCode}, image ${attempt.observedImageDigest ?? 'unknown'}\n`);
      }
      return verdictExitCode(job.state);
    }
    if (Date.now() > until) {
      out(`still ${job.state} after ${Math.round(timeoutMs / 1000)} s; follow it with: proofpod get ${id}\n`);
      return 3;
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`proofpod: ${coerceError(error).message}\n`);
      process.exit(2);
    },
  );
}
