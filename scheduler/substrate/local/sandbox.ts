import path from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { type MountName, mounts, programsDir } from '../../../contract/pod.js';
import type { ImageLayout } from './images.js';

/**
 * How one container of the attempt pod runs on this machine: the bubblewrap command line, or, when
 * the operator chose to run without a sandbox, the plain command with the mounts passed as
 * environment variables. Pure, so the isolation it asks for is visible in table tests.
 */

/**
 * The container that runs the untrusted proof: no network namespace shared with the host (a pod
 * cannot express that per container, so the local substrate keys it on the name), and its wrapper
 * as PID 1, so that when the wrapper exits every process the proof left behind dies with it.
 */
export const proverContainerName = 'prover';

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
  const isProver = container.name === proverContainerName;
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
    ...(isProver ? ['--unshare-net'] : []),
    '--die-with-parent',
    '--new-session',
    ...(isProver ? ['--as-pid-1'] : []),
    '--hostname',
    plan.hostname,
    '--json-status-fd',
    String(plan.statusFd),
  ];
  for (const { path: link, target } of plan.image.symlinks) args.push('--symlink', target, link);
  const binds = volumeBinds(plan);
  // bubblewrap makes a mount point's missing parents 0700; an image's directories are 0755, and a
  // process of another uid (the sandboxes a privileged container makes) must get through them.
  const mountPoints = [...plan.image.binds, ...programEntries.map((e) => `${programsDir}/${e}`), ...binds.map((b) => b.mountPath), ...(plan.extraReadOnly ?? [])];
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
    if (!name) throw new ContainerConfigError(`container ${container.name} mounts ${mount.mountPath}, which no contract mount names; it cannot run without a sandbox`);
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
  if (command.length === 0) throw new ContainerConfigError(`container ${container.name} has no command; the local substrate has no image entrypoints`);
  return command;
}

/** The container's environment: PATH unless it sets its own, then its variables. */
function containerEnv(container: V1Container): Record<string, string> {
  const env: Record<string, string> = { PATH: defaultPath };
  for (const variable of container.env ?? []) {
    if (variable.valueFrom) throw new ContainerConfigError(`container ${container.name}: env ${variable.name} uses valueFrom, which the local substrate does not support`);
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
    if (mount.subPath || mount.subPathExpr) throw new ContainerConfigError(`container ${plan.container.name}: volume mount ${mount.name} uses subPath, which the local substrate does not support`);
    const hostDir = Object.hasOwn(plan.volumes, mount.name) ? plan.volumes[mount.name] : undefined;
    if (!hostDir) throw new ContainerConfigError(`container ${plan.container.name} mounts volume ${mount.name}, which the pod does not define`);
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
