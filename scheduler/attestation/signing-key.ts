import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, coerceError } from '../errors.js';
import { sha256 } from '../../contract/canonical-json.js';

/** The two key types a DSSE verifier such as cosign takes from a PEM file. */
export type KeyAlgorithm = 'ecdsa-p256-sha256' | 'ed25519';

/** The key this replica signs attestations with, and what third parties are told of it. */
export interface SigningKey {
  /** The key's OpenSSH SHA-256 fingerprint (`SHA256:…`, as `ssh-keygen -l` prints it): computable by anyone holding the key. */
  keyid: string;
  algorithm: KeyAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
}

/** The local default's key file, generated on first start (docs/security.md, "Signed verdicts"). */
export const DEFAULT_KEY_FILE = 'attestation-signing-key.pem';

/** Key id and algorithm of a public key; throws for any key but ECDSA P-256 and Ed25519. */
export function describePublicKey(publicKey: KeyObject): { keyid: string; algorithm: KeyAlgorithm } {
  const type = publicKey.asymmetricKeyType;
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  let algorithm: KeyAlgorithm;
  if (type === 'ed25519') algorithm = 'ed25519';
  else if (type === 'ec' && curve === 'prime256v1') algorithm = 'ecdsa-p256-sha256';
  else throw new Error(`a ${type}${curve ? ` ${curve}` : ''} key: attestations are signed with ECDSA P-256 or Ed25519 only`);
  return { keyid: fingerprint(publicKey, algorithm), algorithm };
}

/**
 * The OpenSSH SHA-256 fingerprint: of the key in SSH wire format (length-prefixed fields). It is
 * the key id a DSSE signature may carry and still verify in cosign, which refuses any other
 * non-empty one (a hex digest of the DER, say) when it reads a Sigstore bundle.
 */
function fingerprint(publicKey: KeyObject, algorithm: KeyAlgorithm): string {
  const field = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const jwk = publicKey.export({ format: 'jwk' });
  const raw = (value: string | undefined) => Buffer.from(value ?? '', 'base64url');
  const wire =
    algorithm === 'ed25519'
      ? Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw(jwk.x))])
      : Buffer.concat([
          field(Buffer.from('ecdsa-sha2-nistp256')),
          field(Buffer.from('nistp256')),
          field(Buffer.concat([Buffer.of(4), raw(jwk.x), raw(jwk.y)])),
        ]);
  return `SHA256:${sha256(wire).toString('base64').replace(/=+$/, '')}`;
}

/** A signing key from a private key's PEM (PKCS#8 or SEC1, as Helm's genPrivateKey writes it). */
export function signingKeyFromPem(pem: string, where: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new ConfigError(`${where}: not a PEM private key (${coerceError(error).message})`);
  }
  const publicKey = createPublicKey(privateKey);
  try {
    return {
      ...describePublicKey(publicKey),
      privateKey,
      publicKey,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
  } catch (error) {
    throw new ConfigError(`${where}: ${coerceError(error).message}`);
  }
}

/**
 * The configured key file, or the local default under `home`, which is generated (ECDSA P-256,
 * mode 0600) when missing. A configured file that is missing is an error, never replaced: a new key
 * there would silently orphan every attestation signed with the operator's key.
 */
export async function loadSigningKey(home: string, configuredFile: string | undefined): Promise<SigningKey> {
  const file = configuredFile ?? path.join(home, DEFAULT_KEY_FILE);
  try {
    return signingKeyFromPem(await readFile(file, 'utf8'), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (configuredFile) throw new ConfigError(`attestation.signingKeyFile ${file} does not exist`);
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  try {
    // Exclusive: two processes sharing a home keep the first one's key.
    await writeFile(file, pem, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return signingKeyFromPem(await readFile(file, 'utf8'), file);
  }
  return signingKeyFromPem(pem, file);
}
