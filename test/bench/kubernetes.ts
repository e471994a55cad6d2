/**
 * Kubernetes-substrate benchmark (`npm run bench:k8s`, control plane up): Job + credential Secret
 * pairs per second through proofpod next to a plain loop that creates the same objects — the Job
 * from the real builders, then the Secret owned by it — with the same concurrency (the configured
 * `dispatch.launchConcurrency`) and the same client (apiClients, with the substrate's settings), in
 * rounds that alternate which goes first; then submit → Job created for a burst over the API. No
 * pod is made (createNamespace says why): what is measured is the create path, i.e. the scheduler,
 * its Postgres and the API server. Results replace the marked section of docs/benchmarks.md.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { profileForLane } from '../../contract/profile.js';
import { startProofpod } from '../../scheduler/app.js';
import { mintSecret } from '../../scheduler/auth/secrets.js';
import { type Config, parseConfig } from '../../scheduler/config.js';
import { type Sql, connect } from '../../scheduler/database/connect.js';
import { startEmbeddedPostgres } from '../../scheduler/database/embedded.js';
import { buildAttemptJob, buildCredentialSecret, credentialSecretName } from '../../scheduler/pod/job-spec.js';
import { buildAttemptPod } from '../../scheduler/pod/pod-spec.js';
import { defaultProverProfiles } from '../../scheduler/prover-profiles.js';
import { wakeDispatchers } from '../../scheduler/store/notify.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import { apiClients, clientSettings } from '../../scheduler/substrate/kubernetes/client.js';
import { loadKubeConfig } from '../../scheduler/substrate/kubernetes/kubernetes-substrate.js';
import { deleteNamespaceAndWait } from '../support/cluster.js';
import { machine, percentile, writeSection, runAsMain } from './report.js';

const JOBS = Number(process.env.BENCH_K8S_JOBS ?? 200);
const ROUNDS = Number(process.env.BENCH_K8S_ROUNDS ?? 4);
const SUBMITTER = 'bench';

/** CPU time, in ms per pair, of the control plane's processes, the embedded Postgres and this process (scheduler or plain loop). */
export interface CpuPerPair {
  controlPlane: number;
  postgres: number;
  bench: number;
}

export interface KubernetesFigures {
  jobs: number;
  concurrency: number;
  /** Pairs per second of each round, in the order run; `first` says which went first; CPU where /proc has it. */
  rounds: { first: 'plain' | 'proofpod'; plain: number; proofpod: number; plainCpu?: CpuPerPair; proofpodCpu?: CpuPerPair }[];
  /** The burst through the API: submit → Job created, sorted, in ms, and its pairs per second. */
  latencies: number[];
  burstPerSecond: number;
}

/**
 * `rounds` rounds of both create paths for `jobs` attempts each, then one burst of `jobs`
 * submissions, against the local control plane, on an embedded Postgres of its own. Every round
 * has namespaces of its own, deleted before the next, so each starts on an equally empty cluster.
 * Also the tiny run of test/cluster/bench-kubernetes.test.ts.
 */
export async function measureKubernetes(jobs: number, rounds = 1): Promise<KubernetesFigures> {
  const clusterDir = process.env.PROOFPOD_CLUSTER_DIR ?? path.join(homedir(), '.cache/proofpod/cluster');
  const kubeconfig = path.join(clusterDir, 'admin.kubeconfig');
  const kc = loadKubeConfig(kubeconfig);
  const base = `pp-bench-${Date.now().toString(36)}`;
  const home = await mkdtemp(path.join(tmpdir(), 'proofpod-bench-k8s-'));
  const log = pino({ level: 'warn' });
  const pg = await startEmbeddedPostgres(home, log);
  const cpu = cpuSampler(clusterDir, Number((await readFile(path.join(home, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]));
  const configFor = (namespace: string) =>
    parseConfig({
      databaseUrl: pg.url,
      port: 0,
      home,
      logLevel: 'warn',
      substrate: 'kubernetes',
      kubernetes: { kubeconfig, namespace, imagePullGraceSeconds: 3600, pendingLimitSeconds: 3600 },
      lanes: [{ name: 'verify', trust: 'trusted', concurrency: 10_000 }],
      // Attempts never finish here (no pod is made; nor could one pull its image): no quota may hold the burst back.
      quotas: { maxQueued: 1_000_000, maxRunning: 1_000_000 },
      // No `dispatch` here: its default intervals, so notifications and full claims start the cycles, as in production.
      provers: defaultProverProfiles.map((p) => ({ ...p, image: 'bench.invalid/unmapped:1' })),
    });
  const admin = apiClients(kc, clientSettings(configFor(base)));
  const sql = connect(pg.url, { max: 2 });
  try {
    // Migrated by a first start; the submitter every round's jobs belong to.
    await (await startProofpod({ ...configFor(base), substrate: 'none' }, { log, print: () => {} })).stop();
    const token = await createSubmitterToken(sql, { id: SUBMITTER, trust: 'trusted', lanes: ['*'], roles: [] });
    const results: KubernetesFigures['rounds'] = [];
    for (let round = 0; round < rounds; round++) {
      const first = round % 2 === 0 ? 'plain' : 'proofpod';
      const result = { first, plain: 0, proofpod: 0 } as KubernetesFigures['rounds'][number];
      for (const which of first === 'plain' ? ['plain', 'proofpod'] : ['proofpod', 'plain']) {
        const namespace = `${base}-${round}-${which}`;
        await createNamespace(admin.core, namespace);
        const config = configFor(namespace);
        const measured = which === 'plain' ? await plainLoop(config, kc, jobs, cpu) : await proofpodDrain(config, sql, jobs, cpu);
        if (which === 'plain') {
          result.plain = measured.rate;
          result.plainCpu = measured.cpu;
        } else {
          result.proofpod = measured.rate;
          result.proofpodCpu = measured.cpu;
        }
        await deleteNamespace(admin.core, namespace);
      }
      process.stderr.write(`round ${round + 1}: plain ${result.plain.toFixed(1)}, proofpod ${result.proofpod.toFixed(1)} pairs/s\n`);
      results.push(result);
    }
    const namespace = `${base}-burst`;
    await createNamespace(admin.core, namespace);
    const burst = await proofpodBurst(configFor(namespace), sql, token, jobs);
    await deleteNamespace(admin.core, namespace);
    return { jobs, concurrency: configFor(base).dispatch.launchConcurrency, rounds: results, ...burst };
  } finally {
    await sql.end();
    admin.close();
    await pg.stop();
    await rm(home, { recursive: true, force: true });
  }
}

/**
 * The plain loop: `launchConcurrency` workers, each creating an attempt's Job (buildAttemptPod and
 * buildAttemptJob, as the substrate does) and then its Secret owned by it, with a client made as the
 * substrate makes its own. Pairs per second from the first request to the last answer.
 */
async function plainLoop(config: Config, kc: KubeConfig, jobs: number, cpu: CpuSampler): Promise<Measured> {
  const clients = apiClients(kc, clientSettings(config));
  const namespace = config.kubernetes.namespace;
  const lane = config.lanes[0]!;
  const profile = profileForLane(config.provers.find((p) => p.name === 'coq')!, lane);
  const deadlineAt = new Date(Date.now() + lane.maxDeadlineSeconds * 1000);
  let next = 0;
  const cpuBefore = cpu();
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: config.dispatch.launchConcurrency }, async () => {
        while (next < jobs) {
          next++;
          const jobId = randomUUID();
          const name = `pp-${jobId.replaceAll('-', '')}-1`;
          const secretName = credentialSecretName(name);
          const pod = buildAttemptPod(
            {
              name,
              jobId,
              attemptNo: 1,
              source: { url: 'https://example.org/p.git', commit: 'c'.repeat(40), subdirectory: null },
              targets: ['A.v'],
              goals: [],
              deadlineAt,
              uploadUrl: `http://127.0.0.1:9/v1/attempts/${randomUUID()}/evidence`,
              credentialSecretName: secretName,
            },
            profile,
            lane,
            config.pod,
          );
          const body = buildAttemptJob(pod, deadlineAt, {
            namespace,
            owner: undefined,
            ttlSecondsAfterFinished: config.kubernetes.ttlSecondsAfterFinished,
          });
          const job = await clients.batch.createNamespacedJob({ namespace, body });
          const secret = buildCredentialSecret(
            secretName,
            { ...job, metadata: { ...job.metadata, uid: job.metadata!.uid! } },
            mintSecret('ppu'),
          );
          await clients.core.createNamespacedSecret({ namespace, body: secret });
        }
      }),
    );
    const rate = jobs / ((performance.now() - start) / 1000);
    return { rate, cpu: perPair(cpuBefore, cpu(), jobs) };
  } finally {
    clients.close();
  }
}

/**
 * Through proofpod, from a queue: `jobs` jobs queued straight in the table (the API, which the plain
 * loop has no equivalent of, is left out) once a scheduler is up with its Postgres connections open,
 * as a running one has them. Pairs per second from its first claim to the last attempt marked
 * running (its Job and Secret created).
 */
async function proofpodDrain(config: Config, sql: Sql, jobs: number, cpu: CpuSampler): Promise<Measured> {
  const proofpod = await startProofpod(config, { log: pino({ level: 'warn' }), print: () => {} });
  let cpuBefore: CpuSample | undefined;
  let cpuAfter: CpuSample | undefined;
  try {
    await Promise.all(Array.from({ length: 10 }, () => proofpod.sql`select pg_sleep(0.05)`));
    cpuBefore = cpu();
    await sql`
      insert into jobs (submitter_id, source_url, commit_sha, prover, targets, lane, priority, request_hash, state, state_actor)
      select ${SUBMITTER}, 'https://example.org/p.git', ${'c'.repeat(40)}, 'coq', ${['A.v']}, 'verify', 0, '\\x00', 'queued', ${SUBMITTER}
      from generate_series(1, ${jobs})`;
    await wakeDispatchers(sql, 'verify');
    await allStarted(sql, jobs);
    cpuAfter = cpu();
  } finally {
    await proofpod.stop();
  }
  const [span] = await sql<{ seconds: number }[]>`
    select extract(epoch from (max(a.started_at) - min(a.created_at)))::float8 as seconds from attempts a where a.state = 'running'`;
  await endRound(sql);
  return { rate: jobs / Number(span!.seconds), cpu: perPair(cpuBefore, cpuAfter, jobs) };
}

/** Through proofpod's API: `jobs` submissions from 10 clients at once. Submit → Job created per job, and pairs per second. */
async function proofpodBurst(
  config: Config,
  sql: Sql,
  token: string,
  jobs: number,
): Promise<{ latencies: number[]; burstPerSecond: number }> {
  const proofpod = await startProofpod(config, { log: pino({ level: 'warn' }), print: () => {} });
  try {
    const body = JSON.stringify({
      source: { url: 'https://example.org/p.git', commit: 'c'.repeat(40) },
      prover: 'coq',
      targets: ['A.v'],
      lane: 'verify',
    });
    await Promise.all(
      Array.from({ length: 10 }, async (_, worker) => {
        for (let i = worker; i < jobs; i += 10) {
          const response = await fetch(`${proofpod.url}/v1/jobs`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body,
          });
          if (response.status !== 201) throw new Error(`submission answered ${response.status}: ${await response.text()}`);
        }
      }),
    );
    await allStarted(sql, jobs);
  } finally {
    await proofpod.stop();
  }
  const rows = await sql<{ ms: number }[]>`
    select extract(epoch from (a.started_at - j.created_at))::float8 * 1000 as ms
    from jobs j join attempts a on a.job_id = j.id where a.state = 'running'`;
  const [span] = await sql<{ seconds: number }[]>`
    select extract(epoch from (max(a.started_at) - min(j.created_at)))::float8 as seconds
    from jobs j join attempts a on a.job_id = j.id where a.state = 'running'`;
  await endRound(sql);
  return { latencies: rows.map((r) => Number(r.ms)).sort((a, b) => a - b), burstPerSecond: jobs / Number(span!.seconds) };
}

async function allStarted(sql: Sql, jobs: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from attempts where state = 'running'`;
    if (row!.n >= jobs) return;
    if (Date.now() > deadline) throw new Error(`only ${row!.n} of ${jobs} Jobs were created`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The round's jobs and attempts end (cancelled, leases gone), so no later scheduler watches them. */
async function endRound(sql: Sql): Promise<void> {
  await sql`update attempts set state = 'cancelled', state_reason = 'bench round over', state_actor = 'bench', finished_at = now() where state in ('dispatching', 'running')`;
  await sql`update jobs set state = 'cancelled', state_reason = 'bench round over', state_actor = 'bench', finished_at = now() where state not in ('verified', 'rejected', 'error', 'timed_out', 'cancelled')`;
  await sql`delete from claims`;
}

/**
 * A namespace for one measure, without the attempt pods' ServiceAccount: the Job controller's pod
 * creates are refused by admission, so no pod is made, bound or reported on. That downstream work
 * is the same for both paths, is not the create path, and on these two cores costs more than the
 * creates themselves (35–40 ms of CPU per pod in the 10 s after, mostly the process-kubelet and the
 * API server); inside a measure it would slow whichever path it overlaps most.
 */
async function createNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } });
}

/** Deletes a namespace and waits until it is gone, so its Jobs, pods and Secrets load no later round. */
async function deleteNamespace(core: CoreV1Api, name: string): Promise<void> {
  if (!(await deleteNamespaceAndWait(core, name, 180_000))) process.stderr.write(`namespace ${name} still there after 180 s; going on\n`);
}

interface Measured {
  rate: number;
  cpu: CpuPerPair | undefined;
}
interface CpuSample {
  controlPlane: number;
  postgres: number;
  bench: number;
}
type CpuSampler = () => CpuSample | undefined;

/**
 * CPU seconds so far of the control plane (the processes up.sh recorded), the embedded Postgres
 * (the postmaster, its live backends, and those that exited) and this process; undefined without
 * /proc. Clock ticks are taken as 100 a second, Linux's USER_HZ.
 */
function cpuSampler(clusterDir: string, postmaster: number): CpuSampler {
  const stat = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    } catch {
      return undefined;
    }
  };
  const seconds = (fields: string[] | undefined, children = false) =>
    fields ? (Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0)) / 100 : 0;
  const pidOf = (name: string) => {
    try {
      return Number(readFileSync(path.join(clusterDir, 'pids', `${name}.pid`), 'utf8'));
    } catch {
      return Number.NaN;
    }
  };
  return () => {
    try {
      const controlPlane = ['kube-apiserver', 'etcd', 'kube-controller-manager', 'process-kubelet']
        .map((name) => seconds(stat(pidOf(name))))
        .reduce((a, b) => a + b, 0);
      let postgres = seconds(stat(postmaster), true);
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const fields = stat(Number(entry));
        if (fields && Number(fields[1]) === postmaster) postgres += seconds(fields);
      }
      const self = process.cpuUsage();
      return { controlPlane, postgres, bench: (self.user + self.system) / 1e6 };
    } catch {
      return undefined;
    }
  };
}

function perPair(before: CpuSample | undefined, after: CpuSample | undefined, pairs: number): CpuPerPair | undefined {
  if (!before || !after) return undefined;
  const ms = (key: keyof CpuSample) => ((after[key] - before[key]) * 1000) / pairs;
  return { controlPlane: ms('controlPlane'), postgres: ms('postgres'), bench: ms('bench') };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** CPU per pair of each path, the median of the rounds per component; none without /proc. */
function cpuRows(f: KubernetesFigures): string[] {
  const rows: string[] = [];
  for (const [label, key] of [
    ['plain loop', 'plainCpu'],
    ['proofpod', 'proofpodCpu'],
  ] as const) {
    const samples = f.rounds.map((r) => r[key]).filter((c): c is CpuPerPair => c !== undefined);
    if (samples.length === 0) continue;
    const of = (part: keyof CpuPerPair) => median(samples.map((c) => c[part]));
    const total = of('controlPlane') + of('postgres') + of('bench');
    rows.push(
      `| CPU per pair, ${label}: control plane / Postgres / this process (scheduler or loop), medians | ${of('controlPlane').toFixed(1)} / ${of('postgres').toFixed(1)} / ${of('bench').toFixed(1)} ms (${total.toFixed(1)} ms) |`,
    );
  }
  return rows;
}

async function main() {
  const f = await measureKubernetes(JOBS, ROUNDS);
  const plain = median(f.rounds.map((r) => r.plain));
  const proofpod = median(f.rounds.map((r) => r.proofpod));
  const ratios = f.rounds.map((r) => r.proofpod / r.plain);
  const result = [
    `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench:k8s\` on ${machine()}, against the local control plane (kube-apiserver 1.37.2, etcd 3.6.16 with --unsafe-no-fsync, the process-kubelet) and an embedded Postgres, all on the same cores; ${f.jobs} attempts per measure, ${f.concurrency} creates in flight (\`dispatch.launchConcurrency\`), ${f.rounds.length} rounds alternating which path goes first.`,
    '',
    '| measure | value |',
    '|---|---|',
    `| plain loop: Job + Secret pairs/s (same builders, same client, ${f.concurrency} in flight), median of rounds | ${plain.toFixed(1)} (${f.rounds.map((r) => r.plain.toFixed(1)).join(', ')}) |`,
    `| proofpod from a queue: pairs/s (claim, credential, Job, Secret, mark running), median of rounds | ${proofpod.toFixed(1)} (${f.rounds.map((r) => r.proofpod.toFixed(1)).join(', ')}) |`,
    `| proofpod / plain, per round | ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)}) |`,
    ...cpuRows(f),
    `| proofpod, ${f.jobs} submissions from 10 clients over the API: pairs/s | ${f.burstPerSecond.toFixed(1)} |`,
    `| proofpod, that burst: submit → Job created p50 | ${percentile(f.latencies, 50).toFixed(0)} ms |`,
    `| proofpod, that burst: submit → Job created p99 | ${percentile(f.latencies, 99).toFixed(0)} ms |`,
  ].join('\n');
  process.stdout.write(`${result}\n`);
  await writeSection('kubernetes', result);
}

runAsMain(import.meta.url, main);
