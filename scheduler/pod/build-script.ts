import { artifacts, buildExitCodes, mounts } from '../../contract/pod.js';
import { moduleOf } from '../../contract/profile.js';

/**
 * The build container's command (pure): a POSIX shell script that copies the read-only source
 * into the artifacts volume and runs the profile's build command once per target there, recording
 * each exit code and output under `artifacts.status`. The build container holds no program of
 * ours — nothing in it is trusted, so there is nothing for proof code to subvert — and the script
 * exits 0 once every target was tried, so that a failing proof ends in the check's verdict, not in
 * a failed pod. With a project file in the (sub)directory it runs the profile's project build once
 * instead (`artifacts.status/project.*`). Untrusted values (subdirectory, targets, modules) reach
 * the script only as positional arguments, never as script text.
 */
export function buildCommand(
  command: readonly string[],
  subdirectory: string | null,
  targets: readonly string[],
  project?: { file: string; command: readonly string[] },
): string[] {
  // The mounts, or where a substrate running without a sandbox says they are (contract/pod.ts).
  const src = `"\${PROOFPOD_MOUNT_SOURCE:-${mounts.source}}"`;
  const out = `"\${PROOFPOD_MOUNT_ARTIFACTS:-${mounts.artifacts}}"`;
  const script = [
    'set -u',
    // Proof code may signal the driver; a handler (unlike an ignored signal) is not inherited by
    // what it runs. SIGKILL still ends it: the build container then fails, and the attempt errs.
    'trap : HUP INT QUIT USR1 USR2 TERM ALRM PIPE',
    // The check container, another uid, reads what the build writes.
    'umask 022',
    `cd ${out} || exit ${buildExitCodes.noWorkdir}`,
    `mkdir ${artifacts.tree} ${artifacts.status} || exit ${buildExitCodes.copyFailed}`,
    // Everything but .git: the build needs the sources, and fetch's repository is no business of it.
    `for entry in ${src}/* ${src}/.[!.]* ${src}/..?*; do`,
    '  [ -e "$entry" ] || [ -L "$entry" ] || continue',
    '  [ "${entry##*/}" = .git ] && continue',
    `  cp -R -P -- "$entry" ${artifacts.tree}/ || exit ${buildExitCodes.copyFailed}`,
    'done',
    `status=$PWD/${artifacts.status}`,
    'sub=$1; project=$2; pairs=$3; shift 3',
    `cd "${artifacts.tree}/$sub" || exit ${buildExitCodes.noWorkdir}`,
    // A project file: one build of the whole project, whose command follows the target pairs.
    'if [ -n "$project" ] && [ -f "$project" ]; then',
    '  i=0; while [ "$i" -lt "$pairs" ]; do shift 2; i=$((i + 1)); done',
    '  "$@" >"$status/project.log" 2>&1 </dev/null',
    '  echo "$?" >"$status/project.exit"',
    `  exit ${buildExitCodes.done}`,
    'fi',
    'n=0',
    'while [ "$n" -lt "$pairs" ]; do',
    '  n=$((n + 1)); t=$1; m=$2; shift 2',
    `  ${command.map(shellWord).join(' ')} >"$status/$n.log" 2>&1 </dev/null`,
    '  echo "$?" >"$status/$n.exit"',
    'done',
    `exit ${buildExitCodes.done}`,
  ].join('\n');
  return [
    '/bin/sh',
    '-c',
    script,
    'proofpod-build',
    subdirectory ?? '',
    project?.file ?? '',
    String(targets.length),
    ...targets.flatMap((t) => [t, moduleOf(t)]),
    ...(project?.command ?? []),
  ];
}

/** One word of the profile's command: literal parts single-quoted, placeholders as variables. */
function shellWord(part: string): string {
  const pieces = part.split(/(\{target\}|\{module\})/).filter((p) => p !== '');
  if (pieces.length === 0) return "''";
  return pieces.map((p) => (p === '{target}' ? '"$t"' : p === '{module}' ? '"$m"' : quote(p))).join('');
}

function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
