import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { V1Container } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256 } from '../contract/canonical-json.js';
import { type ConfigInput, parseConfig } from '../scheduler/config.js';
import { DuplicateError } from '../scheduler/errors.js';
import { mounts, programPath, volumeNames } from '../contract/pod.js';
import { buildAttemptPod } from '../scheduler/pod/pod-spec.js';
import { ImagePullError, defaultImagePaths, imageDigest, resolveImage } from '../scheduler/substrate/local/images.js';
import { LocalSubstrate } from '../scheduler/substrate/local/local-substrate.js';
import { quantityBytes, quantityCores } from '../scheduler/quantity.js';
import {
  ContainerConfigError,
  containerLimits,
  limitedCommand,
  sandboxArgs,
  unsandboxedCommand,
} from '../scheduler/substrate/local/sandbox.js';
import type { AttemptLaunch, AttemptStatus } from '../scheduler/substrate/substrate.js';
import { buildProbe, writeProbePrograms } from './support/local-programs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const TASK_IMAGE = 'test/task:1';
const PROVER_IMAGE = 'test/prover:1';
const SANDBOX_UIDS = { first: 300_000, count: 64 };
/** Sandboxes run as uids of the attempt's own when the tests run as root, else as the tester. */
const asRoot = process.getuid?.() === 0;
const RUN_AS = 65532;
const BUILD_RUN_AS = 65533;
const probeProfile = {
  name: 'probe',
  image: PROVER_IMAGE,
  versionCommand: ['true'],
  build: { command: buildProbe() },
  check: { input: 'source' as const, command: ['true'] },
};

function testConfig(local: ConfigInput['local'] = {}) {
  return parseConfig({
    substrate: 'local',
    pod: { taskImage: TASK_IMAGE, runAsUser: RUN_AS, buildRunAsUser: BUILD_RUN_AS },
    local: { sandboxUids: SANDBOX_UIDS, ...local },
    lanes: [{ name: 'intake', trust: 'untrusted', concurrency: 4 }],
    provers: [probeProfile],
  });
}

/** The host uids of an attempt's containers: its own pair when root, else the tester's. */
async function hostUids(dir: string): Promise<{ programs: number; build: number }> {
  if (!asRoot) return { programs: process.getuid!(), build: process.getuid!() };
  const uids = JSON.parse(await readFile(path.join(dir, 'uids.json'), 'utf8'));
  return { programs: uids.programs.uid, build: uids.build.uid };
}

/** Uploads the fake reporters post, and any request at all (the prover must never get through). */
interface Received {
  path: string;
  // biome-ignore lint/suspicious/noExplicitAny: the fake upload endpoint reads arbitrary JSON fields
  body: Record<string, any>;
}

let server: Server;
let port: number;
const received: Received[] = [];
let work: string;
let programsRoot: string;
const logLines: string[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
const substrates: LocalSubstrate[] = [];
const stateDirs = new WeakMap<LocalSubstrate, string>();
const attemptDir = (substrate: LocalSubstrate, name: string) => path.join(stateDirs.get(substrate)!, name);

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: text ? (JSON.parse(text) as Received['body']) : {} });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  work = await mkdtemp(path.join(tmpdir(), 'proofpod-local-'));
  // The sandbox uid must be able to reach the state directory to bind the volumes in it.
  await chmod(work, 0o755);
  programsRoot = await writeProbePrograms();
});

afterAll(async () => {
  for (const substrate of substrates) {
    // Attempts a failed test left behind; a substrate whose state directory is unusable holds none.
    for (const { name } of await substrate.list().catch(() => [])) await substrate.stop(name);
  }
  await new Promise((resolve) => server.close(resolve));
  await rm(work, { recursive: true, force: true });
  await rm(programsRoot, { recursive: true, force: true });
});

function newSubstrate(options: { local?: ConfigInput['local']; programs?: string; stateDir?: string } = {}) {
  const stateDir = options.stateDir ?? path.join(work, `state-${randomBytes(4).toString('hex')}`);
  const substrate = new LocalSubstrate({
    config: testConfig(options.local),
    stateDir,
    programsRoot: options.programs ?? programsRoot,
    log,
  });
  substrates.push(substrate);
  stateDirs.set(substrate, stateDir);
  return substrate;
}

function newLaunch(overrides: Partial<AttemptLaunch> = {}): AttemptLaunch {
  const jobId = randomUUID();
  const attemptId = randomUUID();
  return {
    name: `pp-${jobId.replaceAll('-', '')}-1`,
    attemptId,
    jobId,
    attemptNo: 1,
    lane: 'intake',
    prover: 'probe',
    laneConfig: testConfig().lanes[0]!,
    profile: testConfig().provers[0]!,
    source: { url: 'https://example.invalid/proofs.git', commit: 'a'.repeat(40), subdirectory: null },
    targets: [`port=${port}`, 'exit=3', `marker=${randomUUID()}`],
    goals: [],
    deadlineAt: new Date(Date.now() + 600_000),
    uploadCredential: `credential-${randomBytes(8).toString('hex')}`,
    uploadUrl: `http://127.0.0.1:${port}/v1/attempts/${attemptId}/evidence`,
    ...overrides,
  };
}

async function waitFor(
  substrate: LocalSubstrate,
  name: string,
  done: (status: AttemptStatus | undefined) => boolean,
  timeoutMs = 15_000,
): Promise<AttemptStatus | undefined> {
  const until = Date.now() + timeoutMs;
  let status = await substrate.observe(name);
  while (!done(status)) {
    if (Date.now() > until) throw new Error(`attempt ${name} still ${JSON.stringify(status)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
    status = await substrate.observe(name);
  }
  return status;
}

const ended = (s: AttemptStatus | undefined) => s !== undefined && s.phase !== 'pending' && s.phase !== 'running';

async function waitForFile(file: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (
    !(await stat(file).then(
      () => true,
      () => false,
    ))
  ) {
    if (Date.now() > until) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Host pids whose command line or environment holds `marker`: bubblewrap and what runs inside it. */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    for (const file of ['cmdline', 'environ']) {
      const text = await readFile(`/proc/${entry}/${file}`, 'utf8').catch(() => '');
      if (text.includes(marker)) {
        found.push(Number(entry));
        break;
      }
    }
  }
  return found;
}

const uploadFor = (launch: AttemptLaunch) => received.find((r) => r.path === new URL(launch.uploadUrl).pathname);

describe('sandboxArgs and unsandboxedCommand', () => {
  const pod = buildAttemptPod(
    {
      name: 'pp-table-1',
      jobId: 'job',
      attemptNo: 1,
      source: { url: 'https://example.invalid/x.git', commit: 'b'.repeat(40), subdirectory: null },
      targets: ['a.v'],
      goals: [],
      deadlineAt: new Date('2030-01-01T00:00:00Z'),
      uploadUrl: 'http://127.0.0.1:1/upload',
      credentialSecretName: 'pp-table-1-upload',
    },
    testConfig().provers[0]!,
    testConfig().lanes[0]!,
    testConfig().pod,
  );
  const volumes = Object.fromEntries((pod.spec.volumes ?? []).map((v) => [v.name, `/state/pp-table-1/volumes/${v.name}`]));
  const container = (name: string) => [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === name)!;
  const plan = (name: string) => ({
    container: container(name),
    image: { binds: ['/usr', '/etc/ssl'], symlinks: [{ path: '/bin', target: 'usr/bin' }] },
    volumes,
    programsRoot: '/srv/proofpod',
    terminationLog: `/state/pp-table-1/termination/${name}`,
    hostname: 'pp-table-1',
    runAs: name === 'build' ? { uid: BUILD_RUN_AS, gid: BUILD_RUN_AS } : { uid: RUN_AS, gid: RUN_AS },
    statusFd: 3,
  });
  const credentialDir = volumes[volumeNames.credential]!;
  /** The operands of every occurrence of `flag`, joined by a space. */
  const pairs = (args: string[], flag: string, arity = 2) =>
    args.flatMap((a, i) => (a === flag ? [args.slice(i + 1, i + 1 + arity).join(' ')] : []));

  it.each([
    { name: 'fetch', net: false, pid1: false, credential: false },
    { name: 'build', net: true, pid1: false, credential: false },
    { name: 'check', net: true, pid1: true, credential: false },
    { name: 'reporter', net: false, pid1: false, credential: true },
  ])('$name: own network namespace $net, as PID 1 $pid1, credential bound $credential', ({ name, net, pid1, credential }) => {
    const args = sandboxArgs(plan(name));
    expect(args.includes('--unshare-net')).toBe(net);
    expect(args.includes('--as-pid-1')).toBe(pid1);
    expect(args.some((a) => a.startsWith(credentialDir))).toBe(credential);
    for (const flag of ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--die-with-parent', '--new-session', '--clearenv']) {
      expect(args, flag).toContain(flag);
    }
    expect(pairs(args, '--cap-drop', 1)).toEqual(['ALL']);
    const uid = name === 'build' ? BUILD_RUN_AS : RUN_AS;
    expect([pairs(args, '--uid', 1), pairs(args, '--gid', 1)]).toEqual([[`${uid}`], [`${uid}`]]);
    // The root is made read-only after every mount point in it exists, and the command follows.
    const dash = args.indexOf('--');
    expect(args.slice(dash - 2, dash)).toEqual(['--remount-ro', '/']);
    expect(args.slice(dash + 1)).toEqual(name === 'build' ? container('build').command : ['node', programPath(name as 'fetch')]);
    expect(args.indexOf('--clearenv')).toBeLessThan(args.indexOf('--setenv'));
    expect(pairs(args, '--bind')).toContain(`/state/pp-table-1/termination/${name} /dev/termination-log`);
    expect(pairs(args, '--ro-bind')).toEqual(
      expect.arrayContaining([
        '/usr /usr',
        '/srv/proofpod/dist /opt/proofpod/dist',
        '/srv/proofpod/node_modules /opt/proofpod/node_modules',
      ]),
    );
    expect(pairs(args, '--symlink')).toEqual(['usr/bin /bin']);
  });

  it('binds volume mounts as the pod spec says, read-only where readOnly', () => {
    const check = sandboxArgs(plan('check'));
    expect(pairs(check, '--bind')).toEqual(
      expect.arrayContaining([`${volumes.results} ${mounts.results}`, `${volumes['tmp-check']} /tmp`]),
    );
    expect(pairs(check, '--ro-bind')).toEqual(
      expect.arrayContaining([
        `${volumes.meta} ${mounts.meta}`,
        `${volumes.source} ${mounts.source}`,
        `${volumes.artifacts} ${mounts.artifacts}`,
      ]),
    );
    expect(pairs(check, '--bind')).not.toContain(`${volumes.meta} ${mounts.meta}`);
    const build = sandboxArgs(plan('build'));
    expect(pairs(build, '--ro-bind')).toContain(`${volumes.source} ${mounts.source}`);
    expect(pairs(build, '--bind')).toEqual(
      expect.arrayContaining([`${volumes.artifacts} ${mounts.artifacts}`, `${volumes['tmp-build']} /tmp`]),
    );
    expect(build.join(' ')).not.toContain(volumes.results);
    expect(build.join(' ')).not.toContain(volumes.meta);
    const reporter = sandboxArgs(plan('reporter'));
    expect(pairs(reporter, '--ro-bind')).toEqual(
      expect.arrayContaining([`${credentialDir} ${mounts.credential}`, `${volumes.results} ${mounts.results}`]),
    );
    expect(pairs(reporter, '--bind')).not.toContain(`${volumes.results} ${mounts.results}`);
    // Each container has its own scratch space.
    expect(pairs(reporter, '--bind')).toContain(`${volumes['tmp-reporter']} /tmp`);
    expect(reporter.join(' ')).not.toContain(volumes['tmp-check']);
  });

  it('makes the parents of mount points 0755, as an image has them, before binding anything there', () => {
    const args = sandboxArgs(plan('reporter'));
    const dirs = args.flatMap((a, i) => (a === '--dir' && args[i - 2] === '--perms' && args[i - 1] === '0755' ? [args[i + 1]] : []));
    expect(dirs).toEqual(['/etc', '/opt', '/var', '/workspace', '/opt/proofpod', '/var/run', '/var/run/proofpod']);
    expect(args.indexOf('--dir')).toBeLessThan(args.indexOf('--ro-bind'));
  });

  it('runs a privileged container with every capability, the host /proc and no user namespace (the process-kubelet only)', () => {
    const privileged = { ...plan('fetch'), container: { ...container('fetch'), securityContext: { privileged: true } } };
    const args = sandboxArgs(privileged);
    for (const flag of ['--unshare-user', '--disable-userns', '--unshare-pid', '--cap-drop', '--uid', '--proc'])
      expect(args, flag).not.toContain(flag);
    expect(pairs(args, '--cap-add', 1)).toEqual(['ALL']);
    expect(pairs(args, '--bind')).toContain('/proc /proc');
    // Attempt pods never ask for it.
    for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) expect(c.securityContext?.privileged).not.toBe(true);
  });

  it('sets only the container environment and PATH', () => {
    const args = sandboxArgs(plan('check'));
    const names = pairs(args, '--setenv').map((p) => p.split(' ')[0]);
    expect(names.sort()).toEqual(['PATH', ...(container('check').env ?? []).map((e) => e.name)].sort());
  });

  it('refuses what it cannot provide', () => {
    const withSecretEnv = {
      ...plan('reporter'),
      container: { ...container('reporter'), env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] },
    };
    expect(() => sandboxArgs(withSecretEnv)).toThrow(ContainerConfigError);
    const { [volumeNames.source]: _source, ...withoutSource } = volumes;
    const unknownVolume = { ...plan('check'), volumes: withoutSource };
    expect(() => sandboxArgs(unknownVolume)).toThrow(/volume source/);
  });

  it('without a sandbox, passes mounts by environment and runs the programs from the programs root', () => {
    const { command, args, env } = unsandboxedCommand(plan('reporter'));
    expect([command, ...args]).toEqual(['node', '/srv/proofpod/dist/pod-programs/reporter.mjs']);
    expect(env).toMatchObject({
      PROOFPOD_MOUNT_META: volumes.meta,
      PROOFPOD_MOUNT_RESULTS: volumes.results,
      PROOFPOD_MOUNT_CREDENTIAL: credentialDir,
      PROOFPOD_MOUNT_TMP: volumes['tmp-reporter'],
      PROOFPOD_TERMINATION_LOG: '/state/pp-table-1/termination/reporter',
    });
    expect(env.PROOFPOD_MOUNT_SOURCE).toBeUndefined();
    expect(unsandboxedCommand(plan('check')).env.PROOFPOD_MOUNT_CREDENTIAL).toBeUndefined();
    expect(unsandboxedCommand(plan('build')).env).toMatchObject({
      PROOFPOD_MOUNT_SOURCE: volumes.source,
      PROOFPOD_MOUNT_ARTIFACTS: volumes.artifacts,
    });
  });
});

describe('containerLimits', () => {
  const defaults = { memoryBytes: 8 * 2 ** 30, processes: 512, fileSizeBytes: 2 ** 31 };
  const container = (limits?: Record<string, string>): V1Container => ({ name: 'check', ...(limits ? { resources: { limits } } : {}) });
  it.each<[string, V1Container, { secondsLeft?: number; ownUid: boolean }, object]>([
    ['the defaults, no deadline, a shared uid', container(), { ownUid: false }, { memoryBytes: 8 * 2 ** 30, fileSizeBytes: 2 ** 31 }],
    [
      "the lane's memory limit, and processes with a uid of its own",
      container({ memory: '512Mi' }),
      { ownUid: true },
      { memoryBytes: 512 * 2 ** 20, processes: 512, fileSizeBytes: 2 ** 31 },
    ],
    [
      'CPU seconds for the cores until the deadline',
      container({ cpu: '2', memory: '1G' }),
      { secondsLeft: 100.5, ownUid: false },
      { memoryBytes: 1e9, cpuSeconds: 201, fileSizeBytes: 2 ** 31 },
    ],
    [
      'at least one core',
      container({ cpu: '500m' }),
      { secondsLeft: 10, ownUid: false },
      { memoryBytes: 8 * 2 ** 30, cpuSeconds: 10, fileSizeBytes: 2 ** 31 },
    ],
  ])('%s', (_name, c, options, expected) => {
    expect(containerLimits(c, defaults, options)).toEqual(expected);
  });

  it('runs the command under prlimit with exactly those limits', () => {
    expect(limitedCommand({ memoryBytes: 100, fileSizeBytes: 200, processes: 3, cpuSeconds: 4 }, 'bwrap', ['--', 'x'])).toEqual({
      command: 'prlimit',
      args: ['--data=100', '--fsize=200', '--nproc=3', '--cpu=4', '--', 'bwrap', '--', 'x'],
    });
  });

  it('reads Kubernetes quantities', () => {
    expect([quantityBytes('2Gi'), quantityBytes('1.5k'), quantityBytes(1000), quantityBytes('lots')]).toEqual([
      2 ** 31,
      1500,
      1000,
      undefined,
    ]);
    expect([quantityCores('250m'), quantityCores('2'), quantityCores(1.5), quantityCores('x')]).toEqual([0.25, 2, 1.5, undefined]);
  });
});

describe('images', () => {
  it('maps every image to the host userland by default, recreating merged-/usr links', async () => {
    const layout = await resolveImage('anything:1', undefined);
    expect(layout.binds).toContain('/usr');
    expect(layout.binds).not.toContain('/bin');
    expect(layout.symlinks).toContainEqual({ path: '/bin', target: 'usr/bin' });
    expect(layout.digest).toBe(`sha256:${sha256(canonicalJson({ image: 'anything:1', paths: defaultImagePaths })).toString('hex')}`);
    expect(layout.digest).toBe(imageDigest('anything:1', defaultImagePaths));
    expect(layout.digest).not.toBe((await resolveImage('other:1', undefined)).digest);
  });

  it('refuses an image the configured mapping lacks, or a mapped path the host lacks', async () => {
    const images = { 'a:1': { paths: ['/usr'] }, 'b:1': { paths: ['/usr', '/no/such/dir'] } };
    expect((await resolveImage('a:1', images)).binds).toEqual(['/usr']);
    await expect(resolveImage('c:1', images)).rejects.toThrow(new ImagePullError('image c:1 has no mapping in local.images'));
    await expect(resolveImage('b:1', images)).rejects.toThrow(/\/no\/such\/dir/);
  });
});

describe('LocalSubstrate', () => {
  it('runs fetch and build first, then check and reporter, each in a sandbox of its own', async () => {
    const substrate = newSubstrate();
    const launch = newLaunch();
    await substrate.start(launch);
    const dir = attemptDir(substrate, launch.name);
    const uids = await hostUids(dir);
    const status = await waitFor(substrate, launch.name, ended);
    const digest = imageDigest(PROVER_IMAGE, defaultImagePaths);
    expect(status).toEqual({
      phase: 'finished',
      check: { exitCode: 3, imageDigest: digest },
      build: { exitCode: 0, imageDigest: digest },
      timings: ['fetch', 'build', 'check', 'reporter'].map((name) => ({
        name,
        startedAt: expect.any(String),
        finishedAt: expect.any(String),
      })),
    });

    const upload = uploadFor(launch);
    expect(upload, 'the reporter reached the scheduler over the host network').toBeDefined();
    const { probe, ...reporter } = upload!.body;
    // The init containers ran before the check, and their volume writes reached it.
    expect(probe.sawFetch).toBe(`read:fetched ${launch.source.url}`);
    // The build: another uid, no network, no credential, no results, the source read-only, a PID
    // namespace with nothing of ours in it (its init, the build driver, node, and what /proc shows).
    expect(probe.build).toMatchObject({
      uid: BUILD_RUN_AS,
      capEff: '0000000000000000',
      credential: 'ENOENT',
      results: 'ENOENT',
      writeSource: 'EROFS',
    });
    expect(probe.build.network).toMatch(/^failed /);
    expect(probe.build.pids).toBeLessThanOrEqual(4);
    expect(probe.build.env).toEqual(['HOME', 'LANG', 'OLDPWD', 'PATH', 'PWD', 'TMPDIR']);
    expect(received.some((r) => r.path === '/from-build')).toBe(false);
    // The check: no network, no credential, non-root without capabilities, PID 1, read-only root and inputs.
    expect(probe.network).toMatch(/^failed /);
    expect(probe.writeSource).toBe('EROFS');
    expect(probe.writeArtifacts).toBe('EROFS');
    expect(received.some((r) => r.path === '/from-prover')).toBe(false);
    expect(probe.credential).toBe('ENOENT');
    expect(probe.uid).toBe(RUN_AS);
    expect(probe.capEff).toBe('0000000000000000');
    expect(probe.pid).toBe(1);
    expect(probe.writeOpt).toBe('EROFS');
    expect(probe.writeEtc).toBe('EROFS');
    expect(probe.writeMeta).toBe('EROFS');
    expect(probe.env).not.toContain('PROOFPOD_UPLOAD_URL');
    // The reporter alone holds the credential, and cannot see the others' /tmp or write results.
    expect(reporter.credential).toBe(`read:${launch.uploadCredential}`);
    expect(reporter.checkTmp).toBe('ENOENT');
    expect(reporter.buildTmp).toBe('ENOENT');
    expect(reporter.writeResults).toBe('EROFS');
    expect(reporter.uid).toBe(RUN_AS);

    expect(await readFile(path.join(dir, 'logs', 'check.log'), 'utf8')).toContain('check: probed');
    expect(await readFile(path.join(dir, 'logs', 'fetch.log'), 'utf8')).toContain('fetch: fetching');
    const podJson = await readFile(path.join(dir, 'pod.json'), 'utf8');
    expect(JSON.parse(podJson).metadata.name).toBe(launch.name);
    expect(podJson).not.toContain(launch.uploadCredential);
    const credential = await stat(path.join(dir, 'volumes', volumeNames.credential, 'credential'));
    expect(credential.mode & 0o777).toBe(0o400);
    expect(credential.uid).toBe(uids.programs);
    // The build wrote the artifacts as its own uid; the source is our programs'.
    expect((await stat(path.join(dir, 'volumes', volumeNames.artifacts, 'tree'))).uid).toBe(uids.build);
    expect((await stat(path.join(dir, 'volumes', volumeNames.source, 'fetched.txt'))).uid).toBe(uids.programs);
    if (asRoot) expect(uids.build).not.toBe(uids.programs);

    await substrate.stop(launch.name);
    expect(await substrate.observe(launch.name)).toBeUndefined();
  });

  it('reports a refused source, and neither build nor check runs', async () => {
    const substrate = newSubstrate();
    const launch = newLaunch({ source: { url: 'https://example.invalid/refuse.git', commit: 'c'.repeat(40), subdirectory: null } });
    await substrate.start(launch);
    expect(await waitFor(substrate, launch.name, ended)).toEqual({
      phase: 'source_refused',
      reason: 'source refused: a symlink leaves the workspace',
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await substrate.observe(launch.name)).toMatchObject({ phase: 'source_refused' });
    const dir = attemptDir(substrate, launch.name);
    await expect(stat(path.join(dir, 'logs', 'check.log'))).rejects.toThrow(/ENOENT/);
    await expect(stat(path.join(dir, 'logs', 'build.log'))).rejects.toThrow(/ENOENT/);
    expect(uploadFor(launch)).toBeUndefined();

    const crash = newLaunch({ source: { url: 'https://example.invalid/crash.git', commit: 'c'.repeat(40), subdirectory: null } });
    await substrate.start(crash);
    expect(await waitFor(substrate, crash.name, ended)).toEqual({
      phase: 'infrastructure_failure',
      reason: 'fetch failed with exit code 2: fetch: the disk is on fire',
    });
  });

  it('fails an attempt whose image has no mapping, before anything runs', async () => {
    const substrate = newSubstrate({ local: { images: { [TASK_IMAGE]: { paths: [...defaultImagePaths] } } } });
    const launch = newLaunch();
    await substrate.start(launch);
    const status = await waitFor(substrate, launch.name, ended);
    expect(status?.phase).toBe('infrastructure_failure');
    expect(status).toMatchObject({ reason: expect.stringMatching(new RegExp(`^ErrImagePull: image ${PROVER_IMAGE} has no mapping`)) });
    const dir = attemptDir(substrate, launch.name);
    expect(await readdir(path.join(dir, 'logs'))).toEqual([]);
  });

  it("fails an attempt whose sandbox cannot start, with bubblewrap's reason", async () => {
    const programs = await writeProbePrograms({ withNodeModules: false });
    try {
      const substrate = newSubstrate({ programs });
      const launch = newLaunch();
      await substrate.start(launch);
      const status = await waitFor(substrate, launch.name, ended);
      expect(status).toMatchObject({
        phase: 'infrastructure_failure',
        reason: expect.stringContaining('StartError: the sandbox could not start: bwrap:'),
      });
      expect(status).toMatchObject({ reason: expect.stringContaining('node_modules') });
    } finally {
      await rm(programs, { recursive: true, force: true });
    }
  });

  it('refuses to start the same name twice', async () => {
    const substrate = newSubstrate();
    const launch = newLaunch({ targets: [`port=${port}`, 'sleep=30'] });
    await substrate.start(launch);
    await expect(substrate.start(launch)).rejects.toThrow(DuplicateError);
    // Another instance on the same state (a restarted scheduler) sees it too.
    const again = newSubstrate({ stateDir: stateDirs.get(substrate)! });
    await expect(again.start(launch)).rejects.toThrow(DuplicateError);
    await substrate.stop(launch.name);
  });

  it('lists running attempts, and stop kills them and removes their state', async () => {
    const substrate = newSubstrate();
    const marker = randomUUID();
    const launch = newLaunch({ targets: [`port=${port}`, 'sleep=60', `marker=${marker}`] });
    const other = newLaunch({ targets: [`port=${port}`, 'sleep=60'] });
    await substrate.start(launch);
    await substrate.start(other);
    await waitFor(substrate, launch.name, (s) => s?.phase === 'running');
    const dir = attemptDir(substrate, launch.name);
    await waitForFile(path.join(dir, 'volumes', volumeNames.results, 'probe.json'));
    const listed = await substrate.list();
    expect(listed.map((a) => a.name).sort()).toEqual([launch.name, other.name].sort());
    expect(listed.find((a) => a.name === launch.name)?.status).toEqual({ phase: 'running' });
    const pids = await processesWith(marker);
    expect(pids.length).toBeGreaterThan(0);
    // Seen from the host, bubblewrap and everything in the sandbox run as the attempt's unprivileged uid.
    const seen = await Promise.all(pids.map(async (pid) => /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]));
    expect(new Set(seen)).toEqual(new Set([String((await hostUids(dir)).programs)]));
    // Two attempts running at once never share a uid.
    if (asRoot) expect((await hostUids(attemptDir(substrate, other.name))).programs).not.toBe((await hostUids(dir)).programs);

    await substrate.stop(launch.name);
    expect(await processesWith(marker)).toEqual([]);
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
    expect(await substrate.observe(launch.name)).toBeUndefined();
    expect((await substrate.list()).map((a) => a.name)).toEqual([other.name]);
    await substrate.stop(launch.name);
    await substrate.stop(other.name);
    expect(await substrate.list()).toEqual([]);
  });

  it('reports an attempt lost when the process that ran it died, and its sandboxes died with it', async () => {
    const stateDir = path.join(work, 'state-restart');
    const marker = randomUUID();
    const launch = newLaunch({ targets: [`port=${port}`, 'sleep=60', `marker=${marker}`] });
    const child = spawn(
      process.execPath,
      [
        path.join(here, 'support', 'local-substrate-child.mjs'),
        JSON.stringify({
          config: {
            substrate: 'local',
            pod: { taskImage: TASK_IMAGE, runAsUser: RUN_AS, buildRunAsUser: BUILD_RUN_AS },
            local: { sandboxUids: SANDBOX_UIDS },
            lanes: [{ name: 'intake', trust: 'untrusted', concurrency: 4 }],
            provers: [probeProfile],
          },
          stateDir,
          programsRoot,
          launch: { ...launch, deadlineAt: launch.deadlineAt.toISOString() },
        }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await untilOutput(child, 'running\n');
      await waitForFile(path.join(stateDir, launch.name, 'volumes', volumeNames.results, 'probe.json'));
      expect((await processesWith(marker)).length).toBeGreaterThan(0);
      const restarted = newSubstrate({ stateDir });
      expect(await restarted.observe(launch.name)).toEqual({ phase: 'running' });

      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      expect(await waitFor(restarted, launch.name, ended, 5000)).toEqual({
        phase: 'infrastructure_failure',
        reason: "local substrate lost the attempt's processes",
      });
      expect(await restarted.list()).toEqual([{ name: launch.name, status: await restarted.observe(launch.name) }]);
      for (let i = 0; i < 100 && (await processesWith(marker)).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await processesWith(marker)).toEqual([]);
      await restarted.stop(launch.name);
      await expect(stat(path.join(stateDir, launch.name))).rejects.toThrow(/ENOENT/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('runs unsandboxed only when told to, and says so', async () => {
    const substrate = newSubstrate({ local: { unsafeNoSandbox: true } });
    const launch = newLaunch({ targets: [`port=${port}`, 'exit=0'] });
    await substrate.start(launch);
    const status = await waitFor(substrate, launch.name, ended);
    const digest = imageDigest(PROVER_IMAGE, defaultImagePaths);
    expect(status).toMatchObject({
      phase: 'finished',
      check: { exitCode: 0, imageDigest: digest },
      build: { exitCode: 0, imageDigest: digest },
    });
    const { probe, credential } = uploadFor(launch)!.body;
    // The same programs found the same volumes through PROOFPOD_MOUNT_*.
    expect(probe.sawFetch).toBe(`read:fetched ${launch.source.url}`);
    expect(credential).toBe(`read:${launch.uploadCredential}`);
    expect(probe.uid).toBe((await hostUids(attemptDir(substrate, launch.name))).programs);
    expect(logLines.some((line) => /WITHOUT a sandbox/.test(line) && line.includes(launch.name))).toBe(true);
    await substrate.stop(launch.name);
  });

  it('applies the limits to build and check: no file past the file-size limit can be written', async () => {
    const substrate = newSubstrate({ local: { limits: { fileSizeBytes: 1024 * 1024 } } });
    const launch = newLaunch({ targets: [`port=${port}`, `write=${2 * 1024 * 1024}`, 'exit=0'] });
    await substrate.start(launch);
    expect(await waitFor(substrate, launch.name, ended)).toMatchObject({ phase: 'finished', check: { exitCode: 0 } });
    expect(uploadFor(launch)!.body.probe.bigWrite).toBe('EFBIG');
    await substrate.stop(launch.name);
  });

  it('refuses to run without bubblewrap unless told to run unsandboxed', () => {
    const make = (unsafeNoSandbox: boolean) =>
      new LocalSubstrate({
        config: testConfig({ unsafeNoSandbox }),
        stateDir: work,
        programsRoot,
        log,
        bwrap: path.join(work, 'no-bwrap'),
      });
    expect(() => make(false)).toThrow(/install bubblewrap \(apt-get install bubblewrap\) or start with --unsafe-no-sandbox/);
    expect(make(true).kind).toBe('local');
  });

  it('ping checks bubblewrap, the state directory, and that the sandbox uid can reach them', async () => {
    await expect(newSubstrate().ping()).resolves.toBeUndefined();
    if (asRoot) {
      const hidden = await mkdtemp(path.join(work, 'hidden-'));
      await chmod(hidden, 0o700);
      await expect(newSubstrate({ stateDir: path.join(hidden, 'state') }).ping()).rejects.toThrow(`${hidden} is not searchable by them`);
    }
    const file = path.join(work, 'a-file');
    await writeFile(file, '');
    await expect(newSubstrate({ stateDir: path.join(file, 'state') }).ping()).rejects.toThrow(/not writable/);
  });
});

function untilOutput(child: ChildProcess, text: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`child did not print ${JSON.stringify(text)} within ${timeoutMs} ms: ${seen}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before printing ${JSON.stringify(text)}`)));
  });
}
