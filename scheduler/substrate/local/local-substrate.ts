import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { type FileHandle, chmod, chown, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Container, V1Volume } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { DuplicateError, coerceError } from '../../errors.js';
import { type ContainerName, containers, env, files, isolatedContainers, volumeNames } from '../../../contract/pod.js';
import { type AttemptPod, buildAttemptPod } from '../../pod/pod-spec.js';
import type { AttemptLaunch, AttemptStatus, ContainerLog, ObservedAttempt, Substrate } from '../substrate.js';
import { ImagePullError, type ImageLayout, resolveImage } from './images.js';
import {
  ContainerConfigError,
  type ContainerPlan,
  containerLimits,
  isPrivileged,
  limitedCommand,
  sandboxArgs,
  unsandboxedCommand,
} from './sandbox.js';
import { type AttemptUids, claimUidSlot, releaseUidSlot } from './uid-slots.js';
import { type ContainerReport, finishedObservation, initFailure } from '../pod-outcome.js';
import {
  waitForEnd,
  killGroup,
  signalNumber,
  CappedLog,
  readTerminationMessage,
  lastLogLine,
  type ProcessIdentity,
  processIdentity,
  isAlive,
  unsearchableAncestor,
  removeTree,
  isExecutable,
  findOnPath,
  sleep,
} from './host.js';

export interface LocalSubstrateOptions {
  config: Config;
  /** One directory per attempt lives here: pod.json, status.json, logs, volumes. */
  stateDir: string;
  /** Project root whose dist/, node_modules/ and package.json every sandbox sees under /opt/proofpod. */
  programsRoot: string;
  log: Logger;
  /** The bubblewrap binary; looked up on PATH when omitted. */
  bwrap?: string;
}

/**
 * Runs each attempt's pod (docs/architecture.md, "Substrates") on this machine: the init
 * containers (fetch, build) in order, then check and reporter together, each in its own bubblewrap
 * sandbox running as an unprivileged uid (as root: a pair of uids of the attempt's own). All state
 * is on disk under `stateDir/<attempt name>/`, so observe and list work for attempts another
 * instance started. The sandboxes die with the process that started them (--die-with-parent): an
 * attempt whose owner is gone before it ended is reported lost, never as still running.
 */
export class LocalSubstrate implements Substrate {
  readonly kind = 'local';
  private readonly config: Config;
  private readonly stateDir: string;
  private readonly programsRoot: string;
  private readonly log: Logger;
  private readonly bwrap: string | undefined;
  private readonly unsafe: boolean;
  /** Host uids attempts take their own pair from when proofpod runs as root; else every sandbox runs as this process's uid. */
  private readonly uidRange: { first: number; count: number } | undefined;
  private readonly runs = new Map<string, AttemptRun>();
  private readonly listeners = new Set<(name: string) => void>();

  constructor(options: LocalSubstrateOptions) {
    this.config = options.config;
    this.stateDir = path.resolve(options.stateDir);
    this.programsRoot = path.resolve(options.programsRoot);
    this.log = options.log.child({ component: 'local-substrate' });
    this.unsafe = options.config.local.unsafeNoSandbox;
    this.bwrap = options.bwrap ? (isExecutable(options.bwrap) ? options.bwrap : undefined) : findOnPath('bwrap');
    if (!this.bwrap && !this.unsafe) {
      throw new Error(
        `the local substrate needs bubblewrap to isolate untrusted proofs, and ${options.bwrap ?? 'bwrap'} was not found` +
          ` (${options.bwrap ? 'not an executable file' : 'not on PATH'}): install bubblewrap (apt-get install bubblewrap)` +
          ' or start with --unsafe-no-sandbox to run untrusted proofs without isolation',
      );
    }
    const uid = process.getuid?.();
    this.uidRange = uid === 0 ? this.config.local.sandboxUids : undefined;
    if (this.unsafe) {
      this.log.warn("local.unsafeNoSandbox is set: untrusted proofs run WITHOUT a sandbox, with this machine's network and files");
    }
  }

  async start(launch: AttemptLaunch): Promise<void> {
    assertAttemptName(launch.name);
    const { profile, laneConfig: lane } = launch;
    const pod = buildAttemptPod(
      {
        name: launch.name,
        jobId: launch.jobId,
        attemptNo: launch.attemptNo,
        source: launch.source,
        targets: launch.targets,
        goals: launch.goals,
        deadlineAt: launch.deadlineAt,
        uploadUrl: launch.uploadUrl,
        credentialSecretName: `${launch.name}-upload`,
      },
      profile,
      lane,
      this.config.pod,
    );
    const log = this.log.child({ jobId: launch.jobId, attempt: launch.attemptNo, lane: launch.lane, name: launch.name });
    // The only secret an attempt has is its upload credential.
    await this.runPod(
      launch.name,
      pod,
      { [volumeNames.credential]: { [files.credential]: launch.uploadCredential } },
      log,
      launch.deadlineAt,
    );
  }

  /**
   * Runs any pod under `name` (the attempt's, or one a process-kubelet was given): prepares its
   * volumes — emptyDirs as directories, every other volume from `volumeFiles` (path → content) —
   * then runs it in the background. Throws DuplicateError when `name` exists already.
   */
  async runPod(name: string, pod: AttemptPod, volumeFiles: VolumeFiles, log = this.log.child({ name }), deadlineAt?: Date): Promise<void> {
    assertAttemptName(name);
    await mkdir(this.stateDir, { recursive: true });
    const dir = this.attemptDir(name);
    try {
      // Not recursive: EEXIST is what makes a second start of a name a duplicate, as AlreadyExists is.
      await mkdir(dir, { mode: 0o711 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new DuplicateError(`attempt ${name} exists already in ${this.stateDir}`, { cause: error });
      }
      throw error;
    }
    const run = new AttemptRun(dir, pod, initialStatus(pod, await processIdentity(process.pid)), log, deadlineAt);
    this.runs.set(name, run);
    try {
      if (this.uidRange) {
        run.uids = await claimUidSlot(this.stateDir, name, this.uidRange);
        await writeFile(path.join(dir, 'uids.json'), JSON.stringify(run.uids), { mode: 0o600 });
      }
      await this.prepare(run, volumeFiles);
      await run.save();
    } catch (error) {
      this.runs.delete(name);
      if (run.uids) await releaseUidSlot(this.stateDir, name, run.uids.slot).catch(() => {});
      await removeTree(dir).catch(() => {});
      throw new Error(`attempt ${name}: could not prepare its local state: ${coerceError(error).message}`, { cause: error });
    }
    if (this.unsafe)
      log.warn("running attempt WITHOUT a sandbox (local.unsafeNoSandbox): the untrusted proof has this machine's network and files");
    // Once the pod has ended, status.json says all there is: the attempt no longer needs memory here.
    run.done = this.runPodContainers(run)
      .then(() => run.writes)
      .finally(() => {
        if (this.runs.get(name) === run && !run.stopped) this.runs.delete(name);
        if (!run.stopped) this.changed(name);
      });
  }

  async readLog(name: string, container: ContainerName, maxBytes: number): Promise<ContainerLog | undefined> {
    if (!validAttemptName(name)) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(path.join(this.attemptDir(name), 'logs', `${container}.log`), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    try {
      const { size } = await handle.stat();
      const content = Buffer.alloc(Math.min(size, maxBytes));
      const { bytesRead } = await handle.read(content, 0, content.length, 0);
      return { content: content.subarray(0, bytesRead), truncated: size > maxBytes };
    } finally {
      await handle.close();
    }
  }

  onChange(listener: (name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells the listeners that `name` moved on, once what moved it is on disk for observe. */
  private changed(name: string): void {
    for (const listener of this.listeners) listener(name);
  }

  /** The pod's container statuses as a kubelet would report them, or undefined when there is no such pod. */
  async podStatus(name: string): Promise<{ status: LocalPodStatus; lost: boolean } | undefined> {
    if (!validAttemptName(name)) return undefined;
    const run = this.runs.get(name);
    if (run) return { status: run.status, lost: false };
    const status = await readFile(path.join(this.attemptDir(name), 'status.json'), 'utf8').then(
      (text) => JSON.parse(text) as LocalPodStatus,
      () => undefined,
    );
    if (!status) return undefined;
    const ended =
      [...status.initContainers, ...status.containers].every((c) => c.state === 'terminated') ||
      status.initContainers.some((c) => c.state === 'terminated' && c.exitCode !== 0);
    return { status, lost: !ended && !(await isAlive(status.owner)) };
  }

  async observe(name: string): Promise<AttemptStatus | undefined> {
    if (!validAttemptName(name)) return undefined;
    const run = this.runs.get(name);
    if (run) return this.attemptStatus(run.dir, run.status, true);
    const dir = this.attemptDir(name);
    let status: LocalPodStatus;
    try {
      status = JSON.parse(await readFile(path.join(dir, 'status.json'), 'utf8')) as LocalPodStatus;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        return {
          phase: 'infrastructure_failure',
          reason: `local substrate cannot read the attempt's status: ${coerceError(error).message}`,
        };
      }
      const exists = await stat(dir).then(
        (s) => s.isDirectory(),
        () => false,
      );
      return exists
        ? { phase: 'infrastructure_failure', reason: 'local substrate lost the attempt: its start never completed' }
        : undefined;
    }
    return this.attemptStatus(dir, status, false);
  }

  async list(): Promise<ObservedAttempt[]> {
    const entries = await readdir(this.stateDir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    const observed: ObservedAttempt[] = [];
    for (const entry of entries) {
      if (!entry.isDirectory() || !validAttemptName(entry.name)) continue;
      const status = await this.observe(entry.name);
      if (status) observed.push({ name: entry.name, status });
    }
    return observed;
  }

  async stop(name: string): Promise<void> {
    if (!validAttemptName(name)) return;
    const dir = this.attemptDir(name);
    const run = this.runs.get(name);
    if (run) {
      run.stopped = true;
      for (const child of run.children) killGroup(child);
      await run.done;
      await run.writes;
      this.runs.delete(name);
    } else {
      await this.killLeftovers(dir);
    }
    const uids = await readFile(path.join(dir, 'uids.json'), 'utf8').then(
      (text) => JSON.parse(text) as AttemptUids,
      () => undefined,
    );
    await removeTree(dir);
    if (uids) await releaseUidSlot(this.stateDir, name, uids.slot);
  }

  async ping(): Promise<void> {
    if (!this.unsafe && !(this.bwrap && isExecutable(this.bwrap))) {
      throw new Error(`bubblewrap (${this.bwrap ?? 'bwrap'}) is gone: install bubblewrap (apt-get install bubblewrap)`);
    }
    try {
      await mkdir(this.stateDir, { recursive: true });
      await rm(await mkdtemp(path.join(this.stateDir, '.ping-')), { recursive: true });
    } catch (error) {
      throw new Error(`local substrate state directory ${this.stateDir} is not writable: ${coerceError(error).message}`, { cause: error });
    }
    if (this.uidRange) {
      // Every sandbox uid is "other" to these directories: one stands for all.
      const ids = { uid: this.uidRange.first, gid: this.uidRange.first };
      for (const target of [this.stateDir, this.programsRoot]) {
        const blocked = await unsearchableAncestor(target, ids);
        if (blocked) {
          throw new Error(
            `sandboxes run as uids from ${ids.uid} (local.sandboxUids) and cannot reach ${target}: ${blocked} is not searchable by them` +
              ` (chmod o+x ${blocked}, or choose a directory it can reach)`,
          );
        }
      }
    }
  }

  private attemptDir(name: string): string {
    return path.join(this.stateDir, name);
  }

  /** The attempt's directories and files, owned by the sandbox uid where a container writes them. */
  private async prepare(run: AttemptRun, volumeFiles: VolumeFiles): Promise<void> {
    const { dir, pod } = run;
    // The spec names the Secret; the credential itself is never written to pod.json.
    await writeFile(path.join(dir, 'pod.json'), `${JSON.stringify(pod, null, 2)}\n`, { mode: 0o600 });
    await mkdir(path.join(dir, 'logs'), { mode: 0o700 });
    await mkdir(path.join(dir, 'termination'), { mode: 0o711 });
    await mkdir(path.join(dir, 'volumes'), { mode: 0o711 });
    for (const volume of pod.spec.volumes ?? []) await this.makeVolume(run, volume, volumeFiles[volume.name]);
    for (const container of allContainers(pod)) {
      const file = path.join(dir, 'termination', container.name);
      await writeFile(file, '', { mode: 0o600, flag: 'wx' });
      await this.giveTo(run, file, this.hostIds(run, container));
    }
  }

  /** The host uid and gid a container's processes run as; undefined: this process's own. */
  private hostIds(run: AttemptRun, container: V1Container): { uid: number; gid: number } | undefined {
    if (!run.uids || isPrivileged(container)) return undefined;
    return container.name === containers.build ? run.uids.build : run.uids.programs;
  }

  /**
   * Who owns a volume on the host, and its mode: the uid of the containers that write it (the
   * build's for the artifacts and its scratch space, else our programs'), readable by others only
   * when a container of another uid reads it (the source and the artifacts).
   */
  private volumeAccess(run: AttemptRun, volume: string): { owner: { uid: number; gid: number } | undefined; mode: number } {
    const mounting = allContainers(run.pod).filter((c) => c.volumeMounts?.some((m) => m.name === volume));
    const writer = mounting.find((c) => c.volumeMounts?.some((m) => m.name === volume && !m.readOnly)) ?? mounting[0];
    const owner = writer ? this.hostIds(run, writer) : undefined;
    const shared = mounting.some((c) => this.hostIds(run, c)?.uid !== owner?.uid);
    // A volume of this process's own uid (a privileged container's: the process-kubelet's local-
    // substrate scheduler) stays searchable, for the sandboxes such a container makes in it.
    return { owner, mode: shared ? 0o755 : owner === undefined ? 0o711 : 0o700 };
  }

  private async makeVolume(run: AttemptRun, volume: V1Volume, contents: Record<string, string> | undefined): Promise<void> {
    const volumeDir = path.join(run.dir, 'volumes', volume.name);
    const { owner, mode: dirMode } = this.volumeAccess(run, volume.name);
    await mkdir(volumeDir, { mode: 0o700 });
    if (volume.emptyDir) {
      await chmod(volumeDir, dirMode);
      await this.giveTo(run, volumeDir, owner);
      return;
    }
    if (!contents) throw new Error(`volume ${volume.name}: the local substrate runs emptyDir volumes and volumes whose files it is given`);
    const mode = volume.secret?.defaultMode ?? volume.projected?.defaultMode ?? volume.configMap?.defaultMode ?? 0o644;
    for (const [relative, content] of Object.entries(contents)) {
      const file = path.join(volumeDir, relative);
      if (!file.startsWith(`${volumeDir}${path.sep}`)) throw new Error(`volume ${volume.name}: file ${relative} leaves the volume`);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(file, content, { mode: 0o600, flag: 'wx' });
      await chmod(file, mode);
      await this.giveTo(run, file, owner);
      for (let dir = path.dirname(file); dir !== volumeDir; dir = path.dirname(dir)) {
        await chmod(dir, 0o500);
        await this.giveTo(run, dir, owner);
      }
    }
    await chmod(volumeDir, 0o500);
    await this.giveTo(run, volumeDir, owner);
  }

  private async giveTo(run: AttemptRun, file: string, ids: { uid: number; gid: number } | undefined): Promise<void> {
    if (run.uids && ids) await chown(file, ids.uid, ids.gid);
  }

  /** Init containers one after another, then the others together; a failed init container ends the pod. */
  private async runPodContainers(run: AttemptRun): Promise<void> {
    try {
      const plans = await this.planContainers(run);
      if (!plans) return;
      for (const container of run.pod.spec.initContainers ?? []) {
        const exitCode = await this.runContainer(run, container, plans.get(container.name) as Launchable);
        if (run.stopped || exitCode !== 0) return;
      }
      if (run.stopped) return;
      await Promise.all(run.pod.spec.containers.map((c) => this.runContainer(run, c, plans.get(c.name) as Launchable)));
    } catch (error) {
      run.status.failure = `local substrate failed running the pod: ${coerceError(error).message}`;
      run.log.error({ err: error }, run.status.failure);
      await run.save();
    }
  }

  /** Resolves every image and command line first, as a kubelet pulls images before starting anything. */
  private async planContainers(run: AttemptRun): Promise<Map<string, Launchable> | undefined> {
    const plans = new Map<string, Launchable>();
    for (const container of allContainers(run.pod)) {
      const entry = run.container(container.name);
      try {
        const image = await resolveImage(container.image ?? '', this.config.local.images);
        entry.imageDigest = image.digest;
        plans.set(container.name, this.launchable(run, container, image));
      } catch (error) {
        if (!(error instanceof ImagePullError || error instanceof ContainerConfigError)) throw error;
        Object.assign(entry, { state: 'waiting', reason: error.reason, message: error.message });
        run.log.warn({ container: container.name, reason: error.reason }, error.message);
        await run.save();
        return undefined;
      }
    }
    await run.save();
    return plans;
  }

  private launchable(run: AttemptRun, container: V1Container, image: ImageLayout): Launchable {
    const volumes = Object.fromEntries((run.pod.spec.volumes ?? []).map((v) => [v.name, path.join(run.dir, 'volumes', v.name)]));
    const plan: Omit<ContainerPlan, 'statusFd'> = {
      container,
      image,
      volumes,
      programsRoot: this.programsRoot,
      terminationLog: path.join(run.dir, 'termination', container.name),
      hostname: run.pod.metadata.name,
      runAs: runAsOf(run.pod, container),
      extraReadOnly: this.localSource(container),
    };
    // A privileged container's bubblewrap runs as this process (root, when sandboxes drop to a uid).
    const ids = this.hostIds(run, container) ?? {};
    const limits = isolatedContainers.has(container.name)
      ? containerLimits(container, this.config.local.limits, {
          secondsLeft: run.deadlineAt ? (run.deadlineAt.getTime() - Date.now()) / 1000 : undefined,
          ownUid: run.uids !== undefined,
        })
      : undefined;
    const limited = (command: string, args: string[]) => (limits ? limitedCommand(limits, command, args) : { command, args });
    if (this.unsafe) {
      const { command, args, env } = unsandboxedCommand(plan);
      return { ...limited(command, args), options: { env, ...ids }, sandboxed: false };
    }
    const statusFd = 3;
    return {
      ...limited(this.bwrap as string, sandboxArgs({ ...plan, statusFd })),
      options: { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, ...ids },
      sandboxed: true,
    };
  }

  /**
   * A file:// source, where the operator allows them, exists only on this host: the fetch container
   * gets that one directory read-only, as a remote it can fetch from.
   */
  private localSource(container: V1Container): string[] {
    if (container.name !== 'fetch' || !this.config.pod.allowFileSources) return [];
    const url = container.env?.find((e) => e.name === env.sourceUrl)?.value;
    if (!url?.startsWith('file://')) return [];
    try {
      return [fileURLToPath(url)];
    } catch {
      return []; // fetch refuses the URL itself, with a clearer message
    }
  }

  /** Runs one container to its end and records it; resolves with its exit code (null: it did not run). */
  private async runContainer(run: AttemptRun, container: V1Container, launchable: Launchable): Promise<number | null> {
    if (run.stopped) return null;
    const entry = run.container(container.name);
    const log = new CappedLog(path.join(run.dir, 'logs', `${container.name}.log`));
    const child = spawn(launchable.command, launchable.args, {
      ...launchable.options,
      cwd: '/',
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', ...(launchable.sandboxed ? (['pipe'] as const) : [])],
    });
    run.children.add(child);
    // Listen before the first await: a sandbox that fails at once may exit before it.
    const ending = waitForEnd(child, !launchable.sandboxed);
    child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    let statusReport = '';
    child.stdio[3]?.on('data', (chunk: Buffer) => (statusReport += chunk.toString('utf8')));

    const startedAt = new Date().toISOString();
    if (child.pid !== undefined) {
      Object.assign(entry, { state: 'running', reason: undefined, message: undefined, pid: child.pid, startedAt });
      entry.pidStartTime = (await processIdentity(child.pid)).startTime;
      await run.save();
    }
    const ended = await ending;
    run.children.delete(child);
    await log.close();
    if (run.stopped) return null;

    const finishedAt = new Date().toISOString();
    const message = await readTerminationMessage(path.join(run.dir, 'termination', container.name));
    let result: Partial<LocalContainerStatus>;
    if ('error' in ended) {
      result = { reason: 'StartError', exitCode: null, message: `cannot start ${launchable.command}: ${ended.error.message}` };
    } else if (launchable.sandboxed) {
      // bubblewrap reports the command's exit on the status fd; without that report the command never
      // ran (a sandbox setup error, said on stderr) or the sandbox itself was killed.
      const reported = /"exit-code"\s*:\s*(\d+)/.exec(statusReport);
      if (reported) {
        const exitCode = Number(reported[1]);
        result = { reason: exitCode === 0 ? 'Completed' : 'Error', exitCode, message };
      } else if (ended.signal) {
        result = { reason: 'SandboxKilled', exitCode: null, message: `the sandbox was killed by ${ended.signal} before its command ended` };
      } else {
        const why = (await lastLogLine(log.file)) ?? `bubblewrap exited with code ${ended.code}`;
        result = { reason: 'StartError', exitCode: null, message: `the sandbox could not start: ${why}` };
      }
    } else {
      const exitCode = ended.code ?? 128 + signalNumber(ended.signal);
      result = { reason: exitCode === 0 ? 'Completed' : 'Error', exitCode, message };
    }
    Object.assign(entry, { state: 'terminated', startedAt, finishedAt, ...result });
    run.log.info({ container: container.name, exitCode: entry.exitCode, reason: entry.reason }, 'container ended');
    await run.save();
    return entry.exitCode ?? null;
  }

  private async attemptStatus(dir: string, pod: LocalPodStatus, owned: boolean): Promise<AttemptStatus> {
    if (pod.failure) return { phase: 'infrastructure_failure', reason: pod.failure };
    const all = [...pod.initContainers, ...pod.containers];
    const broken = all.find((c) => c.reason !== undefined && setupFailures.has(c.reason));
    if (broken)
      return {
        phase: 'infrastructure_failure',
        reason: `${broken.reason}: ${broken.message ?? `container ${broken.name}`}`,
        ofProfile: profileFailures.has(broken.reason!) && isolatedContainers.has(broken.name),
      };
    const report = async (c: LocalContainerStatus): Promise<ContainerReport> => ({
      name: c.name,
      imageDigest: c.imageDigest ?? null,
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
      terminated:
        c.state === 'terminated'
          ? {
              exitCode: c.exitCode ?? null,
              reason: c.reason,
              message: c.message || (c.exitCode !== 0 ? await lastLogLine(path.join(dir, 'logs', `${c.name}.log`)) : undefined),
            }
          : undefined,
    });
    const inits = await Promise.all(pod.initContainers.map(report));
    const ended = initFailure(inits) ?? finishedObservation(inits, await Promise.all(pod.containers.map(report)));
    if (ended) return ended;
    if (!owned && !(await isAlive(pod.owner)))
      return { phase: 'infrastructure_failure', reason: "local substrate lost the attempt's processes" };
    const initializing = pod.initContainers.find((c) => c.state !== 'terminated');
    if (initializing) return { phase: 'pending', reason: `init container ${initializing.name} ${initializing.state}` };
    if (pod.containers.some((c) => c.state === 'running')) return { phase: 'running' };
    return { phase: 'pending', reason: 'ContainerCreating' };
  }

  /** Kills what an attempt started by another instance still runs; they normally died with it. */
  private async killLeftovers(dir: string): Promise<void> {
    const status = await readFile(path.join(dir, 'status.json'), 'utf8').then(
      (text) => JSON.parse(text) as LocalPodStatus,
      () => undefined,
    );
    for (const c of [...(status?.initContainers ?? []), ...(status?.containers ?? [])]) {
      if (c.state !== 'running' || !c.pid || !(await isAlive({ pid: c.pid, startTime: c.pidStartTime ?? '' }))) continue;
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
      for (let i = 0; i < 100 && (await isAlive({ pid: c.pid, startTime: c.pidStartTime ?? '' })); i++) await sleep(20);
    }
  }
}

/** Files of a non-emptyDir volume, by volume name: relative path → content. */
export type VolumeFiles = Record<string, Record<string, string>>;

/** What status.json holds: the pod status as a kubelet would report it, plus who runs it. */
export interface LocalPodStatus {
  /** The process running the attempt; its sandboxes die with it. */
  owner: ProcessIdentity;
  initContainers: LocalContainerStatus[];
  containers: LocalContainerStatus[];
  /** The substrate itself failed running the pod. */
  failure?: string;
}

export interface LocalContainerStatus {
  name: string;
  state: 'waiting' | 'running' | 'terminated';
  /** Completed, Error, or a reason it could not run (see setupFailures). */
  reason?: string;
  /** The termination message, or why it could not run. */
  message?: string;
  exitCode?: number | null;
  imageDigest?: string;
  pid?: number;
  pidStartTime?: string;
  startedAt?: string;
  finishedAt?: string;
}

/** Reasons a container never ran its command: the attempt failed for reasons outside the proof. */
export const setupFailures: ReadonlySet<string> = new Set(['ErrImagePull', 'CreateContainerConfigError', 'StartError', 'SandboxKilled']);
/** Those of them that are the image's or the container's own, not the machine's: of the profile when its build or check container has them. */
const profileFailures: ReadonlySet<string> = new Set(['ErrImagePull', 'CreateContainerConfigError', 'StartError']);

interface Launchable {
  command: string;
  args: string[];
  options: { env: Record<string, string>; uid?: number; gid?: number };
  sandboxed: boolean;
}

class AttemptRun {
  stopped = false;
  readonly children = new Set<ChildProcess>();
  done: Promise<void> = Promise.resolve();
  /** status.json writes, one after another so that the last state written is the last one set. */
  writes: Promise<void> = Promise.resolve();

  /** The attempt's own host uids, when proofpod runs as root. */
  uids: AttemptUids | undefined;

  constructor(
    readonly dir: string,
    readonly pod: AttemptPod,
    readonly status: LocalPodStatus,
    readonly log: Logger,
    /** The attempt's deadline, which bounds its CPU time; unknown for pods a process-kubelet runs. */
    readonly deadlineAt?: Date,
  ) {}

  container(name: string): LocalContainerStatus {
    const found = [...this.status.initContainers, ...this.status.containers].find((c) => c.name === name);
    if (!found) throw new Error(`pod ${this.pod.metadata.name} has no container ${name}`);
    return found;
  }

  save(): Promise<void> {
    const text = `${JSON.stringify(this.status, null, 2)}\n`;
    this.writes = this.writes.then(async () => {
      if (this.stopped) return;
      const file = path.join(this.dir, 'status.json');
      try {
        await writeFile(`${file}.tmp`, text, { mode: 0o600 });
        await rename(`${file}.tmp`, file);
      } catch (error) {
        if (!this.stopped) this.log.error({ err: error }, `could not write ${file}`);
      }
    });
    return this.writes;
  }
}

function initialStatus(pod: AttemptPod, owner: ProcessIdentity): LocalPodStatus {
  return {
    owner,
    initContainers: (pod.spec.initContainers ?? []).map((c) => ({ name: c.name, state: 'waiting' })),
    containers: pod.spec.containers.map((c) => ({ name: c.name, state: 'waiting', reason: 'PodInitializing' })),
  };
}

function allContainers(pod: AttemptPod): V1Container[] {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
}

/** The uid the container sees itself as: its own runAsUser, else the pod's. */
function runAsOf(pod: AttemptPod, container: V1Container): { uid: number; gid: number } | undefined {
  const uid = container.securityContext?.runAsUser ?? pod.spec.securityContext?.runAsUser;
  if (uid === undefined) return undefined;
  return { uid, gid: container.securityContext?.runAsGroup ?? pod.spec.securityContext?.runAsGroup ?? uid };
}

/** Attempt names become directory names: a DNS subdomain has no `/` and cannot be `.` or `..`. */
const attemptNamePattern = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function validAttemptName(name: string): boolean {
  return attemptNamePattern.test(name) && !name.includes('..');
}

function assertAttemptName(name: string): void {
  if (!validAttemptName(name)) throw new Error(`attempt name ${JSON.stringify(name)} is not a DNS subdomain name`);
}
