import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { DEFAULT_KEY_FILE } from '../scheduler/attestation/signing-key.js';
import { main as cli } from '../scheduler/cli/main.js';
import type { ConfigInput } from '../scheduler/config.js';
import { defaultProverProfiles } from '../scheduler/prover-profiles.js';
import { jobVerdict } from './bench/job-verdict.js';
import { cosignVerify } from './support/cosign.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FixtureRepo, scratch } from './support/git-fixtures.js';
import { call, startInstance } from './support/instance.js';

/**
 * Signed verdicts (docs/security.md, "Signed verdicts") on the real local substrate with real Coq:
 * each final verdict's attestation is checked offline by `proofpod verify` and by cosign, which
 * know nothing but the public key; tampering, another commit and another key fail both. Restarts
 * keep the key and every attestation; a rotation keeps the old ones verifiable with the old key.
 */
const db = await createTestDatabase();
const token = await createToken(db.sql, { id: 'signed' });
const stranger = await createToken(db.sql, { id: 'stranger' });
const work = scratch('proofpod-signed-');
chmodSync(work.root, 0o755);
const files = work.dir('files');
const home = work.dir('home');
const fixture = (name: string) => readFileSync(path.join('test/fixtures/proofs', name));
const classic = 'Coq.Logic.Classical_Prop.classic';

const config: ConfigInput = {
  substrate: 'local',
  home,
  pod: { allowFileSources: true },
  // Uids of this file's own: test files run at once, each with a local substrate of its own.
  local: { sandboxUids: { first: 680_000, count: 1024 } },
  provers: [
    ...defaultProverProfiles,
    // Proof code that runs at build time and goes looking for the signing key where our source says it is.
    {
      name: 'shell',
      image: 'proofpod/prover-shell:latest',
      versionCommand: ['sh', '-c', 'echo sh'],
      build: { command: ['sh', '{target}'] },
      check: { input: 'source', command: ['sh', '-c', 'exit 0'] },
    },
  ],
  lanes: [
    { name: 'verify', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 120 },
    { name: 'classical', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 120, allowedAxioms: [classic] },
  ],
};

let proofpod: Proofpod;
let repo: FixtureRepo;
let commit: string;

beforeAll(async () => {
  repo = new FixtureRepo(work.dir('proofs'));
  commit = repo.commit({
    'Arith.v': fixture('Arith.v'),
    'Axiomatic.v': fixture('Axiomatic.v'),
    'Classical.v': fixture('Classical.v'),
    'steal.sh': [
      `for f in ${path.join(home, DEFAULT_KEY_FILE)} ${path.join(home, 'admin-token')}; do cat "$f" && echo "read $f"; done`,
      `ls -la ${home} || true`,
      'exit 0',
      '',
    ].join('\n'),
  });
  proofpod = await startInstance(db.url, config);
});
afterAll(async () => {
  await proofpod?.stop();
  work.remove();
});

async function verdictOf(target: string, lane = 'verify', prover = 'coq'): Promise<{ id: string; state: string }> {
  const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
    token,
    body: { source: { url: repo.url, commit }, prover, targets: [target], lane },
  });
  expect(submitted.status).toBe(201);
  const id = submitted.body.id as string;
  const { state } = await jobVerdict(proofpod.url, { authorization: `Bearer ${token}` }, id);
  return { id, state };
}

/**
 * The job's attestation as a Sigstore bundle, written to a file as a third party would keep it
 * (both verifiers read it); the bare envelope the route answers by default is the bundle's.
 */
async function attestationFile(id: string, name = id): Promise<string> {
  const response = await call(proofpod.url, 'GET', `/v1/jobs/${id}/attestation?format=bundle`, { token });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  const envelope = await call(proofpod.url, 'GET', `/v1/jobs/${id}/attestation`, { token });
  expect(response.body.dsseEnvelope).toEqual(envelope.body);
  const file = path.join(files, `${name}.sigstore.json`);
  writeFileSync(file, JSON.stringify(response.body));
  writeFileSync(path.join(files, `${name}.dsse.json`), JSON.stringify(envelope.body));
  return file;
}

async function publishedKeys() {
  const response = await call(proofpod.url, 'GET', '/.well-known/proofpod/attestation-keys');
  expect(response.status).toBe(200);
  return response.body.keys as { keyid: string; publicKeyPem: string; validFrom: string; validUntil: string | null }[];
}

function keyFile(pem: string, name: string): string {
  const file = path.join(files, name);
  writeFileSync(file, pem);
  return file;
}

async function verify(args: string[]): Promise<{ code: number; output: string }> {
  let output = '';
  const code = await cli(['verify', ...args], {}, (s) => {
    output += s;
  });
  return { code, output };
}

/** A copy of the envelope with `edit` applied to its decoded payload, re-encoded; the signature is left as it was. */
function tampered(file: string, edit: (payload: Buffer) => Buffer, name: string): string {
  const bundle = JSON.parse(readFileSync(file, 'utf8'));
  const envelope = bundle.dsseEnvelope;
  envelope.payload = edit(Buffer.from(envelope.payload, 'base64')).toString('base64');
  const out = path.join(files, name);
  writeFileSync(out, JSON.stringify(bundle));
  return out;
}

/** cosign with an empty HOME of its own in this file's scratch space (removed with it). */
const cosign = (publicKeyFile: string, expected: string, bundleFile: string) =>
  cosignVerify(work.dir('cosign-home'), publicKeyFile, expected, bundleFile);

const otherPublicKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

describe('signed verdicts', () => {
  let verifiedId: string;
  let verifiedFile: string;
  let firstKey: string;

  it('signs a verified job; proofpod verify and cosign accept it, and refuse a flipped byte, another commit and another key', async () => {
    const { id, state } = await verdictOf('Arith.v');
    expect(state).toBe('verified');
    verifiedId = id;
    verifiedFile = await attestationFile(id);
    const keys = await publishedKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]!.validUntil).toBeNull();
    firstKey = keyFile(keys[0]!.publicKeyPem, 'first.pub.pem');
    // The local default: generated on first start, readable by its owner only.
    expect(statSync(path.join(home, DEFAULT_KEY_FILE)).mode & 0o777).toBe(0o600);

    const good = await verify(['--key', firstKey, '--commit', commit, '--expect', 'verified', verifiedFile]);
    expect(good, good.output).toMatchObject({ code: 0 });
    expect((await verify(['--key', firstKey, '--commit', commit, verifiedFile.replace('.sigstore.json', '.dsse.json')])).code).toBe(0);
    expect(good.output).toMatch(new RegExp(`^attestation holds: verified: ${repo.url} at ${commit} by coq \\(The Coq Proof`));

    const flipped = tampered(
      verifiedFile,
      (p) => Buffer.from(p.toString().replace('"result":"PASSED"', '"result":"PASSEE"')),
      'flipped.json',
    );
    const otherCommit = 'f'.repeat(40);
    const moved = tampered(verifiedFile, (p) => Buffer.from(p.toString().replaceAll(commit, otherCommit)), 'moved.json');
    const otherKey = keyFile(otherPublicKey, 'other.pub.pem');
    const refusals: [string[], RegExp][] = [
      [['--key', firstKey, '--commit', commit, flipped], /no signature .* verifies/],
      [['--key', firstKey, '--commit', otherCommit, moved], /no signature .* verifies/],
      [['--key', firstKey, '--commit', otherCommit, verifiedFile], new RegExp(`about commit ${commit}, not ${otherCommit}`)],
      [['--key', otherKey, '--commit', commit, verifiedFile], /no signature .* verifies/],
    ];
    for (const [args, reason] of refusals) {
      const refused = await verify(args);
      expect(refused.code, `${args.join(' ')}: ${refused.output}`).toBe(1);
      expect(refused.output).toMatch(reason);
    }

    const verified = cosign(firstKey, commit, verifiedFile);
    expect(verified.status, `cosign verifies the attestation: ${verified.stderr}`).toBe(0);
    expect(verified.stderr).toMatch(/Verified OK/);
    const badSignature = /accepted signatures do not match threshold, Found: 0/;
    for (const [what, [publicKey, expected, file], reason] of [
      ['one byte flipped', [firstKey, commit, flipped], badSignature],
      ['the subject moved to another commit', [firstKey, otherCommit, moved], badSignature],
      ['another commit expected', [firstKey, otherCommit, verifiedFile], /provided artifact digest does not match any digest in statement/],
      ['another key', [otherKey, commit, verifiedFile], badSignature],
    ] as const) {
      const refused = cosign(publicKey, expected, file);
      expect(refused.status, `cosign: ${what}`).toBe(1);
      expect(refused.stderr, `cosign: ${what}`).toMatch(reason);
    }
  });

  it('signs a rejected job with its findings, and it verifies too', async () => {
    const { id, state } = await verdictOf('Axiomatic.v');
    expect(state).toBe('rejected');
    const file = await attestationFile(id);
    const statement = JSON.parse(Buffer.from(JSON.parse(readFileSync(file, 'utf8')).dsseEnvelope.payload, 'base64').toString());
    expect(statement.predicate.result).toBe('FAILED');
    expect(statement.predicate.proofpod.verdict).toBe('rejected');
    expect(statement.predicate.failedTests).toEqual(
      expect.arrayContaining(['audit:axiom:Top.Axiomatic.excluded_middle', 'audit:axiom:Top.Axiomatic.left_for_later']),
    );
    expect(statement.predicate.proofpod.findings).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'axiom', name: 'Top.Axiomatic.excluded_middle', allowed: false })]),
    );
    expect((await verify(['--key', firstKey, '--commit', commit, file])).code).toBe(0);
    const required = await verify(['--key', firstKey, '--commit', commit, '--expect', 'verified', file]);
    expect(required.code).toBe(1);
    expect(required.output).toMatch(/the verdict is rejected, not verified: rejected: audit found axiom Top.Axiomatic.excluded_middle/);
    expect(cosign(firstKey, commit, file).status).toBe(0);
  });

  it('names the allow-list a job was judged under, so a verifier can refuse the policy', async () => {
    const { id, state } = await verdictOf('Classical.v', 'classical');
    expect(state).toBe('verified');
    const file = await attestationFile(id);
    const statement = JSON.parse(Buffer.from(JSON.parse(readFileSync(file, 'utf8')).dsseEnvelope.payload, 'base64').toString());
    expect(statement.predicate).toMatchObject({
      result: 'WARNED',
      warnedTests: [`audit:axiom:${classic}`],
      proofpod: { policy: { lane: 'classical', allowedAxioms: [classic] } },
    });
    const strict = await verify(['--key', firstKey, '--commit', commit, '--accept-axioms', 'Coq.Init.Nothing', file]);
    expect(strict.code).toBe(1);
    expect(strict.output).toMatch(`lane classical's allow-list, which allows ${classic}: not accepted`);
    expect((await verify(['--key', firstKey, '--commit', commit, '--accept-axioms', classic, file])).code).toBe(0);
  });

  it('signs nothing but verdicts, and shows a job’s attestation only to who may see the job', async () => {
    const submitted = await call(proofpod.url, 'POST', '/v1/jobs', {
      token,
      body: { source: { url: repo.url, commit }, prover: 'coq', targets: ['Arith.v'], lane: 'verify', priority: -100 },
    });
    const id = submitted.body.id as string;
    await call(proofpod.url, 'POST', `/v1/jobs/${id}/cancel`, { token });
    expect((await jobVerdict(proofpod.url, { authorization: `Bearer ${token}` }, id)).state).toBe('cancelled');
    const none = await call(proofpod.url, 'GET', `/v1/jobs/${id}/attestation`, { token });
    expect(none.status).toBe(404);
    expect(none.body.message).toMatch(/has no attestation: it ended cancelled, and only verified and rejected verdicts are signed/);
    const [signed] = await db.sql<{ jobId: string }[]>`select job_id from attestations limit 1`;
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${signed!.jobId}/attestation`, { token: stranger })).status).toBe(404);
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${signed!.jobId}/attestation`)).status).toBe(401);
    await expect(db.sql`update attestations set keyid = keyid`).rejects.toThrow(/append-only/);
  });

  it('keeps the key and every attestation across a restart; after a rotation old attestations verify with the old key only', async () => {
    await proofpod.stop();
    proofpod = await startInstance(db.url, config);
    expect(await publishedKeys()).toHaveLength(1);
    expect((await verify(['--key', firstKey, '--commit', commit, await attestationFile(verifiedId, 'again')])).code).toBe(0);
    const again = await verdictOf('Arith.v');
    expect((await verify(['--key', firstKey, '--commit', commit, await attestationFile(again.id)])).code).toBe(0);

    // Rotation: the operator gives the replicas a new key (docs/security.md, "Keys and rotation").
    await proofpod.stop();
    const next = keyFile(
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      'next.key.pem',
    );
    proofpod = await startInstance(db.url, { ...config, attestation: { signingKeyFile: next } });
    const rotated = await verdictOf('Arith.v');
    const rotatedFile = await attestationFile(rotated.id);
    const keys = await publishedKeys();
    expect(keys).toHaveLength(2);
    expect(keys[0]!.publicKeyPem).toBe(readFileSync(firstKey, 'utf8'));
    expect(keys[0]!.validUntil).not.toBeNull();
    expect(keys[1]!.validUntil).toBeNull();
    const nextKey = keyFile(keys[1]!.publicKeyPem, 'next.pub.pem');
    expect((await verify(['--key', nextKey, '--commit', commit, rotatedFile])).code).toBe(0);
    expect((await verify(['--key', firstKey, '--commit', commit, rotatedFile])).code).toBe(1);
    expect((await verify(['--key', firstKey, '--commit', commit, verifiedFile])).code).toBe(0);
    expect((await verify(['--key', nextKey, '--commit', commit, verifiedFile])).code).toBe(1);
    expect(cosign(nextKey, commit, rotatedFile).status).toBe(0);
    expect(cosign(firstKey, commit, verifiedFile).status).toBe(0);
  });

  it('keeps the key out of reach of proof code: a build that reads where the key is finds nothing', async () => {
    const { id } = await verdictOf('steal.sh', 'verify', 'shell');
    // The build's output is kept in the check's log (the check wrapper copies it there, marked untrusted).
    const logs = await Promise.all(
      ['build', 'check'].map(async (c) => String((await call(proofpod.url, 'GET', `/v1/jobs/${id}/logs?container=${c}`, { token })).body)),
    );
    const log = { body: logs.join('\n') };
    expect(log.body).toMatch(/attestation-signing-key.pem: No such file or directory/);
    expect(log.body).not.toMatch(/read \//);
    const pem = readFileSync(path.join(home, DEFAULT_KEY_FILE), 'utf8');
    const secret = pem.split('\n')[1]!;
    const everything = JSON.stringify([
      log.body,
      (await call(proofpod.url, 'GET', `/v1/jobs/${id}/evidence`, { token })).body,
      (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body,
    ]);
    expect(everything.includes(secret), 'a line of the private key leaked').toBe(false);
  });

  it('refuses to start with a configured key file that is missing, rather than make a new key there', async () => {
    const missing = path.join(files, 'missing.pem');
    await expect(startInstance(db.url, { ...config, substrate: 'local', attestation: { signingKeyFile: missing } })).rejects.toThrow(
      `attestation.signingKeyFile ${missing} does not exist`,
    );
  });
});
