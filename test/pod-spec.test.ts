import { describe, expect, it } from 'vitest';
import { parseConfig } from '../scheduler/config.js';
import { mounts, volumeNames } from '../contract/pod.js';
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

describe('attempt pod spec', () => {
  it("applies the lane's resource profile to the prover and its placement to the pod", () => {
    const placed = parseConfig({
      lanes: [{ name: 'heavy', trust: 'trusted', concurrency: 1, resources: { requests: { cpu: 2, memory: '4Gi' }, limits: { memory: '8Gi' } }, nodeSelector: { pool: 'provers' }, tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }] }],
    }).lanes[0]!;
    const heavy = buildAttemptPod(
      { name: 'pp-x-1', jobId: 'j', attemptNo: 1, source: { url: 'https://example.org/p.git', commit: 'a'.repeat(40), subdirectory: null }, targets: ['A.v'], deadlineAt, uploadUrl: 'http://s/u', credentialSecretName: 's' },
      coq,
      placed,
      config.pod,
    ).spec;
    expect(heavy.containers.find((c) => c.name === 'prover')!.resources).toEqual({ requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '8Gi' } });
    expect(heavy.containers.find((c) => c.name === 'reporter')!.resources).toBeUndefined();
    expect(heavy.nodeSelector).toEqual({ pool: 'provers' });
    expect(heavy.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }]);
    // A lane without them leaves the pod to the cluster's defaults.
    expect(spec.nodeSelector).toBeUndefined();
    expect(spec.containers.find((c) => c.name === 'prover')!.resources).toBeUndefined();
  });

  it('is fetch (init), then prover and reporter, never restarted, without service-account token', () => {
    expect(spec.initContainers?.map((c) => c.name)).toEqual(['fetch']);
    expect(spec.containers.map((c) => c.name)).toEqual(['prover', 'reporter']);
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
      expect(c.securityContext, c.name).toEqual({
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
    expect(spec.volumes?.find((v) => v.name === volumeNames.credential)?.secret).toMatchObject({ secretName: 'pp-0123-upload', defaultMode: 0o400 });
    for (const c of all) for (const e of c.env ?? []) expect(e.valueFrom, `${c.name} ${e.name}`).toBeUndefined();
  });

  it("gives the prover nothing of the scheduler's: no upload URL, no job identity", () => {
    const env = Object.fromEntries((byName('prover').env ?? []).map((e) => [e.name, e.value]));
    expect(Object.keys(env).sort()).toEqual(['PROOFPOD_PROFILE', 'PROOFPOD_SUBDIRECTORY', 'PROOFPOD_TARGETS']);
    expect(JSON.stringify(env)).not.toContain('scheduler');
  });

  it('lets the prover read but not write the meta volume, and the reporter read but not write results', () => {
    const mount = (c: string, v: string) => byName(c).volumeMounts?.find((m) => m.name === v);
    expect(mount('prover', volumeNames.meta)?.readOnly).toBe(true);
    expect(mount('prover', volumeNames.results)?.readOnly).toBeUndefined();
    expect(mount('reporter', volumeNames.results)?.readOnly).toBe(true);
    expect(mount('reporter', volumeNames.source)).toBeUndefined();
    expect(mount('fetch', volumeNames.results)).toBeUndefined();
  });

  it('gives each container a /tmp of its own', () => {
    const tmps = all.map((c) => c.volumeMounts?.find((m) => m.mountPath === '/tmp')?.name);
    expect(new Set(tmps).size).toBe(3);
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

  it('runs the prover image of the profile, and the task image for fetch and reporter', () => {
    expect(byName('prover').image).toBe(coq.image);
    expect(byName('fetch').image).toBe(config.pod.taskImage);
    expect(byName('reporter').image).toBe(config.pod.taskImage);
    expect(byName('fetch').env?.find((e) => e.name === 'PROOFPOD_MAX_SOURCE_BYTES')?.value).toBe('1000000');
  });
});
