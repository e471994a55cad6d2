import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A programs root for local-substrate tests, laid out as the real one (dist/pod-programs/*.mjs,
 * node_modules/, package.json) but holding small probes instead of the task-pod programs: each
 * records what its sandbox lets it see and do. The check takes `key=value` targets: `port=<n>`
 * (a server it must not reach), `exit=<n>`, `sleep=<seconds>`, `write=<bytes>` (a file that big); it passes on what the build probe
 * (`buildProbe`, the profile's build command) left. The reporter posts everything it saw to its
 * upload URL, so the test server receives the probes of every sandbox. Paths honour
 * `PROOFPOD_MOUNT_*` so the same programs run without a sandbox.
 */
export async function writeProbePrograms(options: { withNodeModules?: boolean } = {}): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'proofpod-programs-'));
  // Sandboxes run as an unprivileged uid: it must be able to reach and read the programs.
  await chmod(root, 0o755);
  await mkdir(path.join(root, 'dist', 'task-pod'), { recursive: true, mode: 0o755 });
  await mkdir(path.join(root, 'dist', 'pod-programs'), { recursive: true, mode: 0o755 });
  if (options.withNodeModules !== false) await mkdir(path.join(root, 'node_modules'), { mode: 0o755 });
  await writeFile(path.join(root, 'package.json'), '{"type":"module"}\n', { mode: 0o644 });
  await writeFile(path.join(root, 'dist', 'task-pod', 'build-probe.cjs'), buildProbeScript, { mode: 0o644 });
  for (const [name, text] of Object.entries(programs)) {
    await writeFile(path.join(root, 'dist', 'pod-programs', `${name}.mjs`), `${common}\n${text}`, { mode: 0o644 });
  }
  return root;
}

const common = `
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
const mount = (name, fallback) => process.env['PROOFPOD_MOUNT_' + name] || fallback;
const source = mount('SOURCE', '/workspace/source');
const meta = mount('META', '/workspace/meta');
const results = mount('RESULTS', '/workspace/results');
const artifacts = mount('ARTIFACTS', '/workspace/artifacts');
const credential = mount('CREDENTIAL', '/var/run/proofpod/upload') + '/credential';
const tmp = mount('TMP', '/tmp');
const terminationLog = process.env.PROOFPOD_TERMINATION_LOG || '/dev/termination-log';
const tryRead = (file) => { try { return 'read:' + readFileSync(file, 'utf8'); } catch (e) { return e.code; } };
const tryWrite = (file) => { try { writeFileSync(file, 'x'); return 'written'; } catch (e) { return e.code; } };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
`;

const programs = {
  fetch: `
const url = process.env.PROOFPOD_SOURCE_URL;
console.log('fetch: fetching ' + url);
if (url.includes('refuse')) {
  writeFileSync(terminationLog, 'source refused: a symlink leaves the workspace');
  process.exit(1);
}
if (url.includes('crash')) {
  console.error('fetch: the disk is on fire');
  process.exit(2);
}
writeFileSync(source + '/fetched.txt', 'fetched ' + url);
writeFileSync(meta + '/manifest.json', JSON.stringify({ url }));
`,
  check: `
const options = Object.fromEntries(JSON.parse(process.env.PROOFPOD_TARGETS).map((t) => t.split('=')));
const status = readFileSync('/proc/self/status', 'utf8');
const probe = {
  sawFetch: tryRead(source + '/fetched.txt'),
  uid: process.getuid(),
  pid: process.pid,
  capEff: /CapEff:\\s*(\\S+)/.exec(status)?.[1],
  credential: tryRead(credential),
  writeOpt: tryWrite('/opt/probe'),
  writeEtc: tryWrite('/etc/probe'),
  writeMeta: tryWrite(meta + '/probe'),
  writeSource: tryWrite(source + '/probe'),
  writeArtifacts: tryWrite(artifacts + '/probe'),
  env: Object.keys(process.env).sort(),
  build: existsSync(artifacts + '/tree/build-probe.json') ? JSON.parse(readFileSync(artifacts + '/tree/build-probe.json', 'utf8')) : null,
};
// A file larger than the sandbox's file-size limit (Node ignores SIGXFSZ, so the write fails with EFBIG).
if (options.write) {
  try {
    writeFileSync(tmp + '/big', Buffer.alloc(Number(options.write)));
    probe.bigWrite = 'written';
  } catch (e) {
    probe.bigWrite = e.code;
  }
}
probe.network = await fetch('http://127.0.0.1:' + options.port + '/from-prover', { signal: AbortSignal.timeout(3000) }).then(
  (r) => 'reached ' + r.status,
  (e) => 'failed ' + (e.cause?.code ?? e.name),
);
writeFileSync(tmp + '/check-secret.txt', 'left by the check');
console.log('check: probed');
writeFileSync(results + '/probe.json.tmp', JSON.stringify(probe));
renameSync(results + '/probe.json.tmp', results + '/probe.json');
if (options.sleep) await sleep(Number(options.sleep) * 1000);
process.exit(Number(options.exit ?? 0));
`,
  reporter: `
let probe = null;
for (let i = 0; i < 200 && !probe; i++) {
  if (existsSync(results + '/probe.json')) probe = JSON.parse(readFileSync(results + '/probe.json', 'utf8'));
  else await sleep(50);
}
const seen = {
  probe,
  credential: tryRead(credential),
  checkTmp: tryRead(tmp + '/check-secret.txt'),
  buildTmp: tryRead(tmp + '/build-secret.txt'),
  writeResults: tryWrite(results + '/reporter'),
  uid: process.getuid(),
};
const response = await fetch(process.env.PROOFPOD_UPLOAD_URL, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(seen),
});
console.log('reporter: uploaded, ' + response.status);
`,
};

/**
 * The build command of the probe profile. The build container runs no program of ours: this probe
 * stands for proof code, and records in its working directory (the artifacts volume's copy of the
 * source) what the build sandbox lets it see and do. Sandboxed only: it is found at /opt/proofpod.
 */
export function buildProbe(): string[] {
  return ['node', '/opt/proofpod/dist/task-pod/build-probe.cjs', '{target}'];
}

const buildProbeScript = `
const { readFileSync, writeFileSync, readdirSync } = require('node:fs');
const tryRead = (file) => { try { return 'read:' + readFileSync(file, 'utf8'); } catch (e) { return e.code; } };
const tryWrite = (file) => { try { writeFileSync(file, 'x'); return 'written'; } catch (e) { return e.code; } };
const status = readFileSync('/proc/self/status', 'utf8');
const source = process.env.PROOFPOD_MOUNT_SOURCE || '/workspace/source';
if (!process.argv[2].startsWith('port=')) process.exit(0);
const port = process.argv[2].split('=')[1];
writeFileSync((process.env.TMPDIR || '/tmp') + '/build-secret.txt', 'left by the build');
fetch('http://127.0.0.1:' + port + '/from-build', { signal: AbortSignal.timeout(3000) }).then(
  (r) => 'reached ' + r.status,
  (e) => 'failed ' + (e.cause?.code ?? e.name),
).then((network) => writeFileSync('build-probe.json', JSON.stringify({
  uid: process.getuid(),
  pid: process.pid,
  pids: readdirSync('/proc').filter((e) => /^[0-9]+$/.test(e)).length,
  capEff: /CapEff:\\s*(\\S+)/.exec(status)?.[1],
  credential: tryRead('/var/run/proofpod/upload/credential'),
  results: tryRead('/workspace/results/result.json'),
  writeSource: tryWrite(source + '/probe'),
  network,
  env: Object.keys(process.env).sort(),
})));`;
