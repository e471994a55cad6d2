import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type Envelope, pae, signEnvelope } from '../scheduler/attestation/dsse.js';
import { describePublicKey, signingKeyFromPem } from '../scheduler/attestation/signing-key.js';
import { sigstoreBundle } from '../scheduler/attestation/sigstore-bundle.js';
import { PAYLOAD_TYPE, type VerdictFacts, verdictStatement } from '../scheduler/attestation/verdict-statement.js';
import { type Expectations, verifyAttestation } from '../scheduler/attestation/verify-attestation.js';
import { FAKE_IMAGE_DIGEST, evidenceFor, laneProfile } from './support/evidence.js';

const keyOf = (type: 'ec' | 'ed25519') =>
  signingKeyFromPem(
    (type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')).privateKey
      .export({ type: 'pkcs8', format: 'pem' })
      .toString(),
    'test',
  );
const key = keyOf('ec');
const other = keyOf('ec');

const commit = '0123456789abcdef0123456789abcdef01234567';
const launch = {
  jobId: '4f729731-6248-4cb0-97a6-c81d10dfde1f',
  attemptNo: 1,
  source: { url: 'https://example.org/proofs.git', commit, subdirectory: null },
  prover: 'coq',
  targets: ['Main.v'],
};
const profile = laneProfile('coq');

function facts(overrides: Partial<VerdictFacts> = {}, allowedAxioms: string[] = []): VerdictFacts {
  return {
    verdict: 'verified',
    reason: 'verified: 1 target(s) passed',
    jobId: launch.jobId,
    attemptNo: 1,
    lane: 'verify',
    jobUrl: 'https://proofpod.example/v1/jobs/4f729731-6248-4cb0-97a6-c81d10dfde1f',
    evidence: evidenceFor(launch, { audit: { allowedAxioms, findings: [] } }, profile),
    evidenceDigest: `sha256:${'e'.repeat(64)}`,
    observed: { check: { exitCode: 0, imageDigest: FAKE_IMAGE_DIGEST }, build: { exitCode: 0, imageDigest: FAKE_IMAGE_DIGEST } },
    dispatched: { source: launch.source, targets: launch.targets, profile, allowedAxioms, goals: [] },
    issuedAt: new Date('2026-12-01T12:00:00Z'),
    ...overrides,
  };
}

const signed = (statement: unknown, signer = key): Envelope =>
  signEnvelope(PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), signer.privateKey, signer.keyid);
const check = (envelope: unknown, expect: Partial<Expectations> = {}, publicKey = key.publicKey) =>
  verifyAttestation(JSON.stringify(envelope), publicKey, { commit, ...expect });

describe('DSSE pre-authentication encoding', () => {
  it('is the DSSEv1 encoding with byte lengths, so a multi-byte payload type counts its bytes', () => {
    expect(pae('application/vnd.in-toto+json', Buffer.from('{}')).toString()).toBe('DSSEv1 28 application/vnd.in-toto+json 2 {}');
    expect(pae('tÿpe', Buffer.from('é')).toString()).toBe('DSSEv1 5 tÿpe 2 é');
  });
});

describe('the statement of a verdict', () => {
  it('names the commit and tree as its subject, and the policy, profile, images and evidence as its configuration', () => {
    const statement = verdictStatement(facts());
    expect(statement.subject).toEqual([{ name: launch.source.url, digest: { gitCommit: commit, gitTree: 'a'.repeat(40) } }]);
    expect(statement.predicateType).toBe('https://in-toto.io/attestation/test-result/v0.1');
    expect(statement.predicate.result).toBe('PASSED');
    expect(statement.predicate.passedTests).toEqual(['target:Main.v']);
    expect(statement.predicate.configuration.map((c) => c.name)).toEqual([
      'policy',
      'profile:coq',
      'image:check',
      'image:build',
      'evidence',
    ]);
    expect(statement.predicate.configuration.at(-1)).toMatchObject({
      uri: `${facts().jobUrl}/evidence`,
      digest: { sha256: 'e'.repeat(64) },
    });
    expect(statement.predicate.proofpod.checker).toMatchObject({ version: 'fake-checker 1.0', imageDigests: { check: FAKE_IMAGE_DIGEST } });
  });

  it('is the same for the same facts, byte for byte', () => {
    expect(JSON.stringify(verdictStatement(facts()))).toBe(JSON.stringify(verdictStatement(facts())));
  });

  it('says WARNED for a proof that relies on an axiom the policy allows, and FAILED with the findings when rejected', () => {
    const classic = { kind: 'axiom' as const, name: 'Coq.Logic.Classical_Prop.classic', target: 'Main.v', allowed: true };
    const allowed = facts({}, [classic.name]);
    allowed.evidence.audit.findings = [classic];
    const warned = verdictStatement(allowed).predicate;
    expect(warned.result).toBe('WARNED');
    expect(warned.warnedTests).toEqual([`audit:axiom:${classic.name}`]);
    expect(warned.proofpod.policy.allowedAxioms).toEqual([classic.name]);

    const refused = facts({ verdict: 'rejected', reason: 'rejected: audit found axiom Main.cheat' });
    refused.evidence.audit.findings = [{ kind: 'axiom', name: 'Main.cheat', target: 'Main.v', allowed: false }];
    const failed = verdictStatement(refused).predicate;
    expect(failed.result).toBe('FAILED');
    expect(failed.failedTests).toEqual(['audit:axiom:Main.cheat']);
    expect(failed.proofpod.findings).toEqual(refused.evidence.audit.findings);
  });
});

describe('verifying an attestation offline', () => {
  const envelope = signed(verdictStatement(facts()));

  it('holds with the signing key and the subject commit, for P-256 and Ed25519 keys', () => {
    const result = check(envelope);
    expect(result.ok, JSON.stringify(result)).toBe(true);
    const ed = keyOf('ed25519');
    expect(check(signed(verdictStatement(facts()), ed), {}, ed.publicKey).ok).toBe(true);
  });

  const flipped = (e: Envelope, at: number): Envelope => {
    const bytes = Buffer.from(e.payload, 'base64');
    bytes[at]! ^= 0x01;
    return { ...e, payload: bytes.toString('base64') };
  };
  const cases: [string, () => unknown, Partial<Expectations>, RegExp, (typeof key)['publicKey']?][] = [
    ['one payload byte flipped', () => flipped(envelope, 40), {}, /no signature .* verifies/],
    ['another key', () => envelope, {}, /no signature .* verifies/, other.publicKey],
    ['another commit expected', () => envelope, { commit: 'f'.repeat(40) }, /about commit 0123.*, not f{40}/],
    ['another tree expected', () => envelope, { tree: 'b'.repeat(40) }, /about tree a{40}, not b{40}/],
    ['the payload type changed', () => ({ ...envelope, payloadType: 'application/json' }), {}, /payload type "application\/json"/],
    ['no signature', () => ({ ...envelope, signatures: [] }), {}, /not a DSSE envelope: signatures/],
    ['not JSON', () => '{', {}, /not a DSSE envelope|not JSON/],
    [
      'a rejected verdict when verified is required',
      () => signed(verdictStatement(facts({ verdict: 'rejected' }))),
      { verdict: 'verified' },
      /verdict is rejected, not verified/,
    ],
    [
      'an allow-list the verifier does not accept',
      () => signed(verdictStatement(facts({}, ['Main.cheat']))),
      { acceptAxioms: ['Coq.Logic.Classical_Prop.classic'] },
      /allows Main.cheat: not accepted/,
    ],
    [
      'a result that disagrees with its verdict, though signed',
      () => {
        const s = verdictStatement(facts());
        s.predicate.result = 'FAILED';
        return signed(s);
      },
      {},
      /result FAILED disagrees with the verdict verified/,
    ],
    [
      'a policy its digest does not match, though signed',
      () => {
        const s = verdictStatement(facts());
        s.predicate.proofpod.policy.allowedAxioms = ['Main.cheat'];
        return signed(s);
      },
      {},
      /policy's digest does not match/,
    ],
    [
      'a subject that is not the details’ source, though signed',
      () => {
        const s = verdictStatement(facts());
        s.subject[0]!.digest.gitCommit = 'f'.repeat(40);
        return signed(s);
      },
      { commit: 'f'.repeat(40) },
      /subject and the details name different sources/,
    ],
    [
      'a statement of another form, though signed',
      () => signed({ _type: 'https://in-toto.io/Statement/v1', subject: [] }),
      {},
      /not a proofpod verdict/,
    ],
  ];
  it.each(cases)('fails for %s, with the reason', (_name, make, expect_, reason, publicKey) => {
    const made = make();
    const result = verifyAttestation(typeof made === 'string' ? made : JSON.stringify(made), publicKey ?? key.publicKey, {
      commit,
      ...expect_,
    });
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.reason).toMatch(reason);
  });

  it('holds for the same envelope carried in a Sigstore bundle, and fails for the bundle of a tampered one', () => {
    expect(check(sigstoreBundle(envelope, key.keyid)).ok).toBe(true);
    expect(check(sigstoreBundle(flipped(envelope, 40), key.keyid)).ok).toBe(false);
  });

  it('holds when one of several signatures is the given key’s (an envelope signed during a rotation)', () => {
    const both = { ...envelope, signatures: [signed(verdictStatement(facts()), other).signatures[0]!, ...envelope.signatures] };
    expect(check(both).ok).toBe(true);
    expect(check({ ...envelope, signatures: both.signatures.slice(0, 1) }).ok).toBe(false);
  });

  it('accepts a policy whose allow-list is within what the verifier accepts', () => {
    const classic = 'Coq.Logic.Classical_Prop.classic';
    expect(check(signed(verdictStatement(facts({}, [classic]))), { acceptAxioms: [classic], verdict: 'verified' }).ok).toBe(true);
  });
});

describe('signing keys', () => {
  it('are named by their OpenSSH SHA-256 fingerprint (this one as ssh-keygen -l printed it)', () => {
    const pem = [
      '-----BEGIN PUBLIC KEY-----',
      'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaTUME1rlmPYPV5itd/j8h+HDgRCt',
      '9GUHsEec3eS09QW5Z2lxMF22mi6uVG5yVfpp+KwwS3xcNGm18nhBGh7fng==',
      '-----END PUBLIC KEY-----',
    ].join('\n');
    expect(describePublicKey(createPublicKey(pem))).toEqual({
      keyid: 'SHA256:lgDtOssLJSh5aFLatgApAW2HYa3zqx6wpuszijG/a2c',
      algorithm: 'ecdsa-p256-sha256',
    });
  });

  it('refuses keys that are neither P-256 nor Ed25519, naming the key', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => signingKeyFromPem(rsa, '/etc/key.pem')).toThrow(/\/etc\/key.pem: a rsa key/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => signingKeyFromPem(p384, 'k')).toThrow(/secp384r1 key/);
    expect(() => signingKeyFromPem('not a key', 'k')).toThrow(/k: not a PEM private key/);
  });

  it('reads a SEC1 key, as Helm generates it', () => {
    const sec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    expect(signingKeyFromPem(sec1, 'k').algorithm).toBe('ecdsa-p256-sha256');
  });
});
