/**
 * Kubernetes-substrate benchmark (`npm run bench:k8s`, control plane up): submit → Job created
 * (p50/p99) and Jobs created per second through proofpod, next to a plain create loop with the same
 * client in the same run. The prover image is deliberately unmapped, so the process-kubelet binds
 * the pods but starts no sandbox: what is measured is the scheduler and the API server.
 * Results replace the marked section of docs/benchmarks.md.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, homedir, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { startProofpod } from '../../scheduler/app.js';
import { parseConfig } from '../../scheduler/config.js';
import { connect } from '../../scheduler/database/connect.js';
import { startEmbeddedPostgres } from '../../scheduler/database/embedded.js';
import { defaultProverProfiles } from '../../scheduler/prover-profiles.js';
import { createSubmitterToken } from '../../scheduler/store/submitters/submitters.js';
import { percentile, writeSection } from './report.js';

const JOBS = Number(process.env.BENCH_K8S_JOBS ?? 200);

export interface KubernetesFigures {
  jobs: number;
  plainPerSecond: number;
  proofpodPerSecond: number;
  /** Submit → Job created, sorted, in ms. */
  latencies: number[];
}

/**
 * Both measures for `jobs` Jobs against the local control plane, on an embedded Postgres of its
 * own. Also the tiny run of test/cluster/bench-kubernetes.test.ts.
 */
export async function measureKubernetes(jobs: number): Promise<KubernetesFigures> {
  const JOBS = jobs;
  const kubeconfig = path.join(process.env.PROOFPOD_CLUSTER_DIR ?? path.join(homedir(), '.cache/proofpod/cluster'), 'admin.kubeconfig');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const namespace = `pp-bench-${Date.now().toString(36)}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const home = await mkdtemp(path.join(tmpdir(), 'proofpod-bench-k8s-'));
  const log = pino({ level: 'warn' });
  const pg = await startEmbeddedPostgres(home, log);
  try {
    // 1. A plain loop: the same client creating suspended Jobs one after another.
    const plainStart = performance.now();
    for (let i = 0; i < JOBS; i++) {
      await batch.createNamespacedJob({
        namespace,
        body: {
          metadata: { name: `plain-${i}` },
          spec: { suspend: true, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'none' }] } } },
        },
      });
    }
    const plainPerSecond = JOBS / ((performance.now() - plainStart) / 1000);

    // 2. Through proofpod: submissions over the API, one Job per attempt, as fast as it dispatches.
    const config = parseConfig({
      databaseUrl: pg.url,
      port: 0,
      home,
      logLevel: 'warn',
      substrate: 'kubernetes',
      kubernetes: { kubeconfig, namespace, imagePullGraceSeconds: 3600, pendingLimitSeconds: 3600 },
      lanes: [{ name: 'verify', trust: 'trusted', concurrency: 10_000 }],
      // Attempts never finish here (the image is unmapped): no quota may hold the burst back.
      quotas: { maxQueued: 1_000_000, maxRunning: 1_000_000 },
      dispatch: { intervalSeconds: 0.2, batchSize: 50 },
      provers: defaultProverProfiles.map((p) => ({ ...p, image: 'bench.invalid/unmapped:1' })),
    });
    const sql = connect(pg.url, { max: 2 });
    const proofpod = await startProofpod(config, { log, print: () => {} });
    const token = await createSubmitterToken(sql, { id: 'bench', trust: 'trusted', lanes: ['*'], roles: [] });
    const body = JSON.stringify({
      source: { url: 'https://example.org/p.git', commit: 'c'.repeat(40) },
      prover: 'coq',
      targets: ['A.v'],
      lane: 'verify',
    });
    const submitStart = performance.now();
    await Promise.all(
      Array.from({ length: 10 }, async (_, worker) => {
        for (let i = worker; i < JOBS; i += 10) {
          await fetch(`${proofpod.url}/v1/jobs`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body,
          });
        }
      }),
    );
    let latencies: number[] = [];
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const rows = await sql<{ ms: number }[]>`
        select extract(epoch from (a.started_at - j.created_at)) * 1000 as ms
        from jobs j join attempts a on a.job_id = j.id where a.started_at is not null`;
      latencies = rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
      if (latencies.length === JOBS) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const [span] = await sql<{ seconds: number }[]>`
      select extract(epoch from (max(a.started_at) - min(j.created_at))) as seconds from jobs j join attempts a on a.job_id = j.id`;
    const throughElapsed = (performance.now() - submitStart) / 1000;
    await proofpod.stop();
    await sql.end();
    if (latencies.length !== JOBS) throw new Error(`only ${latencies.length} of ${JOBS} Jobs were created`);
    return { jobs: JOBS, plainPerSecond, proofpodPerSecond: JOBS / Number(span?.seconds ?? throughElapsed), latencies };
  } finally {
    await core.deleteNamespace({ name: namespace }).catch(() => {});
    await pg.stop();
    await rm(home, { recursive: true, force: true });
  }
}

async function main() {
  const f = await measureKubernetes(JOBS);
  const result = [
    `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench:k8s\` on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, against the local control plane (kube-apiserver 1.37.2, etcd 3.6.16 with --unsafe-no-fsync) and an embedded Postgres, all on the same 2 cores.`,
    '',
    '| measure | value |',
    '|---|---|',
    `| plain create loop: Jobs/s (one client, sequential, ${f.jobs} suspended Jobs) | ${f.plainPerSecond.toFixed(1)} |`,
    `| proofpod: Jobs/s (${f.jobs} submissions from 10 clients; Job + credential Secret per attempt) | ${f.proofpodPerSecond.toFixed(1)} |`,
    `| proofpod: submit → Job created p50 | ${percentile(f.latencies, 50).toFixed(0)} ms |`,
    `| proofpod: submit → Job created p99 | ${percentile(f.latencies, 99).toFixed(0)} ms |`,
  ].join('\n');
  process.stdout.write(`${result}\n`);
  await writeSection('kubernetes', result);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench failed: ${String(error instanceof Error ? error.stack : error)}\n`);
    process.exit(1);
  });
}
