/**
 * The chart smoke CI runs on kind (smoke/chart-smoke.ts), run here against the local control plane:
 * `helm install` with RBAC on, the scheduler's Deployment pod run by the process-kubelet and
 * authenticating with its projected ServiceAccount token, real proofs verified through Jobs, and
 * nothing of the release left after `helm uninstall`. The differences from kind are only in what
 * the smoke is given: the database (this suite's Postgres instead of the chart's evaluation one,
 * whose image the process-kubelet cannot run), the API URL (pods share this machine's loopback, so no
 * port-forward) and a file:// proof source (pods see this machine's files).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../scheduler/database/embedded.js';
import { clusterUnavailable, kubeconfigPath } from '../support/cluster.js';
import { createTestDatabase } from '../support/database.js';
import { findHelm } from '../support/helm.js';

const run = promisify(execFile);
const helm = findHelm();
const skipReason = (await clusterUnavailable()) ?? (helm ? undefined : 'no helm: run smoke/tools/build.sh, or set HELM');
if (skipReason) console.warn(`chart smoke skipped: ${skipReason}`);
const smoke = path.resolve(import.meta.dirname, '../../dist/smoke/chart-smoke.js');
// At the top level, so that the database's cleanup hook is registered while the file is collected.
const database = skipReason ? undefined : await createTestDatabase();

describe.skipIf(skipReason !== undefined)(`chart smoke on the local control plane${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const runSmoke = async (substrate: 'kubernetes' | 'local', env: NodeJS.ProcessEnv = {}) => {
    const { url } = database!;
    const port = await freeLoopbackPort();
    const namespace = `pp-smoke-${substrate.slice(0, 5)}-${Math.random().toString(16).slice(2, 8)}`;
    const sets = [
      // The images the process-kubelet maps, and a port of this machine's loopback.
      'image.tag=latest',
      `scheduler.port=${port}`,
      `scheduler.publicUrl=http://127.0.0.1:${port}`,
      'replicaCount=1',
    ];
    const result = await run(
      process.execPath,
      [smoke, '--substrate', substrate, '--namespace', namespace, '--timeout', '150', ...sets.flatMap((s) => ['--set', s])],
      {
        env: {
          ...process.env,
          KUBECONFIG: kubeconfigPath,
          HELM: helm!,
          PROOFPOD_SMOKE_URL: `http://127.0.0.1:${port}`,
          PROOFPOD_SMOKE_DATABASE_URL: url,
          ...env,
        },
        maxBuffer: 16 << 20,
      },
    ).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`the smoke failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    });
    console.log(result.stdout);
    expect(result.stdout).toMatch(/verdicts: Arith\.v verified, setmm-prop\.mm verified, Broken\.v rejected/);
    expect(result.stdout).toMatch(/nothing of the release is left; passed/);
    return result.stdout;
  };

  it('installs with RBAC on, verifies two proofs in parallel and rejects a broken one through Jobs, and leaves nothing after uninstall', async () => {
    expect(await runSmoke('kubernetes')).toMatch(/3 Jobs and 3 pods hold the task-pod invariants/);
  }, 300_000);

  it('runs the same proofs in the scheduler pod with the local substrate: no Jobs, no RBAC objects', async () => {
    // The proofpod/local image of kubelet-config.yaml includes this directory; the scheduler pod's
    // fetch sandboxes read the file:// repository from it.
    await runSmoke('local', { PROOFPOD_SMOKE_SOURCE_ROOT: '/var/tmp/proofpod-smoke-sources' });
  }, 300_000);
});
