import type { KeyObject } from 'node:crypto';
import { EnvelopeSchema, openEnvelope } from './dsse.js';
import { envelopeIn } from './sigstore-bundle.js';
import { PAYLOAD_TYPE, type VerdictStatement, VerdictStatementSchema, partDigest } from './verdict-statement.js';

/** What the verifier requires of the attestation beyond a valid signature. */
export interface Expectations {
  /** The source commit the verdict must be about. */
  commit: string;
  /** Its tree, when the verifier knows it. */
  tree?: string | undefined;
  /** The verdict the verifier requires; any when unset. */
  verdict?: 'verified' | 'rejected' | undefined;
  /** Axioms the verifier accepts a policy to allow; a policy allowing any other is refused. Any policy when unset. */
  acceptAxioms?: readonly string[] | undefined;
}

export type Verification = { ok: true; statement: VerdictStatement; summary: string } | { ok: false; reason: string };

const refuse = (reason: string): Verification => ({ ok: false, reason });

/**
 * Checks an attestation (a DSSE envelope, or a Sigstore bundle carrying one) offline, trusting nothing but `publicKey` (docs/security.md, "How a third
 * party verifies"): the DSSE signature over the payload and its type, the statement's form, that
 * its subject is the expected commit, that its standard fields agree with its details, and the
 * verifier's own requirements on the verdict and the policy.
 */
export function verifyAttestation(text: string, publicKey: KeyObject, expect: Expectations): Verification {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return refuse('the envelope is not JSON');
  }
  const envelope = EnvelopeSchema.safeParse(envelopeIn(json));
  if (!envelope.success)
    return refuse(`not a DSSE envelope: ${envelope.error.issues[0]?.path.join('.')} ${envelope.error.issues[0]?.message}`);
  if (envelope.data.payloadType !== PAYLOAD_TYPE)
    return refuse(`payload type ${JSON.stringify(envelope.data.payloadType)}, not ${PAYLOAD_TYPE}`);
  const opened = openEnvelope(envelope.data, publicKey);
  if (!opened.ok) return refuse(opened.reason);

  let payload: unknown;
  try {
    payload = JSON.parse(opened.payload.toString('utf8'));
  } catch {
    return refuse('the signed payload is not JSON');
  }
  const parsed = VerdictStatementSchema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return refuse(`the signed statement is not a proofpod verdict: ${issue?.path.join('.') || '(root)'} ${issue?.message}`);
  }
  const statement = parsed.data;
  const [subject] = statement.subject;
  const { proofpod: details, result, configuration } = statement.predicate;
  if (subject!.digest.gitCommit !== expect.commit.toLowerCase())
    return refuse(`the attestation is about commit ${subject!.digest.gitCommit}, not ${expect.commit}`);
  if (expect.tree && subject!.digest.gitTree !== expect.tree.toLowerCase())
    return refuse(`the attestation is about tree ${subject!.digest.gitTree}, not ${expect.tree}`);

  // The standard fields a generic in-toto verifier reads must say what the details say.
  if (subject!.digest.gitCommit !== details.source.commit || subject!.digest.gitTree !== details.source.treeHash)
    return refuse('the subject and the details name different sources');
  if ((result === 'FAILED') !== (details.verdict === 'rejected'))
    return refuse(`the result ${result} disagrees with the verdict ${details.verdict}`);
  const digestOf = (name: string) => configuration.find((c) => c.name === name)?.digest.sha256;
  if (digestOf('policy') !== partDigest(details.policy)) return refuse("the policy's digest does not match the policy");
  if (digestOf(`profile:${details.profile.name}`) !== partDigest(details.profile))
    return refuse("the profile's digest does not match the profile");

  if (expect.verdict && details.verdict !== expect.verdict)
    return refuse(`the verdict is ${details.verdict}, not ${expect.verdict}: ${details.reason}`);
  if (expect.acceptAxioms) {
    const accepted = new Set(expect.acceptAxioms);
    const beyond = details.policy.allowedAxioms.filter((a) => !accepted.has(a));
    if (beyond.length)
      return refuse(
        `the verdict was judged under lane ${details.policy.lane}'s allow-list, which allows ${beyond.join(', ')}: not accepted`,
      );
  }
  const allowed = details.policy.allowedAxioms.length ? `allow-list ${details.policy.allowedAxioms.join(', ')}` : 'no axiom allowed';
  return {
    ok: true,
    statement,
    summary: `${details.verdict}: ${details.source.url} at ${details.source.commit} by ${details.profile.name} (${details.checker.version ?? 'no version'}), lane ${details.policy.lane}, ${allowed}; ${details.reason}`,
  };
}
