import * as z from 'zod';
import { type Envelope, EnvelopeSchema } from './dsse.js';

/**
 * A Sigstore bundle (v0.3) that carries the envelope unchanged and names its key by a hint only:
 * the form in which cosign checks the subject against a git commit (`--digestAlg gitCommit`)
 * offline. It adds nothing that is signed; the envelope inside is the attestation.
 */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export const SigstoreBundleSchema = z.strictObject({
  mediaType: z.literal(BUNDLE_MEDIA_TYPE),
  verificationMaterial: z.strictObject({ publicKey: z.strictObject({ hint: z.string() }) }),
  dsseEnvelope: EnvelopeSchema,
});
export type SigstoreBundle = z.infer<typeof SigstoreBundleSchema>;

export function sigstoreBundle(envelope: Envelope, keyid: string): SigstoreBundle {
  return { mediaType: BUNDLE_MEDIA_TYPE, verificationMaterial: { publicKey: { hint: keyid } }, dsseEnvelope: envelope };
}

/** The envelope of a file that is either a bare DSSE envelope or a bundle carrying one. */
export function envelopeIn(json: unknown): unknown {
  const bundle = SigstoreBundleSchema.safeParse(json);
  return bundle.success ? bundle.data.dsseEnvelope : json;
}
