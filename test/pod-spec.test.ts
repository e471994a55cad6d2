import { describe, expect, it } from 'vitest';
import { parseConfig } from '../scheduler/config.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mounts, volumeNames } from '../contract/pod.js';
import { buildCommand } from '../scheduler/pod/build-script.js';
import { buildAttemptPod } from '../scheduler/pod/pod-spec.js';

const config = parseConfig({ pod: { release: 'pp-test', maxSourceBytes: 1_000_000 } });
const coq = config.provers.find((p) => p.name === 'coq')!;
const lane = config.lanes.find((l) => l.name === 'verify')!;
const deadlineAt = new Date('2026-01-01T01:00:00Z');
const pod = buildAttemptPod(
  {
    name: 'pp-0123456789abcdef0123456789abcdef-1',
    jobId: '01234567-89ab-cdef-0123-456789abcdef',
    attemptNo: 1,
    source: { url: 'https://example.org/p.git', commit: 'a'.repeat(40), subdirectory: 'theories' },
    targets: ['A.v'],
    goals: [],
    deadlineAt,
    uploadUrl: 'http://scheduler:8080/v1/attempts/x/evidence',
    credentialSecretName: 'pp-0123-upload',
  },
  coq,
  lane,
  config.pod,
);
const spec = pod.spec;
const all = [...(spec.initContainers ?? []), ...spec.containers];
const byName = (name: string) => all.find((c) => c.name === name)!;
/** The pod spec of a small attempt of `profile` in `inLane`. */
const podOf = (profile: typeof coq, targets: string[], inLane = lane) =>
  buildAttemptPod(
    {
      name: 'pp-x-1',
      jobId: 'j',
      attemptNo: 1,
      source: { url: 'https://example.org/p.git', commit: 'a'.repeat(40), subdirectory: null },
      targets,
      goals: [],
      deadlineAt,
      uploadUrl: 'http://s/u',
      credentialSecretName: 's',
    },
    profile,
    inLane,
    config.pod,
  ).spec;

describe('attempt pod spec', () => {
  it("applies the lane's resource profile to build and check and its placement to the pod", () => {
    const placed = parseConfig({
      lanes: [
        {
          name: 'heavy',
          trust: 'trusted',
          concurrency: 1,
          resources: { requests: { cpu: 2, memory: '4Gi' }, limits: { memory: '8Gi' } },
          nodeSelector: { pool: 'provers' },
          tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
        },
      ],
    }).lanes[0]!;
    const heavy = podOf(coq, ['A.v'], placed);
    for (const c of [heavy.containers.find((c) => c.name === 'check')!, heavy.initContainers!.find((c) => c.name === 'build')!]) {
      expect(c.resources, c.name).toEqual({ requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '8Gi' } });
    }
    expect(heavy.containers.find((c) => c.name === 'reporter')!.resources).toBeUndefined();
    expect(heavy.nodeSelector).toEqual({ pool: 'provers' });
    expect(heavy.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }]);
    // A lane without them leaves the pod to the cluster's defaults.
    expect(spec.nodeSelector).toBeUndefined();
    expect(spec.containers.find((c) => c.name === 'check')!.resources).toBeUndefined();
  });

  it('is fetch and build (init), then check and reporter, never restarted, without service-account token', () => {
    expect(spec.initContainers?.map((c) => c.name)).toEqual(['fetch', 'build']);
    expect(spec.containers.map((c) => c.name)).toEqual(['check', 'reporter']);
    expect(spec).toMatchObject({
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      serviceAccountName: 'proofpod-task',
      enableServiceLinks: false,
      shareProcessNamespace: false,
    });
  });

  it('meets the restricted Pod Security Standard in every container', () => {
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of all) {
      const { runAsUser: _uid, runAsGroup: _gid, ...context } = c.securityContext ?? {};
      expect(context, c.name).toEqual({
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
    }
  });

  it('mounts the upload credential in the reporter alone, read-only, and never as an environment variable', () => {
    const holders = all.filter((c) => c.volumeMounts?.some((m) => m.name === volumeNames.credential));
    expect(holders.map((c) => c.name)).toEqual(['reporter']);
    expect(byName('reporter').volumeMounts?.find((m) => m.name === volumeNames.credential)).toEqual({
      name: volumeNames.credential,
      mountPath: mounts.credential,
      readOnly: true,
    });
    expect(spec.volumes?.find((v) => v.name === volumeNames.credential)?.secret).toMatchObject({
      secretName: 'pp-0123-upload',
      defaultMode: 0o400,
    });
    for (const c of all) for (const e of c.env ?? []) expect(e.valueFrom, `${c.name} ${e.name}`).toBeUndefined();
  });

  it("gives build and check nothing of the scheduler's: no upload URL, no job identity", () => {
    const env = (name: string) => Object.fromEntries((byName(name).env ?? []).map((e) => [e.name, e.value]));
    expect(Object.keys(env('check')).sort()).toEqual([
      'PROOFPOD_ALLOWED_AXIOMS',
      'PROOFPOD_GOALS',
      'PROOFPOD_PROFILE',
      'PROOFPOD_SUBDIRECTORY',
      'PROOFPOD_TARGETS',
    ]);
    expect(Object.keys(env('build')).sort()).toEqual(['HOME', 'LANG', 'TMPDIR']);
    for (const c of ['build', 'check']) expect(JSON.stringify(env(c)), c).not.toContain('scheduler');
  });

  it("gives the check the lane's allowed axioms", () => {
    const classical = parseConfig({
      lanes: [{ name: 'classical', trust: 'trusted', concurrency: 1, allowedAxioms: ['Coq.Logic.Classical_Prop.classic'] }],
    }).lanes[0]!;
    const check = podOf(coq, ['A.v'], classical).containers.find((c) => c.name === 'check')!;
    expect(check.env?.find((e) => e.name === 'PROOFPOD_ALLOWED_AXIOMS')?.value).toBe('["Coq.Logic.Classical_Prop.classic"]');
    expect(byName('check').env?.find((e) => e.name === 'PROOFPOD_ALLOWED_AXIOMS')?.value).toBe('[]');
  });

  it('runs the build as a uid of its own, never the one of our programs', () => {
    expect(byName('build').securityContext).toMatchObject({ runAsUser: config.pod.buildRunAsUser, runAsGroup: config.pod.buildRunAsUser });
    expect(config.pod.buildRunAsUser).not.toBe(config.pod.runAsUser);
    for (const c of ['fetch', 'check', 'reporter']) expect(byName(c).securityContext?.runAsUser, c).toBeUndefined();
    expect(spec.securityContext?.runAsUser).toBe(config.pod.runAsUser);
  });

  it('mounts each volume where the contract says, read-only wherever that container does not write it', () => {
    const mounted = (c: string) =>
      Object.fromEntries(
        (byName(c).volumeMounts ?? []).filter((m) => m.mountPath !== '/tmp').map((m) => [m.name, m.readOnly ? 'ro' : 'rw']),
      );
    expect(mounted('fetch')).toEqual({ source: 'rw', meta: 'rw' });
    expect(mounted('build')).toEqual({ source: 'ro', artifacts: 'rw' });
    expect(mounted('check')).toEqual({ source: 'ro', meta: 'ro', artifacts: 'ro', results: 'rw' });
    expect(mounted('reporter')).toEqual({ meta: 'ro', results: 'ro', [volumeNames.credential]: 'ro' });
  });

  it('gives each container a /tmp of its own', () => {
    const tmps = all.map((c) => c.volumeMounts?.find((m) => m.mountPath === '/tmp')?.name);
    expect(new Set(tmps).size).toBe(4);
  });

  it('has no build container, and no artifacts volume, for a profile without a build step', () => {
    const z3 = config.provers.find((p) => p.name === 'smt-z3')!;
    const plain = podOf(z3, ['a.smt2']);
    expect(plain.initContainers?.map((c) => c.name)).toEqual(['fetch']);
    expect(plain.volumes?.map((v) => v.name)).not.toContain('artifacts');
    expect(plain.containers.find((c) => c.name === 'check')!.volumeMounts?.map((m) => m.name)).not.toContain('artifacts');
  });

  it('labels the pod for job, attempt, lane, prover and release', () => {
    expect(pod.metadata.labels).toEqual({
      'app.kubernetes.io/managed-by': 'proofpod',
      'proofpod.dev/release': 'pp-test',
      'proofpod.dev/job-id': '01234567-89ab-cdef-0123-456789abcdef',
      'proofpod.dev/attempt': '1',
      'proofpod.dev/lane': 'verify',
      'proofpod.dev/prover': 'coq',
    });
  });

  it('gives the reporter a report-by time that leaves its margin before the deadline', () => {
    const reportBy = byName('reporter').env?.find((e) => e.name === 'PROOFPOD_REPORT_BY')?.value;
    expect(Number(reportBy)).toBe(deadlineAt.getTime() / 1000 - config.pod.reportMarginSeconds);
  });

  it('runs the prover image of the profile for build and check, and the task image for fetch and reporter', () => {
    expect(byName('build').image).toBe(coq.image);
    expect(byName('check').image).toBe(coq.image);
    expect(byName('fetch').image).toBe(config.pod.taskImage);
    expect(byName('reporter').image).toBe(config.pod.taskImage);
    expect(byName('fetch').env?.find((e) => e.name === 'PROOFPOD_MAX_SOURCE_BYTES')?.value).toBe('1000000');
  });
});

describe('build command', () => {
  /** Runs the build driver for real on a source laid out from `files`; returns what it left in the artifacts volume. */
  function build(
    command: string[],
    files: Record<string, string>,
    targets: string[],
    subdirectory: string | null = null,
    project?: { file: string; command: string[] },
  ) {
    const root = mkdtempSync(path.join(tmpdir(), 'proofpod-build-'));
    const source = path.join(root, 'source');
    const artifacts = path.join(root, 'artifacts');
    mkdirSync(path.join(source, '.git'), { recursive: true });
    mkdirSync(artifacts);
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(source, name)), { recursive: true });
      writeFileSync(path.join(source, name), text);
    }
    const [sh, ...args] = buildCommand(command, subdirectory, targets, project);
    execFileSync(sh!, args, { env: { PATH: process.env.PATH, PROOFPOD_MOUNT_SOURCE: source, PROOFPOD_MOUNT_ARTIFACTS: artifacts } });
    const read = (file: string) => readFileSync(path.join(artifacts, file), 'utf8');
    return { read, artifacts };
  }

  it.each<[string, string[], string[], string]>([
    ['a target and its module', ['echo', '{target}', '{module}'], ['A/B.v'], 'A/B.v A.B'],
    ['placeholders inside a word', ['echo', '-o{module}.vo', 'x{target}y'], ['C.v'], '-oC.vo xC.vy'],
    [
      'a target with a quote, a space and $(…), passed as an argument, never as script',
      ['echo', '{target}'],
      ["it's $(touch pwned) `x`.v"],
      "it's $(touch pwned) `x`.v",
    ],
    ["a literal with a quote in the profile's command", ['echo', "don't"], ['A.v'], "don't"],
  ])('%s', (_name, command, targets, output) => {
    const { read, artifacts } = build(command, { [targets[0]!]: '' }, targets);
    expect(read('status/1.log').trim()).toBe(output);
    expect(read('status/1.exit').trim()).toBe('0');
    expect(() => readFileSync(path.join(artifacts, 'tree', 'pwned'))).toThrow();
  });

  it('with the project file present, runs the project build once instead, with every target', () => {
    const { read, artifacts } = build(['false'], { _CoqProject: '-Q . X', 'A.v': '', 'B.v': '' }, ['A.v', 'B.v'], null, {
      file: '_CoqProject',
      command: ['sh', '-c', 'echo "$@"; exit 4', 'p', 'A.v', 'B.v'],
    });
    expect([read('status/project.log').trim(), read('status/project.exit').trim()]).toEqual(['A.v B.v', '4']);
    expect(() => readFileSync(path.join(artifacts, 'status', '1.exit'))).toThrow();
    // Without it, the per-target build runs.
    const plain = build(['echo', '{target}'], { 'A.v': '' }, ['A.v'], null, { file: '_CoqProject', command: ['false'] });
    expect(plain.read('status/1.log').trim()).toBe('A.v');
  });

  it("puts each build step under the lane's build time limit", () => {
    const timed = parseConfig({ lanes: [{ name: 't', trust: 'trusted', concurrency: 1, buildTimeoutSeconds: 300 }] }).lanes[0]!;
    const cmd = podOf(coq, ['A.v'], timed).initContainers!.find((c) => c.name === 'build')!.command!;
    expect(cmd[2]).toContain("'timeout' '-k' '10' '300' 'coqc'");
    expect(cmd.join(' ')).toContain(' timeout -k 10 300 sh -c ');
    expect(
      podOf(coq, ['A.v'])
        .initContainers!.find((c) => c.name === 'build')!
        .command!.join(' '),
    ).not.toContain('timeout');
  });

  it("gives the project build the lane's CPU as {jobs}, 0 when the lane sets none", () => {
    const jobsOf = (lanes: object[]) => {
      const cmd = podOf(coq, ['A.v', 'B.v'], parseConfig({ lanes }).lanes[0]).initContainers!.find((c) => c.name === 'build')!.command!;
      return cmd.slice(-3);
    };
    expect(jobsOf([{ name: 'l', trust: 'trusted', concurrency: 1, resources: { limits: { cpu: '3500m' } } }])).toEqual(['4', 'A.v', 'B.v']);
    expect(jobsOf([{ name: 'l', trust: 'trusted', concurrency: 1 }])).toEqual(['0', 'A.v', 'B.v']);
  });

  it("records each target's exit code and output, copies the source without .git, and runs in the subdirectory", () => {
    const { read, artifacts } = build(
      ['sh', '-c', 'cat "$0"; exit 3', '{target}'],
      { 'sub/a.txt': 'A\n', 'sub/b.txt': 'B\n', 'top.txt': 'T' },
      ['a.txt', 'b.txt'],
      'sub',
    );
    expect([read('status/1.log'), read('status/1.exit').trim(), read('status/2.log'), read('status/2.exit').trim()]).toEqual([
      'A\n',
      '3',
      'B\n',
      '3',
    ]);
    expect(read('tree/top.txt')).toBe('T');
    expect(() => readFileSync(path.join(artifacts, 'tree', '.git'))).toThrow();
  });
});
