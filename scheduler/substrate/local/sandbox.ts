import path from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { type MountName, containers, isolatedContainers, mounts, programsDir } from '../../../contract/pod.js';
import { quantityBytes, quantityCores } from '../../quantity.js';
import type { ImageLayout } from './images.js';

/**
 * How one container of the attempt pod runs on this machine: the bubblewrap command line, or, when
 * the operator chose to run without a sandbox, the plain command with the mounts passed as
 * environment variables. Pure, so the isolation it asks for is visible in table tests.
 */

/**
 * The check container's wrapper runs as PID 1 of its sandbox, so that it can kill every process
 * its checkers left before it writes its results. The build's PID 1 stays bubblewrap's own init:
 * proof code can neither signal it (a namespace's init ignores signals it has no handler for) nor
 * outlive it (when it exits, the kernel kills the whole namespace).
 */
const pidOneContainer: string = containers.check;

/** Where the container may write its termination message, as in Kubernetes. */
export const terminationLogPath = '/dev/termination-log';

/** The pieces of the attempt's programs root bound read-only at /opt/proofpod. */
export const programEntries = ['dist', 'node_modules', 'package.json'] as const;

export const defaultPath = '/usr/local/bin:/usr/bin:/bin';

export interface ContainerPlan {
  container: V1Container;
  image: Pick<ImageLayout, 'binds' | 'symlinks'>;
  /** Host directory of each volume, by volume name. */
  volumes: Readonly<Record<string, string>>;
  /** Host directory whose dist/, node_modules/ and package.json appear under /opt/proofpod. */
  programsRoot: string;
  /** Host file the container's /dev/termination-log is bound to. */
  terminationLog: string;
  /** The pod's name, as the sandbox's hostname. */
  hostname: string;
  /** The uid and gid the container sees itself as (the pod's runAsUser); omitted: the caller's own. */
  runAs?: { uid: number; gid: number };
  /** File descriptor on which bubblewrap reports the child's pid and exit code as JSON. */
  statusFd: number;
  /** Resource limits of the container's processes (build and check). */
  limits?: ResourceLimits | undefined;
  /** Host paths bound read-only at the same place (a file:// source for the fetch container). */
  extraReadOnly?: readonly string[];
}

/** The spec asks for something the local substrate cannot provide; Kubernetes' CreateContainerConfigError. */
export class ContainerConfigError extends Error {
  override readonly name = 'ContainerConfigError';
  readonly reason = 'CreateContainerConfigError';
}

/** The bubblewrap arguments (without the program name) that run `plan.container`. */
export function sandboxArgs(plan: ContainerPlan): string[] {
  const { container } = plan;
  // A pod has one network for all its containers; the local substrate can do better and gives the
  // containers that read hostile input no network at all (keyed on the contract's names).
  const isolated = isolatedContainers.has(container.name);
  const privileged = isPrivileged(container);
  const args = [
    ...(privileged
      ? // A privileged container keeps the caller's user and PID namespaces and every capability, as
        // on a real node: only the process-kubelet runs one (the chart's local-substrate scheduler,
        // which makes sandboxes of its own); attempt pods never ask for it. It sees the host's /proc
        // (below): a fresh /proc that bubblewrap partly covers would keep its own sandboxes from
        // mounting theirs.
        ['--cap-add', 'ALL']
      : [
          '--unshare-user',
          '--unshare-pid',
          // Nested user namespaces would hand the proof a full capability set inside them;
          // RuntimeDefault seccomp refuses them in Kubernetes.
          '--disable-userns',
          '--cap-drop',
          'ALL',
          ...(plan.runAs ? ['--uid', String(plan.runAs.uid), '--gid', String(plan.runAs.gid)] : []),
        ]),
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(isolated ? ['--unshare-net'] : []),
    '--die-with-parent',
    '--new-session',
    ...(container.name === pidOneContainer ? ['--as-pid-1'] : []),
    '--hostname',
    plan.hostname,
    '--json-status-fd',
    String(plan.statusFd),
  ];
  for (const { path: link, target } of plan.image.symlinks) args.push('--symlink', target, link);
  const binds = volumeBinds(plan);
  // bubblewrap makes a mount point's missing parents 0700; an image's directories are 0755, and a
  // process of another uid (the sandboxes a privileged container makes) must get through them.
  const mountPoints = [
    ...plan.image.binds,
    ...programEntries.map((e) => `${programsDir}/${e}`),
    ...binds.map((b) => b.mountPath),
    ...(plan.extraReadOnly ?? []),
  ];
  for (const dir of mountParents(mountPoints, plan.image.binds)) args.push('--perms', '0755', '--dir', dir);
  for (const bind of byDepth(plan.image.binds, (p) => p)) args.push('--ro-bind', bind, bind);
  for (const entry of programEntries) args.push('--ro-bind', path.join(plan.programsRoot, entry), `${programsDir}/${entry}`);
  args.push('--dev', '/dev', ...(privileged ? ['--bind', '/proc', '/proc'] : ['--proc', '/proc']));
  for (const mount of binds) args.push(mount.readOnly ? '--ro-bind' : '--bind', mount.hostDir, mount.mountPath);
  // After the volumes: a local source under /tmp must not be hidden by the /tmp volume.
  for (const extra of plan.extraReadOnly ?? []) args.push('--ro-bind', extra, extra);
  args.push('--bind', plan.terminationLog, terminationLogPath);
  // --clearenv and --setenv act while bubblewrap parses its arguments, so the order matters.
  args.push('--clearenv');
  for (const [name, value] of Object.entries(containerEnv(container))) args.push('--setenv', name, value);
  args.push('--chdir', '/');
  // Last: every mount point above is created in the sandbox's root, which must still be writable then.
  args.push('--remount-ro', '/');
  args.push('--', ...containerCommand(container));
  return args;
}

/** `securityContext.privileged`: the sandbox runs as its caller, root, with every capability. */
export function isPrivileged(container: V1Container): boolean {
  return container.securityContext?.privileged === true;
}

/** The plain command of a container run without a sandbox: same program, mounts passed by environment. */
export function unsandboxedCommand(plan: Omit<ContainerPlan, 'statusFd' | 'runAs' | 'hostname' | 'image'>): {
  command: string;
  args: string[];
  env: Record<string, string>;
} {
  const { container } = plan;
  const env = containerEnv(container);
  for (const mount of volumeBinds(plan)) {
    const name = mountName(mount.mountPath);
    if (!name)
      throw new ContainerConfigError(
        `container ${container.name} mounts ${mount.mountPath}, which no contract mount names; it cannot run without a sandbox`,
      );
    env[`PROOFPOD_MOUNT_${name.toUpperCase()}`] = mount.hostDir;
    if (name === 'tmp') env.TMPDIR = mount.hostDir;
  }
  env.PROOFPOD_TERMINATION_LOG = plan.terminationLog;
  // The programs live at /opt/proofpod only inside a sandbox.
  const [command, ...args] = containerCommand(container).map((arg) =>
    arg === programsDir || arg.startsWith(`${programsDir}/`) ? path.join(plan.programsRoot, arg.slice(programsDir.length)) : arg,
  );
  return { command: command as string, args, env };
}

function containerCommand(container: V1Container): string[] {
  const command = [...(container.command ?? []), ...(container.args ?? [])];
  if (command.length === 0)
    throw new ContainerConfigError(`container ${container.name} has no command; the local substrate has no image entrypoints`);
  return command;
}

/** The container's environment: PATH unless it sets its own, then its variables. */
function containerEnv(container: V1Container): Record<string, string> {
  const env: Record<string, string> = { PATH: defaultPath };
  for (const variable of container.env ?? []) {
    if (variable.valueFrom)
      throw new ContainerConfigError(
        `container ${container.name}: env ${variable.name} uses valueFrom, which the local substrate does not support`,
      );
    env[variable.name] = variable.value ?? '';
  }
  return env;
}

/** The parent directories of the mount paths that no image path provides, shallowest first. */
function mountParents(mountPaths: string[], imagePaths: readonly string[]): string[] {
  const inImage = (dir: string) => imagePaths.some((p) => dir === p || dir.startsWith(`${p}/`));
  const parents = new Set<string>();
  for (const mountPath of mountPaths) {
    for (let dir = path.posix.dirname(mountPath); dir !== '/' && dir !== '.'; dir = path.posix.dirname(dir)) {
      if (!inImage(dir)) parents.add(dir);
    }
  }
  return [...parents].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
}

interface VolumeBind {
  hostDir: string;
  mountPath: string;
  readOnly: boolean;
}

/** The container's volume mounts, parents before children so that a parent mount cannot hide a child. */
function volumeBinds(plan: Pick<ContainerPlan, 'container' | 'volumes'>): VolumeBind[] {
  const binds = (plan.container.volumeMounts ?? []).map((mount) => {
    if (mount.subPath || mount.subPathExpr)
      throw new ContainerConfigError(
        `container ${plan.container.name}: volume mount ${mount.name} uses subPath, which the local substrate does not support`,
      );
    const hostDir = Object.hasOwn(plan.volumes, mount.name) ? plan.volumes[mount.name] : undefined;
    if (!hostDir)
      throw new ContainerConfigError(`container ${plan.container.name} mounts volume ${mount.name}, which the pod does not define`);
    return { hostDir, mountPath: mount.mountPath, readOnly: mount.readOnly === true };
  });
  return byDepth(binds, (b) => b.mountPath);
}

function byDepth<T>(items: T[], pathOf: (item: T) => string): T[] {
  const depth = (p: string) => path.posix.normalize(p).split('/').filter(Boolean).length;
  return [...items].sort((a, b) => depth(pathOf(a)) - depth(pathOf(b)));
}

function mountName(mountPath: string): MountName | undefined {
  return (Object.keys(mounts) as MountName[]).find((name) => mounts[name] === mountPath);
}

/** Per-process limits of a sandbox's processes (setrlimit, inherited by everything they start). */
export interface ResourceLimits {
  /** RLIMIT_DATA: heap and private writable mappings. */
  memoryBytes: number;
  /** RLIMIT_NPROC: processes of the sandbox's host uid; only set where that uid is the attempt's alone. */
  processes?: number | undefined;
  /** RLIMIT_FSIZE: largest file a process may write. */
  fileSizeBytes: number;
  /** RLIMIT_CPU: CPU seconds of each process. */
  cpuSeconds?: number | undefined;
}

/** The `prlimit` arguments that run `command` under `limits`; prlimit sets them on itself, then runs it. */
export function limitedCommand(limits: ResourceLimits, command: string, args: readonly string[]): { command: string; args: string[] } {
  const flags = [
    `--data=${limits.memoryBytes}`,
    `--fsize=${limits.fileSizeBytes}`,
    ...(limits.processes !== undefined ? [`--nproc=${limits.processes}`] : []),
    ...(limits.cpuSeconds !== undefined ? [`--cpu=${limits.cpuSeconds}`] : []),
  ];
  return { command: 'prlimit', args: [...flags, '--', command, ...args] };
}

/**
 * The limits of one build or check container: the lane's memory limit (the container's
 * `resources.limits`, set from the lane) or the configured default; CPU seconds enough for the
 * lane's cores until the deadline; processes only where the uid is the attempt's own. Pure.
 */
export function containerLimits(
  container: V1Container,
  defaults: { memoryBytes: number; processes: number; fileSizeBytes: number; cpuSeconds?: number | undefined },
  options: { secondsLeft?: number | undefined; ownUid: boolean },
): ResourceLimits {
  const limits = container.resources?.limits as Record<string, string | number> | undefined;
  const cores = quantityCores(limits?.cpu) ?? 1;
  const cpuSeconds =
    defaults.cpuSeconds ??
    (options.secondsLeft !== undefined ? Math.max(1, Math.ceil(options.secondsLeft * Math.max(1, cores))) : undefined);
  return {
    memoryBytes: quantityBytes(limits?.memory) ?? defaults.memoryBytes,
    fileSizeBytes: defaults.fileSizeBytes,
    ...(options.ownUid ? { processes: defaults.processes } : {}),
    ...(cpuSeconds !== undefined ? { cpuSeconds } : {}),
  };
}
