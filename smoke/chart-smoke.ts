/**
 * The chart smoke (docs/testing.md): installs the Helm chart into a fresh namespace of whatever cluster
 * KUBECONFIG names, submits two proofs in parallel and one broken proof, checks the verdicts and the
 * invariants of the chosen substrate, uninstalls, and checks that nothing of the release is left.
 * The same program runs on kind in GitHub Actions and on the local control plane here.
 *
 *   node dist/smoke/chart-smoke.js --substrate kubernetes|local [--namespace NS] [--release NAME]
 *                                  [--set key=value]... [--timeout SECONDS] [--keep]
 *
 * --keep leaves a failed release and its namespace in place for inspection.
 *
 * Environment:
 *   KUBECONFIG              the cluster (required)
 *   HELM                    the helm binary (default: helm on PATH)
 *   PROOFPOD_SMOKE_URL      the scheduler's API as this machine reaches it; without it the smoke
 *                           runs `kubectl port-forward` to the Service
 *   PROOFPOD_SMOKE_DATABASE_URL  an external Postgres the scheduler pods can reach (put into the
 *                           release's database Secret); without it the chart's evaluation Postgres
 *   PROOFPOD_SMOKE_SOURCE   git URL and commit of a repository holding test/fixtures/proofs, as
 *   PROOFPOD_SMOKE_COMMIT   the task pods reach it (on kind: the GitHub repository at the pushed
 *                           commit); without them a file:// repository made here, which only pods
 *                           that share this machine's filesystem (the process-kubelet) can fetch,
 *                           made under PROOFPOD_SMOKE_SOURCE_ROOT (default: the temporary directory)
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { BatchV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { createPublicKey } from 'node:crypto';
import { ApiClient } from '../scheduler/cli/client.js';
import { ATTESTATION_KEYS_PATH } from '../scheduler/api/routes/attestation-keys.js';
import { describePublicKey } from '../scheduler/attestation/signing-key.js';
import { verifyAttestation } from '../scheduler/attestation/verify-attestation.js';
import type { JobView } from '../scheduler/api/job-schemas.js';
import { containers, labels, volumeNames } from '../contract/pod.js';
import { projectRoot } from '../scheduler/substrate/create.js';

const run = promisify(execFile);
const fixtures = 'test/fixtures/proofs';
const log = (message: string) => process.stdout.write(`[smoke] ${message}\n`);

class SmokeFailure extends Error {
  override readonly name = 'SmokeFailure';
}
function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new SmokeFailure(message);
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new SmokeFailure(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

interface Source {
  url: string;
  commit: string;
  /** Where the fixtures are inside that repository. */
  subdirectory: string;
  cleanup: () => void;
}

/** The proof fixtures as a git repository: the one named by the environment, or a local one. */
async function proofSource(): Promise<Source> {
  const url = process.env.PROOFPOD_SMOKE_SOURCE;
  const commit = process.env.PROOFPOD_SMOKE_COMMIT;
  if (url && commit) return { url, commit, subdirectory: fixtures, cleanup: () => {} };
  check(!url && !commit, 'set both PROOFPOD_SMOKE_SOURCE and PROOFPOD_SMOKE_COMMIT, or neither');
  const dir = mkdtempSync(path.join(process.env.PROOFPOD_SMOKE_SOURCE_ROOT ?? tmpdir(), 'proofpod-smoke-source-'));
  // The fetch container runs as an unprivileged uid that must read it.
  chmodSync(dir, 0o755);
  const from = path.join(projectRoot(), fixtures);
  for (const name of readdirSync(from)) writeFileSync(path.join(dir, name), readFileSync(path.join(from, name)));
  const env = {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'smoke',
    GIT_AUTHOR_EMAIL: 'smoke@example.invalid',
    GIT_COMMITTER_NAME: 'smoke',
    GIT_COMMITTER_EMAIL: 'smoke@example.invalid',
  };
  const git = async (args: string[]) => (await run('git', ['-c', 'init.defaultBranch=main', ...args], { cwd: dir, env })).stdout.trim();
  await git(['init', '--quiet']);
  await git(['add', '--all']);
  await git(['commit', '--quiet', '-m', 'proofpod smoke fixtures']);
  return {
    url: pathToFileURL(dir).href,
    commit: await git(['rev-parse', 'HEAD']),
    subdirectory: '',
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** `kubectl port-forward` to the Service; resolves with the local URL. */
async function portForward(namespace: string, service: string, port: number): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn('kubectl', ['-n', namespace, 'port-forward', `service/${service}`, `0:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new SmokeFailure(`kubectl port-forward printed no port in 30 s: ${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${match[1]}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) => reject(new SmokeFailure(`cannot run kubectl port-forward (is kubectl on PATH?): ${error.message}`)));
    child.on('exit', (code) => reject(new SmokeFailure(`kubectl port-forward exited with ${code}: ${output}`)));
  });
  return { url, child };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      substrate: { type: 'string' },
      namespace: { type: 'string' },
      release: { type: 'string', default: 'smoke' },
      set: { type: 'string', multiple: true, default: [] },
      timeout: { type: 'string', default: '600' },
      keep: { type: 'boolean', default: false },
    },
  });
  const substrate = values.substrate;
  check(substrate === 'kubernetes' || substrate === 'local', '--substrate must be kubernetes or local');
  check(process.env.KUBECONFIG, 'KUBECONFIG must name the cluster to smoke');
  const namespace = values.namespace ?? `proofpod-smoke-${substrate}`;
  const release = values.release;
  const timeoutMs = Number(values.timeout) * 1000;
  const helm = process.env.HELM ?? 'helm';
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG);
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const started = Date.now();
  const cleanups: (() => Promise<void> | void)[] = [];

  try {
    log(`namespace ${namespace}, release ${release}, substrate ${substrate}`);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    if (!values.keep)
      cleanups.push(() =>
        core.deleteNamespace({ name: namespace }).then(
          () => undefined,
          () => undefined,
        ),
      );

    const source = await proofSource();
    cleanups.push(source.cleanup);

    const fullname = release.includes('proofpod') ? release : `${release}-proofpod`;
    const databaseUrl = process.env.PROOFPOD_SMOKE_DATABASE_URL;
    if (databaseUrl) {
      await core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: `${fullname}-database` }, stringData: { url: databaseUrl } },
      });
    }
    const chart = path.join(projectRoot(), 'chart');
    const sets = [
      `substrate=${substrate}`,
      `rbac.create=${substrate === 'kubernetes'}`,
      `postgresql.enabled=${!databaseUrl}`,
      ...(substrate === 'local' ? ['replicaCount=1', 'image.repository=proofpod/local'] : []),
      ...(source.url.startsWith('file:') ? ['scheduler.extraConfig.pod.allowFileSources=true'] : []),
      ...values.set,
    ];
    log(`helm install ${release} ${sets.map((s) => `--set ${s}`).join(' ')}`);
    const install = await run(
      helm,
      [
        'install',
        release,
        chart,
        '-n',
        namespace,
        '--wait',
        '--timeout',
        `${Math.ceil(timeoutMs / 1000)}s`,
        ...sets.flatMap((s) => ['--set', s]),
      ],
      {
        maxBuffer: 16 << 20,
      },
    ).catch((error: { stderr?: string; message: string }) => {
      throw new SmokeFailure(`helm install failed: ${error.stderr || error.message}`);
    });
    log(`installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    check(install.stdout.includes('PROOFPOD_TOKEN'), 'NOTES.txt does not tell how to get the token');
    let uninstalled = false;
    cleanups.unshift(async () => {
      if (!uninstalled && !values.keep) await run(helm, ['uninstall', release, '-n', namespace, '--wait']).catch(() => undefined);
    });

    // What the chart rendered for RBAC, by kind, in this namespace.
    const roles = (await rbac.listNamespacedRole({ namespace })).items.length;
    const bindings = (await rbac.listNamespacedRoleBinding({ namespace })).items.length;
    if (substrate === 'kubernetes')
      check(roles === 1 && bindings === 1, `expected 1 Role and 1 RoleBinding, found ${roles} and ${bindings}`);
    else check(roles === 0 && bindings === 0, `the local substrate needs no RBAC, found ${roles} Roles and ${bindings} RoleBindings`);

    const secret = await core.readNamespacedSecret({ name: `${fullname}-admin-token`, namespace });
    const token = Buffer.from(secret.data?.token ?? '', 'base64').toString('utf8');
    check(token.length >= 32, 'the admin token Secret holds no token');

    let baseUrl = process.env.PROOFPOD_SMOKE_URL;
    if (!baseUrl) {
      const forward = await portForward(namespace, fullname, 8080);
      cleanups.unshift(() => void forward.child.kill());
      baseUrl = forward.url;
    }
    const api = new ApiClient(baseUrl.replace(/\/$/, ''), token);
    await until('the scheduler to be ready', timeoutMs, async () => ((await fetch(`${baseUrl}/readyz`)).ok ? true : undefined));

    const sub = source.subdirectory || undefined;
    const submit = (prover: string, target: string) =>
      api.request<JobView>('POST', '/v1/jobs', {
        source: { url: source.url, commit: source.commit, ...(sub ? { subdirectory: sub } : {}) },
        prover,
        targets: [target],
        lane: 'verify',
      });
    const jobs = await Promise.all([submit('coq', 'Arith.v'), submit('metamath', 'setmm-prop.mm'), submit('coq', 'Broken.v')]);
    const expected = ['verified', 'verified', 'rejected'];
    log(`submitted ${jobs.map((j) => j.id).join(', ')}`);

    // The two good proofs must run at the same time, not one after the other.
    let overlapped = false;
    const ended = await until('three verdicts', timeoutMs, async () => {
      const views = await Promise.all(jobs.map((j) => api.request<JobView>('GET', `/v1/jobs/${j.id}`)));
      if (views[0]!.state === 'running' && views[1]!.state === 'running') overlapped = true;
      return views.every((v) => v.finishedAt) ? views : undefined;
    });
    for (const [i, view] of ended.entries()) {
      check(
        view.state === expected[i],
        `job ${view.id} (${view.prover} ${view.targets[0]}) ended ${view.state} (${view.stateReason}), expected ${expected[i]}`,
      );
    }
    log(
      `verdicts: ${ended.map((v) => `${v.targets[0]} ${v.state}`).join(', ')}${overlapped ? '; the two good proofs ran in parallel' : ''}`,
    );
    for (const view of ended) {
      const attempt = view.attempts?.at(-1);
      check(attempt?.observedImageDigest, `job ${view.id}: no observed image digest (the verdict must bind to what ran)`);
      check(attempt.observedExitCode !== null, `job ${view.id}: no observed exit code`);
    }

    // Each verdict is signed with the key of the chart's Secret, and verifies with its public key alone.
    const signing = await core.readNamespacedSecret({ name: `${fullname}-signing-key`, namespace });
    const publicKey = createPublicKey(Buffer.from(signing.data?.['signing-key.pem'] ?? '', 'base64').toString('utf8'));
    const listed = (await (await fetch(`${baseUrl}${ATTESTATION_KEYS_PATH}`)).json()) as { keys: { keyid: string }[] };
    check(
      listed.keys.some((k) => k.keyid === describePublicKey(publicKey).keyid),
      `${ATTESTATION_KEYS_PATH} does not list the key of the chart's Secret`,
    );
    for (const view of ended) {
      const envelope = await api.request<unknown>('GET', `/v1/jobs/${view.id}/attestation`);
      const verified = verifyAttestation(JSON.stringify(envelope), publicKey, {
        commit: source.commit,
        verdict: view.state as 'verified' | 'rejected',
      });
      check(verified.ok, `job ${view.id}: its attestation does not verify with the chart's key: ${verified.ok ? '' : verified.reason}`);
    }
    log(`3 attestations verify with the public key of ${fullname}-signing-key`);

    const selector = `${labels.managedBy}=proofpod,${labels.release}=${fullname}`;
    const attemptJobs = (await batch.listNamespacedJob({ namespace, labelSelector: selector })).items;
    if (substrate === 'kubernetes') {
      check(attemptJobs.length >= 3, `expected a Job per attempt, found ${attemptJobs.length}`);
      const owner = await core.readNamespacedConfigMap({ name: `${fullname}-owner`, namespace });
      for (const job of attemptJobs) checkAttemptJob(job, owner.metadata!.uid!, `${fullname}-task`);
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
      for (const pod of pods) checkAttemptPod(pod);
      const scheduler = (await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=scheduler' })).items;
      check(
        scheduler.length > 0 && scheduler.every((p) => p.spec?.serviceAccountName === fullname),
        "the scheduler does not run as the chart's ServiceAccount",
      );
      log(`${attemptJobs.length} Jobs and ${pods.length} pods hold the task-pod invariants`);
    } else {
      check(attemptJobs.length === 0, `the local substrate must create no Jobs, found ${attemptJobs.length}`);
      const all = (await batch.listNamespacedJob({ namespace })).items.length;
      check(all === 0, `found ${all} Jobs in the namespace of a local-substrate release`);
    }

    log('helm uninstall');
    if (databaseUrl) await core.deleteNamespacedSecret({ name: `${fullname}-database`, namespace });
    await run(helm, ['uninstall', release, '-n', namespace, '--wait', '--timeout', `${Math.ceil(timeoutMs / 1000)}s`]);
    uninstalled = true;
    // Garbage collection removes the Jobs (owned by the release's owner object), their pods and the
    // credential Secrets (owned by their Jobs) after the uninstall returns.
    let left: string[] = [];
    await until('the release to be gone', timeoutMs, async () => {
      const [j, p, s] = await Promise.all([
        batch.listNamespacedJob({ namespace }),
        core.listNamespacedPod({ namespace }),
        core.listNamespacedSecret({ namespace }),
      ]);
      left = [
        ...j.items.map((x) => `Job/${x.metadata?.name}`),
        ...p.items.map((x) => `Pod/${x.metadata?.name}`),
        ...s.items.map((x) => `Secret/${x.metadata?.name}`),
      ];
      return left.length === 0 ? true : undefined;
    }).catch((error: unknown) => {
      throw new SmokeFailure(`${String(error)}; left: ${left.join(', ')}`);
    });
    log(`nothing of the release is left; passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    await diagnose(core, namespace).catch((e: unknown) => log(`could not gather diagnostics: ${String(e)}`));
    throw error;
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

/** What an operator would look at first: every pod's phase and container states, and the events. */
async function diagnose(core: CoreV1Api, namespace: string): Promise<void> {
  for (const pod of (await core.listNamespacedPod({ namespace })).items) {
    const states = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].map((c) => {
      const state = c.state?.terminated
        ? `terminated ${c.state.terminated.reason ?? ''} exit ${c.state.terminated.exitCode}`
        : c.state?.waiting
          ? `waiting ${c.state.waiting.reason ?? ''} ${c.state.waiting.message ?? ''}`
          : 'running';
      return `${c.name}: ${state}`;
    });
    log(`pod ${pod.metadata?.name}: ${pod.status?.phase} ${pod.status?.reason ?? ''} [${states.join('; ')}]`);
  }
  const events = (await core.listNamespacedEvent({ namespace })).items.slice(-30);
  for (const event of events)
    log(`event ${event.involvedObject.kind}/${event.involvedObject.name}: ${event.reason} ${event.message ?? ''}`);
}

function checkAttemptJob(job: V1Job, ownerUid: string, taskServiceAccount: string): void {
  const name = job.metadata?.name;
  check(job.spec?.backoffLimit === 0, `Job ${name}: backoffLimit is not 0`);
  check(job.spec?.activeDeadlineSeconds, `Job ${name}: no activeDeadlineSeconds`);
  check(job.spec?.ttlSecondsAfterFinished !== undefined, `Job ${name}: no ttlSecondsAfterFinished`);
  const owners = job.metadata?.ownerReferences ?? [];
  check(
    owners.length === 1 && owners[0]!.uid === ownerUid && owners[0]!.kind === 'ConfigMap',
    `Job ${name}: not owned by the release's owner object`,
  );
  const spec = job.spec?.template.spec;
  check(spec?.automountServiceAccountToken === false, `Job ${name}: its pod would mount a service-account token`);
  check(spec.serviceAccountName === taskServiceAccount, `Job ${name}: runs as ${spec.serviceAccountName}, not ${taskServiceAccount}`);
  check(
    spec.restartPolicy === 'Never' && spec.enableServiceLinks === false && !spec.shareProcessNamespace,
    `Job ${name}: pod settings are not the contract's`,
  );
}

function checkAttemptPod(pod: V1Pod): void {
  const name = pod.metadata?.name;
  const spec = pod.spec!;
  check(
    spec.securityContext?.runAsNonRoot && spec.securityContext.seccompProfile?.type === 'RuntimeDefault',
    `pod ${name}: not non-root with RuntimeDefault seccomp`,
  );
  check(
    !spec.volumes?.some((v) => v.projected?.sources?.some((s) => s.serviceAccountToken)),
    `pod ${name}: has a service-account token volume`,
  );
  for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
    const sc = container.securityContext;
    check(
      sc?.allowPrivilegeEscalation === false && sc.capabilities?.drop?.includes('ALL'),
      `pod ${name} container ${container.name}: not restricted`,
    );
    check(
      !(container.env ?? []).some((e) => e.valueFrom?.secretKeyRef),
      `pod ${name} container ${container.name}: a Secret in its environment`,
    );
  }
  const credentialMounts = [...(spec.initContainers ?? []), ...spec.containers].filter((c) =>
    (c.volumeMounts ?? []).some((m) => spec.volumes?.find((v) => v.name === m.name)?.secret),
  );
  check(
    credentialMounts.length === 1 && credentialMounts[0]!.name === 'reporter',
    `pod ${name}: the credential reaches ${credentialMounts.map((c) => c.name).join(', ') || 'no container'}, not the reporter alone`,
  );
  // Proof code runs in the build container alone, as a uid of its own, without write access to the source.
  const build = spec.initContainers?.find((c) => c.name === containers.build);
  if (build) {
    check(
      build.securityContext?.runAsUser !== undefined && build.securityContext.runAsUser !== spec.securityContext?.runAsUser,
      `pod ${name}: the build runs as the uid of our programs`,
    );
    check(build.volumeMounts?.find((m) => m.name === volumeNames.source)?.readOnly === true, `pod ${name}: the build can write the source`);
    check(
      !build.volumeMounts?.some((m) => m.name === volumeNames.results || m.name === volumeNames.meta),
      `pod ${name}: the build mounts results or meta`,
    );
  }
  const check_ = spec.containers.find((c) => c.name === containers.check);
  check(
    check_?.volumeMounts?.every((m) => m.readOnly || m.name === volumeNames.results || m.mountPath === '/tmp') === true,
    `pod ${name}: the check container writes more than its results and scratch space`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`[smoke] FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
