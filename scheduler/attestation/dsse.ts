import { type KeyObject, sign, verify } from 'node:crypto';
import * as z from 'zod';

/**
 * DSSE (Dead Simple Signing Envelope, github.com/secure-systems-lab/dsse, protocol v1): the
 * signature covers the pre-authentication encoding of the payload type and the payload bytes, so
 * neither can be swapped without breaking it. Written on node:crypto rather than taken from a
 * library: the protocol is the one function `pae` below, and the Sigstore libraries that implement
 * it want Fulcio, Rekor or TUF trust material that an offline key-only verification has none of.
 */
export const EnvelopeSchema = z.strictObject({
  payloadType: z.string().min(1).max(200),
  payload: z.base64().max(4 * 1024 * 1024),
  signatures: z
    .array(z.strictObject({ keyid: z.string().max(200).optional(), sig: z.base64().min(1).max(4096) }))
    .min(1)
    .max(16),
});
export type Envelope = z.infer<typeof EnvelopeSchema>;

/** DSSEv1 pre-authentication encoding: `DSSEv1 <len type> <type> <len body> <body>`, lengths in bytes. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** The digest algorithm node:crypto needs for a key: none for Ed25519 (it hashes itself), SHA-256 for P-256. */
const digestFor = (key: KeyObject) => (key.asymmetricKeyType === 'ed25519' ? null : 'sha256');

/** One signature by `privateKey` over the payload; ECDSA signatures are DER, as cosign expects. */
export function signEnvelope(payloadType: string, payload: Buffer, privateKey: KeyObject, keyid: string): Envelope {
  const sig = sign(digestFor(privateKey), pae(payloadType, payload), privateKey);
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid, sig: sig.toString('base64') }] };
}

/**
 * The payload when at least one of the envelope's signatures is `publicKey`'s over it and its
 * type; otherwise why not. Key ids are hints only: every signature is tried.
 */
export function openEnvelope(envelope: Envelope, publicKey: KeyObject): { ok: true; payload: Buffer } | { ok: false; reason: string } {
  const payload = Buffer.from(envelope.payload, 'base64');
  const message = pae(envelope.payloadType, payload);
  for (const { sig } of envelope.signatures) {
    let valid = false;
    try {
      valid = verify(digestFor(publicKey), message, publicKey, Buffer.from(sig, 'base64'));
    } catch {
      // A signature that is not even DER for this key type is simply not this key's.
    }
    if (valid) return { ok: true, payload };
  }
  const n = envelope.signatures.length;
  return { ok: false, reason: `no signature of the envelope (${n}) verifies with the given key over its payload` };
}
