import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import * as z from 'zod';
import type { Sql } from '../../database/connect.js';
import { listSigningKeys } from '../../store/attestations/signing-keys.js';

export const ATTESTATION_KEYS_PATH = '/.well-known/proofpod/attestation-keys';

const KeyViewSchema = z.object({
  keyid: z.string(),
  algorithm: z.string(),
  publicKeyPem: z.string(),
  /** When a replica first started with it. */
  validFrom: z.string(),
  /** Null while it is the newest key; else when it signed its last attestation (or was superseded, if it signed none). */
  validUntil: z.string().nullable(),
  firstSignedAt: z.string().nullable(),
  lastSignedAt: z.string().nullable(),
});

/**
 * Unauthenticated: public keys are not secrets, and a third party checking an attestation has no
 * token. It should pin a key it got out of band; this list is where an operator publishes it,
 * with every key that ever signed, so rotation leaves old attestations verifiable.
 */
export const attestationKeyRoutes: FastifyPluginAsyncZod<{ sql: Sql }> = async (app, { sql }) => {
  app.get(
    ATTESTATION_KEYS_PATH,
    {
      schema: {
        summary: 'Every public key attestations were signed with, and when each was in use',
        tags: ['attestations'],
        response: { 200: z.object({ keys: z.array(KeyViewSchema) }) },
      },
    },
    async () => {
      const keys = await listSigningKeys(sql);
      return {
        keys: keys.map((k) => ({
          keyid: k.keyid,
          algorithm: k.algorithm,
          publicKeyPem: k.publicKeyPem,
          validFrom: k.registeredAt.toISOString(),
          validUntil: k.superseded ? (k.lastSignedAt ?? k.registeredAt).toISOString() : null,
          firstSignedAt: k.firstSignedAt?.toISOString() ?? null,
          lastSignedAt: k.lastSignedAt?.toISOString() ?? null,
        })),
      };
    },
  );
};
