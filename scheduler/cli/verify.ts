import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describePublicKey } from '../attestation/signing-key.js';
import { verifyAttestation } from '../attestation/verify-attestation.js';
import { coerceError } from '../errors.js';

export interface VerifyOptions {
  key?: string | undefined;
  commit?: string | undefined;
  tree?: string | undefined;
  expect?: string | undefined;
  'accept-axioms'?: string | undefined;
}

/**
 * `proofpod verify`: checks an attestation file offline against a public key file, with no
 * scheduler and no network. Exit 0 when it holds, 1 when it does not (the reason is printed), 64
 * for a usage error.
 */
export async function verifyCommand(file: string | undefined, options: VerifyOptions, out: (s: string) => void): Promise<number> {
  if (!file || !options.key || !options.commit) {
    out(
      'usage: proofpod verify --key PUBLIC_KEY.pem --commit SHA [--tree SHA] [--expect verified|rejected] [--accept-axioms A,B] ATTESTATION.json\n',
    );
    return 64;
  }
  if (options.expect && options.expect !== 'verified' && options.expect !== 'rejected') {
    out(`--expect must be verified or rejected, not ${options.expect}\n`);
    return 64;
  }
  let publicKey: ReturnType<typeof createPublicKey>;
  let text: string;
  try {
    publicKey = createPublicKey(await readFile(options.key, 'utf8'));
    // Refuses, naming it, a key type no attestation is signed with (RSA, P-384…).
    describePublicKey(publicKey);
    text = await readFile(file, 'utf8');
  } catch (error) {
    out(`attestation not verified: ${coerceError(error).message}\n`);
    return 1;
  }
  const result = verifyAttestation(text, publicKey, {
    commit: options.commit,
    tree: options.tree,
    verdict: options.expect as 'verified' | 'rejected' | undefined,
    acceptAxioms: options['accept-axioms']?.split(',').filter(Boolean),
  });
  out(result.ok ? `attestation holds: ${result.summary}\n` : `attestation not verified: ${result.reason}\n`);
  return result.ok ? 0 : 1;
}
